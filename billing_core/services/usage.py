"""Recording usage: one transaction per account per batch, idempotent per (account, event id).

The batch runs on one Core connection with statements built once and run raw (services/usage_sql.py;
docs/benchmarks.md says why): lock the account row (BEGIN IMMEDIATE on SQLite, SELECT ... FOR UPDATE on
PostgreSQL) and read its pools, projects and the ids already recorded, walk the batch in order over the
balances, then write the events, pools, rollups, account, ledger and activity with one statement each.
On PostgreSQL the transaction runs in pipeline mode: the lock and the reads go out together, the writes
and the COMMIT together. Due period work (a period to close, a pool to expire) is done first, through
the ORM, by bring_up_to_date in the same transaction (then without the pipeline).
"""

from __future__ import annotations

from contextlib import nullcontext
from datetime import datetime
from types import SimpleNamespace

from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from .. import notify
from ..db.engine import write_connection
from ..db.models import Account, Activity
from ..db.raw import BulkInsert, in_pipeline
from ..sync.outbox import account_item
from .auth import KeyRef
from .chain import Chain, Link, State
from .coalesce import Coalescer
from .handoff import quick_handoff
from .context import Billing
from .journal import Journal
from .periods import bring_up_to_date
from .usage_sql import (BALANCE_FIELDS, INSERT_EVENTS, INSERT_LEDGER, INSERT_OUTBOX, UPDATE_ACCOUNT,
                        UPDATE_ACCOUNT_NOTED, BatchStart, LivePool, insert_dicts, load_account, lock_and_read,
                        open_pools)
from .usage_walk import Walk
from .views import account_view

# The event types and the checks that need no database live in usage_events; importers keep using this module.
from .usage_events import (MAX_BATCH, MAX_DURATION_MS, MAX_TOKENS, BatchResult, Charged,  # noqa: F401
                           EventResult, Prepared, UsageEventIn, _reject, invalid_reason, prepare)


@notify.after_commit
def record_usage(billing: Billing, account: str | KeyRef, events: list[UsageEventIn], *,
                 now: datetime) -> BatchResult:
    """Apply a batch for one account, named by its id or by one of its keys (a KeyRef: the key is looked
    up and checked inside the write transaction, and an unknown or revoked one raises InvalidKey having
    recorded nothing); a unique-constraint race is retried once and then reads as duplicates."""
    # Pipelined only while the rows are few: a big batch's events and ledger go by COPY, which a pipeline
    # cannot carry, and its round trips are a small part of it anyway.
    pipeline = len(events) < BulkInsert.COPY_FROM_ROWS
    # Fingerprints, checks and prices need no lock: worked out first, so that while one batch of an account
    # holds its lock, the next one's are being prepared.
    prepared = [prepare(billing.catalog, e) for e in events]
    big = len(events) >= CHAIN_FROM and billing.engine.dialect.name == "postgresql"
    with quick_handoff() if big else nullcontext():
        try:
            try:
                return _record_once(billing, account, events, prepared, now, pipeline=pipeline, chained=big)
            except _BringUpFirst:
                return _record_once(billing, account, events, prepared, now, pipeline=False)
        except IntegrityError:
            return _record_once(billing, account, events, prepared, now, pipeline=False)


_GROUPS = Coalescer()
_CHAIN = Chain()
# On PostgreSQL, batches this big walk ahead of their lock when the batch before them is in this process
# (services/chain.py), and shorten the interpreter's switch interval while they are recorded
# (services/handoff.py). A small one's walk is short, and it is better off with its lock request already
# waiting at the database. On SQLite the database's work is this process's own CPU, which the walk ahead
# only competes with: 6 % fewer events a second measured, so SQLite's batches walk inside their lock.
CHAIN_FROM = 100


def record_usage_grouped(billing: Billing, account: str | KeyRef, events: list[UsageEventIn], *,
                         now: datetime) -> BatchResult:
    """record_usage for request handlers: a batch that arrives while another for the same account (named the
    same way) is being recorded goes into the next transaction together with every batch that queued
    meanwhile (group commit, services/coalesce.py); the caller still gets its own results."""
    return _GROUPS.record((billing.engine, account), events, now,
                          lambda batch, at: record_usage(billing, account, batch, now=at))


class _BringUpFirst(Exception):
    """The batch's account has a period to close or a pool to expire: that work goes through the ORM, which
    needs each statement's answer before the next (its row counts), so the batch runs again unpipelined."""


