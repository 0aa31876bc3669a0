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

from datetime import datetime

from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from .. import notify
from ..db.engine import write_connection
from ..db.models import Account, Activity, LedgerEntry
from ..db.raw import BulkInsert, in_pipeline
from ..drawdown import Balances, Charge, draw_compute, draw_money
from ..periods import classify_timestamp
from ..pricing import UnknownModel, compute_cost_micros, token_cost
from ..sync.outbox import account_item
from .auth import KeyRef
from .coalesce import Coalescer
from .context import Billing
from .journal import Journal
from .periods import bring_up_to_date
from .rollups import RollupBatch
from .state import balances_of, refresh_status
from .usage_sql import (BALANCE_FIELDS, INSERT_EVENTS, INSERT_OUTBOX, UPDATE_ACCOUNT, UPDATE_ACCOUNT_NOTED,
                        UPDATE_POOL, LivePool, insert_dicts, load_account, lock_and_read, open_pools)
from .views import account_view

# The event types and the checks that need no database live in usage_events; importers keep using this module.
from .usage_events import (MAX_BATCH, MAX_DURATION_MS, MAX_TOKENS, BatchResult, Charged,  # noqa: F401
                           EventResult, UsageEventIn, _reject, invalid_reason)


@notify.after_commit
def record_usage(billing: Billing, account: str | KeyRef, events: list[UsageEventIn], *,
                 now: datetime) -> BatchResult:
    """Apply a batch for one account, named by its id or by one of its keys (a KeyRef: the key is looked
    up and checked inside the write transaction, and an unknown or revoked one raises InvalidKey having
    recorded nothing); a unique-constraint race is retried once and then reads as duplicates."""
    # Pipelined only while the rows are few: a big batch's events and ledger go by COPY, which a pipeline
    # cannot carry, and its round trips are a small part of it anyway.
    pipeline = len(events) < BulkInsert.COPY_FROM_ROWS
    try:
        try:
            return _record_once(billing, account, events, now, pipeline=pipeline)
        except _BringUpFirst:
            return _record_once(billing, account, events, now, pipeline=False)
    except IntegrityError:
        return _record_once(billing, account, events, now, pipeline=False)


_GROUPS = Coalescer()


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


def _record_once(billing: Billing, target: str | KeyRef, events: list[UsageEventIn], now: datetime, *,
                 pipeline: bool) -> BatchResult:
    with write_connection(billing.engine, pipeline=pipeline) as conn:
        start = lock_and_read(conn, target, list({e.id for e in events}), now)
        account, pools, account_id = start.account, start.pools, start.account.id
        journal = Journal(account_id, now)
        brought_up = account.period_end <= now or any(p.expires_at <= now for p in pools)
        if brought_up:
            if in_pipeline(conn):
                raise _BringUpFirst
            account, pools = _bring_up_to_date(billing, conn, account_id, now, journal)
        loaded = {f: getattr(account, f) for f in BALANCE_FIELDS}
        live = [p for p in pools if p.remaining_ms > 0]
        applier = _BatchApplier(billing, conn, account, balances_of(account, live, now), journal, now)
        results = applier.apply(events, start.projects, start.existing)
        applier.write()
        live = applier.pools_after(live)
        refresh_status(account, balances_of(account, live, now), journal)
        noted = bool(applier.rows) or brought_up  # the edge's copy of the balances changed: one outbox row
        if any(getattr(account, f) != loaded[f] for f in BALANCE_FIELDS):
            params = {"account_id": account_id, "v_used": account.used_ms, "v_credit": account.credit_balance_micros,
                      "v_overage": account.overage_micros, "v_status": account.status}
            if noted and conn.dialect.name == "postgresql":
                UPDATE_ACCOUNT_NOTED.execute(conn, {**params, "o_item": account_item(account_id), "o_at": now})
                noted = False
            else:
                UPDATE_ACCOUNT.execute(conn, params)
        if noted:
            INSERT_OUTBOX.execute(conn, [(account_item(account_id), now)])
        _flush_journal(conn, journal)
        return BatchResult(results, account_view(account, live))


def _bring_up_to_date(billing: Billing, conn: Connection, account_id: str, now: datetime, journal: Journal):
    """Close due periods and expire due pools (the ORM services), in this transaction; then re-read."""
    with Session(bind=conn, expire_on_commit=False, join_transaction_mode="rollback_only") as session:
        orm_account = session.get(Account, account_id)
        bring_up_to_date(session, billing.catalog, orm_account, now, journal)
        session.flush()
    return load_account(conn, account_id, lock=False), open_pools(conn, account_id)


def _flush_journal(conn: Connection, journal: Journal) -> None:
    """What Journal.flush does, with each table's rows in one bulk insert."""
    insert_dicts(conn, LedgerEntry.__table__, journal.entries)
    insert_dicts(conn, Activity.__table__, journal.activities)
    journal.entries, journal.activities = [], []


