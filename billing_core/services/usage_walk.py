"""Walking one batch of usage, in order, over an account's balances: each event's result, its drawdown, its
ledger entries, its usage_events row and its rollup sums, all in memory. What the walk leaves is written by
`write` (pools, rollups) and by services/usage.py (the account, the ledger), in the batch's transaction."""

from __future__ import annotations

from datetime import datetime
from types import SimpleNamespace
from typing import Callable

from sqlalchemy.engine import Connection

from ..drawdown import Charge, draw_compute, draw_money
from ..periods import classify_timestamp
from ..plans import Catalog
from .chain import State
from .journal import Journal
from .rollups import RollupBatch
from .state import balances_of, refresh_status
from .usage_events import Charged, EventResult, Prepared, UsageEventIn, _reject
from .usage_sql import BALANCE_FIELDS, UPDATE_POOL, LivePool


class Walk:
    """One batch walked over a starting state: `account` (its columns as attributes; changed in place to what
    the batch leaves), its `live` pools, its `projects` and the ids in the batch already recorded."""

    def __init__(self, catalog: Catalog, account: SimpleNamespace, live: list[LivePool], projects: set[str],
                 existing: dict[str, tuple[str, EventResult]], journal: Journal, now: datetime,
                 add_row: Callable[[tuple], None]) -> None:
        self.catalog, self.account, self.journal, self.now = catalog, account, journal, now
        self.projects = projects
        self.loaded = {f: getattr(account, f) for f in BALANCE_FIELDS}  # to tell whether the row must change
        self.balances = self.start_balances = balances_of(account, live, now)
        self.live = live
        self.accepted = 0
        self.add_row = add_row  # takes each accepted event's usage_events row
        self.rollups = RollupBatch(account.id)
        self.seen = existing  # grows with the batch's own accepted events (a repeat in the batch is a duplicate)
        self.results: list[EventResult] = []

    def run(self, events: list[UsageEventIn], prepared: list[Prepared]) -> Walk:
        self.results = [self._one(event, prep) for event, prep in zip(events, prepared)]
        if self.accepted:
            acc, b = self.account, self.balances
            acc.used_ms = acc.included_ms - b.allowance_remaining_ms
            acc.credit_balance_micros = b.credit_micros
            acc.overage_micros = b.overage_micros
            remaining = {p.id: p.remaining_ms for p in b.pools}
            after = [LivePool(p.id, remaining.get(p.id, p.remaining_ms), p.expires_at, p.purchased_at)
                     for p in self.live]
            self.live = [p for p in after if p.remaining_ms > 0]
        refresh_status(self.account, balances_of(self.account, self.live, self.now), self.journal)
        return self

    def state_after(self) -> State:
        """The account as this batch leaves it, for the next batch to walk over (services/chain.py)."""
        return State(dict(vars(self.account)), tuple(self.live), frozenset(self.projects), self.seen)

    def write(self, conn: Connection) -> None:
        """The pools drawn from and the rollups (the events' rows went to add_row; the account and the
        ledger are written by the caller)."""
        if not self.accepted:
            return
        before = {p.id: p.remaining_ms for p in self.start_balances.pools}
        changed = [{"pid": p.id, "rem": p.remaining_ms} for p in self.balances.pools
                   if p.remaining_ms != before[p.id]]
        if changed:
            UPDATE_POOL.execute(conn, changed)
        self.rollups.write(conn)

    def _one(self, event: UsageEventIn, prep: Prepared) -> EventResult:
        body_hash = prep.body_hash
        if event.id in self.seen:
            original_hash, original = self.seen[event.id]
            if original_hash != body_hash:
                return _reject(event.id, "idempotency_conflict",
                               "This event id was already used with a different body.")
            return EventResult(event.id, "duplicate", original.charged, original.late)
        if prep.invalid:
            return _reject(event.id, "invalid_event", prep.invalid + ".")
        if event.project_id not in self.projects:
            return _reject(event.id, "unknown_project", "No such project in this account.")
        occurred = event.timestamp or self.now
        when = classify_timestamp(occurred, now=self.now, period_start=self.account.period_start)
        if when == "future":
            return _reject(event.id, "timestamp_in_future", "The timestamp is more than 5 minutes ahead.")
        if occurred < self.account.created_at:  # the row is at hand: no query, one comparison
            return _reject(event.id, "timestamp_before_account", "The timestamp is before the account was created.")
        if prep.unknown_model:
            return _reject(event.id, "unknown_model", f"Model {event.model!r} is not in the price table.")
        if prep.charged is None:
            charge, self.balances = draw_compute(self.balances, event.duration_ms,
                                                 self.catalog.compute_rate_micros_per_second)
        else:
            charge, self.balances = draw_money(self.balances, prep.charged)
        pool_ms, late = charge.pool_ms, when == "late"
        result = EventResult(event.id, "accepted", Charged(charge.allowance_ms, pool_ms, charge.credit_micros,
                                                           charge.overage_micros, charge.debt_micros), late)
        self.seen[event.id] = (body_hash, result)
        self._journal(event, charge)
        self.accepted += 1
        self.add_row(self._row(event, body_hash, occurred, charge, pool_ms, prep.list_cost, late))
        self.rollups.add(event, occurred, charge.money_micros, prep.list_cost)
        return result

    def _journal(self, event: UsageEventIn, charge: Charge) -> None:
        """The event's ledger entries, added to the journal as Journal.entry would (a zero amount is no entry),
        without a keyword call per entry."""
        b, acc, period, ref, now, add = (self.balances, self.account.id, self.account.period_start, event.id,
                                         self.now, self.journal.entries.append)
        if charge.allowance_ms:
            add((acc, "allowance", "usage", -charge.allowance_ms, b.allowance_remaining_ms, None, period, "event",
                 ref, now))
        if charge.pool_draws:
            remaining = {p.id: p.remaining_ms for p in b.pools}
            for pool_id, ms in charge.pool_draws:
                add((acc, "pool", "usage", -ms, remaining[pool_id], pool_id, period, "event", ref, now))
        if charge.credit_micros or charge.debt_micros:
            add((acc, "credit", "usage", -(charge.credit_micros + charge.debt_micros), b.credit_micros, None,
                 period, "event", ref, now))
        if charge.overage_micros:
            add((acc, "overage", "usage", charge.overage_micros, b.overage_micros, None, period, "event", ref, now))

    def _row(self, event: UsageEventIn, body_hash: str, occurred: datetime, charge: Charge, pool_ms: int,
             list_cost: int, late: bool) -> tuple:
        """One usage_events row, in EVENT_COLUMNS order."""
        return (self.account.id, event.id, body_hash, event.project_id, event.kind, occurred, self.now,
                self.account.period_start, event.duration_ms, event.model, event.provider, event.input_tokens,
                event.output_tokens, event.key_source if event.kind == "tokens" else None, event.agent,
                event.run_id, charge.allowance_ms, pool_ms, charge.credit_micros, charge.overage_micros,
                charge.debt_micros, list_cost, late)
