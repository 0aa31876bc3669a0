"""Account keys a customer manages: create (secret shown once) with limits, change limits, list, revoke."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timezone

from sqlalchemy import func, select, update

from .. import notify
from ..db.engine import lock_account, read_session, write_session
from ..db.models import AccountKey
from ..errors import Conflict, NotFound
from ..key_limits import budget_remaining, checked_limits, model_list, scope_list
from ..sync.outbox import key_item, note_changed
from .accounts import issue_account_key
from .context import Billing
from .journal import Journal
from .key_spend import key_spend_in_window, spend_of_keys
from .paging import Page, paginate
from .projects import checked_cursor, clean_name, is_id, owned_project
from .standing import refuse_if_suspended
from .views import rfc3339

# Far above any honest need; it bounds what a leaked key could mint before it is noticed.
MAX_ACTIVE_KEYS = 100
NO_KEY = "No such key."


@dataclass(frozen=True)
class KeyView:
    """What may be shown of a key at any time: never the secret, never its hash. Its limits, and what it
    spent in its current budget window (budget_remaining_micros: None when it has no budget)."""

    id: str
    name: str
    prefix: str
    last4: str
    created_at: str
    last_used_at: str | None
    revoked_at: str | None
    scopes: list[str]
    budget_micros: int | None
    budget_reset: str
    models: list[str]
    rpm: int | None
    tpm: int | None
    expires_at: str | None
    project_id: str | None
    spend_micros: int
    budget_remaining_micros: int | None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class CreatedKey:
    secret: str  # shown once; only its hash is stored
    key: KeyView


def key_view(row: AccountKey, spend_micros: int = 0) -> KeyView:
    return KeyView(id=row.id, name=row.name, prefix=row.prefix, last4=row.last4,
                   created_at=rfc3339(row.created_at),
                   last_used_at=rfc3339(row.last_used_at) if row.last_used_at else None,
                   revoked_at=rfc3339(row.revoked_at) if row.revoked_at else None,
                   scopes=scope_list(row.scopes), budget_micros=row.budget_micros, budget_reset=row.budget_reset,
                   models=model_list(row.models), rpm=row.rpm, tpm=row.tpm,
                   expires_at=rfc3339(row.expires_at) if row.expires_at else None, project_id=row.project_id,
                   spend_micros=spend_micros, budget_remaining_micros=budget_remaining(row.budget_micros, spend_micros))


def _checked(session, billing: Billing, account_id: str, limits: Mapping[str, object], now: datetime) -> dict:
    """The stored form of the limits (Invalid with a code naming the field); a project_id must be one of the
    account's live projects (NotFound otherwise, as for any id of another account)."""
    values = checked_limits(limits, catalog=billing.catalog, now=now)
    if values.get("project_id") is not None:
        owned_project(session, account_id, values["project_id"])
    return values


def _described(values: Mapping[str, object]) -> str:
    """The changed limits as an activity line reads them ("budget_micros, rpm")."""
    return ", ".join(values) if values else "nothing"


@notify.after_commit
def create_key(billing: Billing, account_id: str, *, name: str, now: datetime,
               limits: Mapping[str, object] | None = None) -> CreatedKey:
    """A new key (at most MAX_ACTIVE_KEYS active), with the limits given (key_limits.LIMIT_FIELDS; the rest
    at their defaults: every scope, no budget, any model, no rate limit, no expiry, every project)."""
    name = clean_name(name, "key")
    with write_session(billing.engine) as session:
        account = lock_account(session, account_id)  # locked so the active-key count cannot race
        if account is None:
            raise NotFound("No such account.")
        refuse_if_suspended(session, account_id, account)
        values = _checked(session, billing, account_id, limits or {}, now)
        active = session.execute(select(func.count()).select_from(AccountKey).where(
            AccountKey.account_id == account_id, AccountKey.revoked_at.is_(None))).scalar_one()
        if active >= MAX_ACTIVE_KEYS:
            raise Conflict(f"An account may hold {MAX_ACTIVE_KEYS} active keys; revoke one first.",
                           code="key_limit_reached")
        secret, row = issue_account_key(session, account_id=account_id, name=name, now=now)
        for field, value in values.items():
            setattr(row, field, value)
        journal = Journal(account_id, now)
        limited = f" with limits: {_described(values)}" if values else ""
        journal.activity("key_created", row.id, f"Account key {name} ({row.prefix}...{row.last4}) created{limited}.")
        session.flush()
        journal.flush(session)
        return CreatedKey(secret, key_view(row))


@notify.after_commit
def update_key_limits(billing: Billing, account_id: str, key_id: str, *, changes: Mapping[str, object],
                      now: datetime) -> KeyView:
    """Change the named limits of one of the account's keys (None: back to the field's default); a revoked
    key keeps its limits (409). Another account's key is NotFound."""
    if not is_id(key_id):
        raise NotFound(NO_KEY)
    with write_session(billing.engine) as session:
        row = session.execute(select(AccountKey).where(AccountKey.id == key_id, AccountKey.account_id == account_id)
                              .with_for_update()).scalar_one_or_none()
        if row is None:
            raise NotFound(NO_KEY)
        if row.revoked_at is not None:
            raise Conflict("A revoked key cannot be changed.", code="key_revoked")
        values = _checked(session, billing, account_id, changes, now)
        changed = {field: value for field, value in values.items() if getattr(row, field) != value}
        for field, value in changed.items():
            setattr(row, field, value)
        if changed:
            note_changed(session, now, key_item(row.key_hash))  # the edge's copy carries scopes, expiry, project
            journal = Journal(account_id, now)
            journal.activity("key_limits_changed", row.id,
                             f"Account key {row.name} ({row.prefix}...{row.last4}): {_described(changed)} changed.")
            session.flush()
            journal.flush(session)
        return key_view(row, key_spend_in_window(session, row, now))


def list_keys(billing: Billing, account_id: str, *, limit: int, cursor: str | None,
              now: datetime | None = None) -> Page[KeyView]:
    """Every key of the account, revoked ones included (with revoked_at), newest first; spend as of `now`."""
    cursor = checked_cursor(cursor)
    with read_session(billing.engine) as session:
        page = paginate(session, select(AccountKey).where(AccountKey.account_id == account_id), AccountKey,
                        limit=limit, cursor=cursor)
        spend = spend_of_keys(session, page.items, now or datetime.now(timezone.utc))
    return Page([key_view(row, spend[row.id]) for row in page.items], page.next_cursor)


def get_key(billing: Billing, account_id: str, key_id: str, *, now: datetime) -> KeyView:
    """One of the account's keys, with its spend in the current budget window."""
    if not is_id(key_id):
        raise NotFound(NO_KEY)
    with read_session(billing.engine) as session:
        row = session.execute(select(AccountKey).where(AccountKey.id == key_id, AccountKey.account_id == account_id)
                              ).scalar_one_or_none()
        if row is None:
            raise NotFound(NO_KEY)
        return key_view(row, key_spend_in_window(session, row, now))


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
