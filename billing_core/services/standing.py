"""What a suspended account may still do. Its usage and run reports are facts and stay accepted, it reads
everything, and it may take credentials away (revoke an account key, remove a provider key); anything that
adds to or changes what it holds is refused, from the API and the portal alike, because the services say so."""

from __future__ import annotations

from sqlalchemy import select
from sqlmodel import Session

from ..db.models import Account
from ..errors import ServiceError

SUSPENDED = ("This account is suspended: keys, projects and schedules cannot be created or changed. "
             "Contact support to have it resumed.")


class AccountSuspended(ServiceError):
    status, code = 403, "account_suspended"


def refuse_if_suspended(session: Session, account_id: str, account: Account | None = None) -> None:
    """Raise AccountSuspended inside the caller's write transaction; pass `account` when it is already read."""
    if account is None:
        suspended = session.execute(select(Account.suspended).where(Account.id == account_id)).scalar_one_or_none()
    else:
        suspended = account.suspended
    if suspended:
        raise AccountSuspended(SUSPENDED)
