"""Keyset pagination: newest first by (created_at, id), with an opaque cursor."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Generic, TypeVar

from sqlalchemy import and_, or_

from ..errors import Invalid

T = TypeVar("T")
DEFAULT_LIMIT, MAX_LIMIT = 50, 500


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


def encode_cursor(created_at: datetime, row_id: str) -> str:
    raw = json.dumps([created_at.isoformat(), row_id]).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


_CURSOR_ID = re.compile(r"[A-Za-z0-9._:@+=~-]{1,128}")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The position a cursor names; a forged one is refused here, before it can reach SQL as a bad value."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_text, row_id = json.loads(raw)
        created = datetime.fromisoformat(created_text)
        created.astimezone(timezone.utc)  # a naive or overflowing time would fail in the column type
        if created.tzinfo is None or not isinstance(row_id, str) or not _CURSOR_ID.fullmatch(row_id):
            raise ValueError("not a cursor")
        return created, row_id
    except Exception:  # any malformed cursor is the caller's error, never ours
        raise Invalid("The cursor is not one this API gave out.", code="invalid_cursor") from None


def check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise Invalid(f"limit must be between 1 and {MAX_LIMIT}.", code="invalid_limit")
    return limit


def paginate(session, stmt, model: Any, *, limit: int, cursor: str | None) -> Page:
    """Run `stmt` (already filtered to one account) newest first, one page after `cursor`."""
    limit = check_limit(limit)
    if cursor:
        created, row_id = decode_cursor(cursor)
        stmt = stmt.where(or_(model.created_at < created, and_(model.created_at == created, model.id < row_id)))
    rows = list(session.execute(stmt.order_by(model.created_at.desc(), model.id.desc()).limit(limit + 1)).scalars())
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, encode_cursor(rows[-1].created_at, rows[-1].id) if more and rows else None)
