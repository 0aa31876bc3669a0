"""Shared fixtures: real SQLite and PostgreSQL databases migrated with Alembic, and a billing context."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from billing_core.db.engine import make_engine
from billing_core.db.migrate import upgrade_to_head
from billing_core.db.models import SQLModel
from billing_core.plans import load_catalog
from billing_core.services.context import Billing

# Settings made in this process keep the secrets they generate in a temporary folder, not the checkout's data/.
os.environ.setdefault("TOLLGATE_DATA_DIR", tempfile.mkdtemp(prefix="tollgate-test-data-"))

PG_BASE_URL = os.environ.get("TOLLGATE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI") == "true"
T0 = datetime(2026, 1, 15, 12, 0, tzinfo=timezone.utc)


def pg_reachable() -> str | None:
    """None when PostgreSQL answers, else the reason."""
    try:
        engine = create_engine(PG_BASE_URL)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return None
    except Exception as exc:  # any failure to connect is a reason to skip (or fail in CI)
        return f"PostgreSQL at {PG_BASE_URL} is not reachable: {type(exc).__name__}"


def require_postgres() -> None:
    reason = pg_reachable()
    if reason:
        if IN_CI:
            pytest.fail(f"{reason} (CI must exercise PostgreSQL)")
        pytest.skip(reason)


def pg_schema_url(schema: str) -> str:
    return f"{PG_BASE_URL}?options=-csearch_path%3D{schema}"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade_to_head(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def pg_session_schema():
    """One migrated schema for the whole run; tests truncate it instead of migrating again."""
    require_postgres()
    schema = f"tg_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_BASE_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    upgrade_to_head(pg_schema_url(schema))
    yield schema
    with admin.connect() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


def _truncate_pg(url: str) -> None:
    engine = create_engine(url.replace("postgresql+psycopg", "postgresql+psycopg"))
    names = ", ".join(t.name for t in SQLModel.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> str:
    """A migrated, empty database: a fresh SQLite file, or a truncated PostgreSQL schema."""
    if request.param == "sqlite":
        path = tmp_path / "tollgate.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    schema = request.getfixturevalue("pg_session_schema")
    url = pg_schema_url(schema)
    _truncate_pg(url)
    return url


@pytest.fixture
def sqlite_url(tmp_path, sqlite_template) -> str:
    """A migrated SQLite database, for tests that do not need to run on both."""
    path = tmp_path / "tollgate.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture(scope="session")
def catalog():
    return load_catalog()


@pytest.fixture
def billing(database_url, catalog):
    engine = make_engine(database_url)
    yield Billing(engine=engine, catalog=catalog)
    engine.dispose()


@pytest.fixture
def sqlite_billing(sqlite_url, catalog):
    engine = make_engine(sqlite_url)
    yield Billing(engine=engine, catalog=catalog)
    engine.dispose()


@pytest.fixture
def pg_url(pg_session_schema) -> str:
    """A migrated, empty PostgreSQL schema, for tests of what only PostgreSQL does."""
    url = pg_schema_url(pg_session_schema)
    _truncate_pg(url)
    return url


@pytest.fixture
def pg_billing(pg_url, catalog):
    engine = make_engine(pg_url)
    yield Billing(engine=engine, catalog=catalog)
    engine.dispose()


@pytest.fixture(autouse=True)
def no_unexpected_errors(caplog):
    """Fail a test during which the app logged an error it did not expect."""
    yield
    errors = [r for r in caplog.get_records("call") if r.levelno >= logging.ERROR
              and r.name.startswith(("tollgate", "billing_core", "portal"))]
    if errors and not getattr(caplog, "errors_expected", False):
        pytest.fail("the app logged errors: " + "; ".join(r.getMessage() for r in errors))


CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="session")
def browser():
    """One Debian Chromium for the whole run: Playwright's sync API allows one driver loop at a time."""
    if not CHROMIUM.exists():
        pytest.fail("Chromium is missing: apt-get update && apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"])
        yield chromium
        chromium.close()
