"""Engines for SQLite (WAL, busy timeout, BEGIN IMMEDIATE for writers) and PostgreSQL (row locks)."""

from __future__ import annotations

import sqlite3
import threading
import weakref
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from sqlalchemy import Connection, Engine, create_engine, event, select
from sqlalchemy.engine import make_url
from sqlmodel import Session

from .models import Account
from .raw import commit_in_pipeline, pipelined

SQLITE_BUSY_TIMEOUT_MS = 30_000


def _bind_none_quickly() -> None:
    """Python 3.11's sqlite3 sends every parameter that is not exactly int, float, str or bytearray through
    its adaptation protocol, None included: two failed attribute lookups (__adapt__, __conform__), each
    formatting an AttributeError message, about 0.8 µs per None. A usage event row holds three or four
    (model, provider, key source of a compute event...), which was 2.5 % of a 1000-event batch's instructions
    under callgrind (docs/benchmarks.md). An adapter registered for None is found by the protocol's first
    step, a dict lookup; `{}.get` is a C callable that gives None back, which the driver binds as NULL.
    Process-wide, but it changes nothing that is stored: None was bound as NULL before too."""
    sqlite3.register_adapter(type(None), {}.get)


def _prepare_sqlite(engine: Engine) -> None:
    _bind_none_quickly()

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        # Let SQLAlchemy, not the driver, decide when a transaction begins, so writers can take
        # the write lock up front (BEGIN IMMEDIATE) instead of failing to upgrade it later.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        immediate = conn.get_execution_options().get("sqlite_immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """An engine for the URL; a SQLite file's folder is created when missing. Its errors and echo never show
    statement parameters (`hide_parameters`): they hold password hashes and sealed secrets."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, echo=echo, hide_parameters=True,
                               connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        _prepare_sqlite(engine)
        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        url = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    # No pool_pre_ping: its round trip on every checkout (two per API request) cost 40% of single-event
    # ingest on PostgreSQL (docs/benchmarks.md). A connection the server dropped fails once instead,
    # SQLAlchemy then discards the pool, and the API answers that request 503 database_unavailable.
    # Recycling bounds how long an idle connection is trusted.
    return create_engine(url, echo=echo, hide_parameters=True, pool_size=10, max_overflow=20, pool_recycle=1800)


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


@contextmanager
def read_connection(engine: Engine) -> Iterator[Connection]:
    """A Core connection for reads. On PostgreSQL it runs in autocommit: each SELECT there sees what was
    committed when it started, exactly as in a READ COMMITTED transaction, without the BEGIN and ROLLBACK
    round trips. On SQLite a read transaction (BEGIN ... ROLLBACK, local calls) keeps one snapshot."""
    with engine.connect() as conn:
        if not is_sqlite(engine):
            conn.execution_options(isolation_level="AUTOCOMMIT")
        yield conn


@contextmanager
def read_session(engine: Engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as session:
        yield session


# Per engine: the engine that begins with BEGIN IMMEDIATE (built once, not per transaction), and, on
# SQLite, a lock that queues this process's writers. SQLite admits one writer at a time anyway; without
# the lock, threads waiting for it sleep in SQLite's busy handler (up to 100 ms a turn), which is where
# the long tail of concurrent writes came from. Other processes still wait through busy_timeout.
_writers: "weakref.WeakKeyDictionary[Engine, tuple[Engine, threading.RLock | None]]" = weakref.WeakKeyDictionary()
_writers_guard = threading.Lock()


def _writer(engine: Engine) -> tuple[Engine, "threading.RLock | None"]:
    found = _writers.get(engine)
    if found is None:
        with _writers_guard:
            found = _writers.get(engine)
            if found is None:
                if is_sqlite(engine):
                    found = (engine.execution_options(sqlite_immediate=True), threading.RLock())
                else:
                    found = (engine, None)
                _writers[engine] = found
    return found


@contextmanager
def _writer_turn(lock: "threading.RLock | None") -> Iterator[None]:
    # Past the busy timeout, go on without the lock: SQLite then answers as it always did ("locked").
    acquired = lock is not None and lock.acquire(timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)
    try:
        yield
    finally:
        if acquired:
            lock.release()


@contextmanager
def write_session(engine: Engine) -> Iterator[Session]:
    """One write transaction, committed on success; SQLite takes its write lock at BEGIN."""
    bind, lock = _writer(engine)
    with _writer_turn(lock):
        with Session(bind, expire_on_commit=False) as session:
            with session.begin():
                yield session


@contextmanager
def write_connection(engine: Engine, *, pipeline: bool = False) -> Iterator[Connection]:
    """Like write_session, on a Core connection: one transaction, committed on success, rolled back on error.
    With `pipeline`, on PostgreSQL the whole transaction runs in psycopg's pipeline mode (db/raw.py; for
    statements run raw: the ORM needs each answer before the next), and its COMMIT goes out with the last
    writes, in one round trip."""
    bind, lock = _writer(engine)
    with _writer_turn(lock):
        if not pipeline or is_sqlite(engine):
            with bind.begin() as conn:
                yield conn
            return
        with bind.connect() as conn:
            transaction = conn.begin()
            try:
                with pipelined(conn):
                    yield conn
                    commit_in_pipeline(conn)
                transaction.commit()  # the driver's transaction has ended: this sends nothing
            except BaseException:
                transaction.rollback()
                raise


def lock_account(session: Session, account_id: str) -> Account | None:
    """The account row, locked for this transaction (a row lock on PostgreSQL; SQLite holds the db lock)."""
    stmt = select(Account).where(Account.id == account_id)
    if session.get_bind().dialect.name != "sqlite":
        stmt = stmt.with_for_update()
    return session.execute(stmt).scalar_one_or_none()
