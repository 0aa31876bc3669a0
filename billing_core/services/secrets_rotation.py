"""Re-sealing every secret at rest under the keyring's primary key, so an old key can be dropped.

Safe to run again and beside live traffic: each batch is its own short transaction, rows already under
the primary key are left alone, and a row that does not open is reported, never overwritten.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from sqlalchemy import select
from sqlmodel import Session

from ..crypto import Keyring, SecretError
from ..db.engine import is_sqlite, read_session, write_session
from ..db.sealed import SEALED_COLUMNS, SealedColumn
from .context import Billing
from .projects import require_keyring

BATCH_SIZE = 200


@dataclass(frozen=True)
class ResealResult:
    total: int
    resealed: int
    current: int  # already under the primary key
    failed: tuple[str, ...]  # "table.column row_id" of ciphertexts no key of the ring opens


def _ids(session: Session, sealed: SealedColumn) -> list[str]:
    column = getattr(sealed.model, sealed.column)
    return list(session.execute(select(sealed.key_column).where(column.is_not(None))
                                .order_by(sealed.key_column)).scalars())


def _reseal_batch(billing: Billing, keyring: Keyring, sealed: SealedColumn, ids: list[str]) -> tuple[int, list[str]]:
    resealed, failed = 0, []
    with write_session(billing.engine) as session:
        stmt = select(sealed.model).where(sealed.key_column.in_(ids))
        if not is_sqlite(billing.engine):
            stmt = stmt.with_for_update()  # a rotation committed meanwhile must not be overwritten by an old value
        for row in session.execute(stmt).scalars():
            ciphertext = getattr(row, sealed.column)
            if ciphertext is None or not keyring.needs_reseal(ciphertext):
                continue
            aad = sealed.aad_of(row)
            try:
                setattr(row, sealed.column, keyring.seal(keyring.open(ciphertext, aad), aad))
                resealed += 1
            except SecretError:
                failed.append(f"{sealed.label} {getattr(row, sealed.key_column.key)}")
    return resealed, failed


def reseal_all(billing: Billing, *, on_total: Callable[[int], None] = lambda total: None,
               on_progress: Callable[[int], None] = lambda done: None,
               batch_size: int = BATCH_SIZE) -> ResealResult:
    """Re-seal every secret of every registered sealed column (billing_core/db/sealed.py) with the primary key."""
    keyring = require_keyring(billing)
    with read_session(billing.engine) as session:
        work = [(sealed, _ids(session, sealed)) for sealed in SEALED_COLUMNS]
    total = sum(len(ids) for _, ids in work)
    on_total(total)
    resealed, failed = 0, []
    for sealed, ids in work:
        for start in range(0, len(ids), batch_size):
            batch = ids[start:start + batch_size]
            done, bad = _reseal_batch(billing, keyring, sealed, batch)
            resealed, failed = resealed + done, failed + bad
            on_progress(len(batch))
    return ResealResult(total=total, resealed=resealed, current=total - resealed - len(failed),
                        failed=tuple(failed))
