"""Fixtures for the key tests: a billing context holding a keyring, and a live server with one."""

from __future__ import annotations

import pytest

from billing_core.crypto import Keyring, new_key_spec
from billing_core.db.engine import make_engine
from billing_core.services.context import Billing

from .live import serving


@pytest.fixture
def billing(database_url, catalog):
    """Like the shared `billing` (SQLite and PostgreSQL), but able to seal secrets."""
    engine = make_engine(database_url)
    yield Billing(engine, catalog, Keyring.parse(new_key_spec("k1")))
    engine.dispose()


@pytest.fixture(scope="session")
def keys_server(tmp_path_factory, sqlite_template):
    with serving(tmp_path_factory.mktemp("keys-api"), sqlite_template) as server:
        yield server


@pytest.fixture(scope="session")
def client(keys_server):
    return keys_server.client


@pytest.fixture
def tenant(keys_server):
    """A fresh hobby account (3 projects at most) with its default project."""
    return keys_server.create_tenants(1)[0]
