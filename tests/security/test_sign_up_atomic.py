"""Issue 12 #6 (sign-up in one transaction): a sign-up that fails after the account is written leaves
nothing behind, no account without a user, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from billing_core.db.engine import read_session
from billing_core.db.identity import User, WebSession
from billing_core.db.models import Account, AccountKey, Activity, LedgerEntry, Project
from billing_core.db.operations import OutboxRow
from billing_core.errors import ServiceError
from billing_core.services import identity
from billing_core.services.identity import MemoryRateLimiter, sign_up

from ..conftest import T0

PASSWORD = "correct horse 1843"
TABLES = (Account, Project, AccountKey, LedgerEntry, Activity, OutboxRow, User, WebSession)


def _counts(billing) -> dict[str, int]:
    with read_session(billing.engine) as session:
        return {model.__name__: session.execute(select(func.count()).select_from(model)).scalar_one()
                for model in TABLES}


def _sign_up(billing, email: str):
    return sign_up(billing, MemoryRateLimiter(), email=email, password=PASSWORD, ip="203.0.113.7",
                   user_agent="test", now=T0, ttl=timedelta(days=14))


def test_a_user_insert_that_fails_leaves_no_account(billing, monkeypatch):
    first = _sign_up(billing, "first@example.com")
    before = _counts(billing)
    # The next user gets the first one's id: the user insert fails after the account, project and key.
    real = identity.new_id
    monkeypatch.setattr(identity, "new_id", lambda prefix: first.user.user_id if prefix == "usr" else real(prefix))
    with pytest.raises(ServiceError) as failed:
        _sign_up(billing, "second@example.com")
    assert failed.value.status < 500
    assert _counts(billing) == before
    with read_session(billing.engine) as session:
        assert session.execute(select(Account).where(Account.email == "second@example.com")).first() is None