class _BatchApplier:
    """Walks one batch in order over the account's balances, then writes everything in bulk."""

    def __init__(self, billing: Billing, conn: Connection, account, balances: Balances,
                 journal: Journal, now: datetime) -> None:
        self.catalog, self.conn, self.account, self.journal, self.now = (
            billing.catalog, conn, account, journal, now)
        self.balances = balances
        self.start_balances = balances
        self.rows: list[tuple] = []
        self.rollups = RollupBatch(account.id)
        self.seen: dict[str, tuple[str, EventResult]] = {}

    def apply(self, events: list[UsageEventIn], projects: set[str],
              existing: dict[str, tuple[str, EventResult]]) -> list[EventResult]:
        self.seen = existing
        return [self._one(event, projects) for event in events]

    def _one(self, event: UsageEventIn, projects: set[str]) -> EventResult:
        body_hash = event.body_hash()
        if event.id in self.seen:
            original_hash, original = self.seen[event.id]
            if original_hash != body_hash:
                return _reject(event.id, "idempotency_conflict",
                               "This event id was already used with a different body.")
            return EventResult(event.id, "duplicate", original.charged, original.late)
        reason = invalid_reason(event)
        if reason:
            return _reject(event.id, "invalid_event", reason + ".")
        if event.project_id not in projects:
            return _reject(event.id, "unknown_project", "No such project in this account.")
        occurred = event.timestamp or self.now
        when = classify_timestamp(occurred, now=self.now, period_start=self.account.period_start)
        if when == "future":
            return _reject(event.id, "timestamp_in_future", "The timestamp is more than 5 minutes ahead.")
        if event.kind == "compute":
            list_cost = compute_cost_micros(event.duration_ms, self.catalog.compute_rate_micros_per_second)
            charge, self.balances = draw_compute(self.balances, event.duration_ms,
                                                 self.catalog.compute_rate_micros_per_second)
        else:
            try:
                cost = token_cost(self.catalog, model=event.model, input_tokens=event.input_tokens,
                                  output_tokens=event.output_tokens, key_source=event.key_source)
            except UnknownModel:
                return _reject(event.id, "unknown_model", f"Model {event.model!r} is not in the price table.")
            list_cost = cost.list_micros
            charge, self.balances = draw_money(self.balances, cost.charged_micros)
        result = EventResult(event.id, "accepted", Charged.of(charge), when == "late")
        self.seen[event.id] = (body_hash, result)
        self._journal(event, charge)
        self.rows.append(self._row(event, body_hash, occurred, charge, list_cost, result.late))
        self.rollups.add(event, occurred, charge.money_micros, list_cost)
        return result

    def _journal(self, event: UsageEventIn, charge: Charge) -> None:
        # Zero amounts are no entry (Journal.entry skips them too); testing here first saves the calls,
        # which add up at a thousand events a batch.
        b, period, ref, entry = self.balances, self.account.period_start, event.id, self.journal.entry
        if charge.allowance_ms:
            entry(book="allowance", kind="usage", amount=-charge.allowance_ms,
                  balance_after=b.allowance_remaining_ms, period_start=period, ref_type="event", ref_id=ref)
        if charge.pool_draws:
            remaining = {p.id: p.remaining_ms for p in b.pools}
            for pool_id, ms in charge.pool_draws:
                entry(book="pool", kind="usage", amount=-ms, balance_after=remaining[pool_id],
                      period_start=period, ref_type="event", ref_id=ref, pool_id=pool_id)
        if charge.credit_micros or charge.debt_micros:
            entry(book="credit", kind="usage", amount=-(charge.credit_micros + charge.debt_micros),
                  balance_after=b.credit_micros, period_start=period, ref_type="event", ref_id=ref)
        if charge.overage_micros:
            entry(book="overage", kind="usage", amount=charge.overage_micros,
                  balance_after=b.overage_micros, period_start=period, ref_type="event", ref_id=ref)

    def _row(self, event: UsageEventIn, body_hash: str, occurred: datetime, charge: Charge, list_cost: int,
             late: bool) -> tuple:
        """One usage_events row, in EVENT_COLUMNS order."""
        return (self.account.id, event.id, body_hash, event.project_id, event.kind, occurred, self.now,
                self.account.period_start, event.duration_ms, event.model, event.provider, event.input_tokens,
                event.output_tokens, event.key_source if event.kind == "tokens" else None, event.agent,
                event.run_id, charge.allowance_ms, charge.pool_ms, charge.credit_micros, charge.overage_micros,
                charge.debt_micros, list_cost, late)

    def write(self) -> None:
        if not self.rows:
            return
        INSERT_EVENTS.execute(self.conn, self.rows)
        before = {p.id: p.remaining_ms for p in self.start_balances.pools}
        changed = [{"pid": p.id, "rem": p.remaining_ms} for p in self.balances.pools
                   if p.remaining_ms != before[p.id]]
        if changed:
            UPDATE_POOL.execute(self.conn, changed)
        acc, b = self.account, self.balances
        acc.used_ms = acc.included_ms - b.allowance_remaining_ms
        acc.credit_balance_micros = b.credit_micros
        acc.overage_micros = b.overage_micros
        self.rollups.write(self.conn)

    def pools_after(self, live: list[LivePool]) -> list[LivePool]:
        """The live pools once the batch is written: those with time left, in the same order."""
        remaining = {p.id: p.remaining_ms for p in self.balances.pools}
        after = [LivePool(p.id, remaining.get(p.id, p.remaining_ms), p.expires_at, p.purchased_at) for p in live]
        return [p for p in after if p.remaining_ms > 0]
