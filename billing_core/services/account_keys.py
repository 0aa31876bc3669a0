"""Account keys a customer manages: create (secret shown once), list, revoke."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import func, select, update

from .. import notify
from ..db.engine import lock_account, read_session, write_session
from ..db.models import AccountKey
from ..errors import Conflict, NotFound
from ..sync.outbox import key_item, note_changed
from .accounts import issue_account_key
from .context import Billing
from .journal import Journal
from .paging import Page, paginate
from .projects import checked_cursor, clean_name, is_id
from .standing import refuse_if_suspended
from .views import rfc3339

# Far above any honest need; it bounds what a leaked key could mint before it is noticed.
MAX_ACTIVE_KEYS = 100
NO_KEY = "No such key."


@dataclass(frozen=True)
class KeyView:
    """What may be shown of a key at any time: never the secret, never its hash."""

    id: str
    name: str
    prefix: str
    last4: str
    created_at: str
    last_used_at: str | None
    revoked_at: str | None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class CreatedKey:
    secret: str  # shown once; only its hash is stored
    key: KeyView


def key_view(row: AccountKey) -> KeyView:
    return KeyView(id=row.id, name=row.name, prefix=row.prefix, last4=row.last4,
                   created_at=rfc3339(row.created_at),
                   last_used_at=rfc3339(row.last_used_at) if row.last_used_at else None,
                   revoked_at=rfc3339(row.revoked_at) if row.revoked_at else None)


@notify.after_commit
def create_key(billing: Billing, account_id: str, *, name: str, now: datetime) -> CreatedKey:
    name = clean_name(name, "key")
    with write_session(billing.engine) as session:
        account = lock_account(session, account_id)  # locked so the active-key count cannot race
        if account is None:
            raise NotFound("No such account.")
        refuse_if_suspended(session, account_id, account)
        active = session.execute(select(func.count()).select_from(AccountKey).where(
            AccountKey.account_id == account_id, AccountKey.revoked_at.is_(None))).scalar_one()
        if active >= MAX_ACTIVE_KEYS:
            raise Conflict(f"An account may hold {MAX_ACTIVE_KEYS} active keys; revoke one first.",
                           code="key_limit_reached")
        secret, row = issue_account_key(session, account_id=account_id, name=name, now=now)
        journal = Journal(account_id, now)
        journal.activity("key_created", row.id, f"Account key {name} ({row.prefix}...{row.last4}) created.")
        session.flush()
        journal.flush(session)
        return CreatedKey(secret, key_view(row))


def list_keys(billing: Billing, account_id: str, *, limit: int, cursor: str | None) -> Page[KeyView]:
    """Every key of the account, revoked ones included (with revoked_at), newest first."""
    cursor = checked_cursor(cursor)
    with read_session(billing.engine) as session:
        page = paginate(session, select(AccountKey).where(AccountKey.account_id == account_id), AccountKey,
                        limit=limit, cursor=cursor)
    return Page([key_view(row) for row in page.items], page.next_cursor)


@notify.after_commit
def revoke_key(billing: Billing, account_id: str, key_id: str, *, now: datetime) -> KeyView:
    """Revoke at once; revoking a revoked key changes nothing and answers the same."""
    if not is_id(key_id):
        raise NotFound(NO_KEY)
    owned = (AccountKey.id == key_id, AccountKey.account_id == account_id)
    with write_session(billing.engine) as session:
        # One conditional UPDATE, so two revocations at once record a single revocation.
        revoked = session.execute(update(AccountKey).where(*owned, AccountKey.revoked_at.is_(None))
                                  .values(revoked_at=now)).rowcount
        row = session.execute(select(AccountKey).where(*owned)).scalar_one_or_none()
        if row is None:
            raise NotFound(NO_KEY)
        if revoked:
            note_changed(session, now, key_item(row.key_hash))  # the edge drops the key
            journal = Journal(account_id, now)
            journal.activity("key_revoked", row.id, f"Account key {row.name} ({row.prefix}...{row.last4}) revoked.")
            journal.flush(session)
        return key_view(row)