def _record_once(billing: Billing, target: str | KeyRef, events: list[UsageEventIn], prepared: list[Prepared],
                 now: datetime, *, pipeline: bool, chained: bool = False) -> BatchResult:
    key = (billing.engine, target)
    link, ahead = _CHAIN.join(key) if chained else (None, None)
    try:
        guess = _Guess.after(billing, ahead, events, prepared, now) if ahead is not None else None
        with write_connection(billing.engine, pipeline=pipeline) as conn:
            start = lock_and_read(conn, target, list({e.id for e in events}), now)
            account, pools, account_id = start.account, start.pools, start.account.id
            journal = Journal(account_id, now)
            brought_up = account.period_end <= now or any(p.expires_at <= now for p in pools)
            if brought_up:
                if in_pipeline(conn):
                    raise _BringUpFirst
                account, pools = _bring_up_to_date(billing, conn, account_id, now, journal)
            live = [p for p in pools if p.remaining_ms > 0]
            if guess is not None and not brought_up and guess.holds(start, live):
                walk = guess.walk
                INSERT_EVENTS.execute(conn, guess.rows)
            else:
                rows = []
                walk = Walk(billing.catalog, account, live, start.projects, start.existing, journal, now,
                            rows.append).run(events, prepared)
                INSERT_EVENTS.execute(conn, rows)
            if link is not None:
                link.publish(walk.state_after())
            return _write(conn, walk, brought_up)
    finally:
        if link is not None:
            _CHAIN.leave(key, link)


def _write(conn: Connection, walk: Walk, brought_up: bool) -> BatchResult:
    """What the walk left: pools and rollups, the account's row (and the edge's outbox row), the ledger."""
    walk.write(conn)
    account, account_id, now = walk.account, walk.account.id, walk.now
    noted = bool(walk.accepted) or brought_up  # the edge's copy of the balances changed: one outbox row
    if any(getattr(account, f) != walk.loaded[f] for f in BALANCE_FIELDS):
        params = {"account_id": account_id, "v_used": account.used_ms, "v_credit": account.credit_balance_micros,
                  "v_overage": account.overage_micros, "v_status": account.status}
        if noted and conn.dialect.name == "postgresql":
            UPDATE_ACCOUNT_NOTED.execute(conn, {**params, "o_item": account_item(account_id), "o_at": now})
            noted = False
        else:
            UPDATE_ACCOUNT.execute(conn, params)
    if noted:
        INSERT_OUTBOX.execute(conn, [(account_item(account_id), now)])
    _flush_journal(conn, walk.journal)
    return BatchResult(walk.results, account_view(account, walk.live))


class _Guess:
    """A batch walked, before its lock, over the state the batch ahead of it left (services/chain.py)."""

    def __init__(self, walk: Walk, rows: list[tuple], assumed: State) -> None:
        self.walk, self.rows, self.assumed = walk, rows, assumed

    @classmethod
    def after(cls, billing: Billing, ahead: Link, events: list[UsageEventIn], prepared: list[Prepared],
              now: datetime) -> _Guess | None:
        before = ahead.wait()
        if before is None:
            return None
        existing = {}
        for e in events:
            found = before.seen.get(e.id)
            if found is not None:
                existing[e.id] = (found[0], EventResult(e.id, "duplicate", found[1].charged, found[1].late))
        assumed = State(before.account, before.live, before.projects, dict(existing))
        rows: list[tuple] = []
        account = SimpleNamespace(**before.account)
        walk = Walk(billing.catalog, account, list(before.live), before.projects, existing,
                    Journal(account.id, now), now, rows.append).run(events, prepared)
        return cls(walk, rows, assumed)

    def holds(self, start: BatchStart, live: list[LivePool]) -> bool:
        """Whether the locked read found exactly what the guess assumed (then its walk is the one)."""
        a = self.assumed
        return (vars(start.account) == a.account and live == list(a.live) and start.projects == a.projects
                and start.existing == a.seen)


def _bring_up_to_date(billing: Billing, conn: Connection, account_id: str, now: datetime, journal: Journal):
    """Close due periods and expire due pools (the ORM services), in this transaction; then re-read."""
    with Session(bind=conn, expire_on_commit=False, join_transaction_mode="rollback_only") as session:
        orm_account = session.get(Account, account_id)
        bring_up_to_date(session, billing.catalog, orm_account, now, journal)
        session.flush()
    return load_account(conn, account_id, lock=False), open_pools(conn, account_id)


def _flush_journal(conn: Connection, journal: Journal) -> None:
    """What Journal.flush does, with each table's rows in one bulk insert."""
    INSERT_LEDGER.execute(conn, journal.entries)
    insert_dicts(conn, Activity.__table__, journal.activities)
    journal.entries, journal.activities = [], []
