"""Fixtures for the scheduled-job tests: a billing context that can seal secrets (SQLite and PostgreSQL),
real receivers on 127.0.0.1, and an httpx client."""

from __future__ import annotations

from datetime import datetime, timezone

import httpx
import pytest

from billing_core.crypto import Keyring, new_key_spec
from billing_core.db.engine import make_engine
from billing_core.services.context import Billing

from .receivers import Receiver, SmtpServer


@pytest.fixture
def billing(database_url, catalog):
    """Like the shared `billing`, but holding a keyring (HMAC keys and webhook secrets are sealed)."""
    engine = make_engine(database_url)
    yield Billing(engine, catalog, Keyring.parse(new_key_spec("k1")))
    engine.dispose()


@pytest.fixture
def sqlite_billing(sqlite_url, catalog):
    """The SQLite-only context, with a keyring too."""
    engine = make_engine(sqlite_url)
    yield Billing(engine, catalog, Keyring.parse(new_key_spec("k1")))
    engine.dispose()


@pytest.fixture
def wall_now() -> datetime:
    """The real time: a Standard Webhooks receiver refuses a signature more than 5 minutes off its clock."""
    return datetime.now(timezone.utc).replace(microsecond=0)


@pytest.fixture
def http():
    with httpx.Client() as client:
        yield client


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def smtp_server():
    server = SmtpServer()
    yield server
    server.close()
