"""Running the ledger properties' histories on the real services and checking the database after every step.

Reading the database back (rows, a snapshot of everything a replay must leave untouched, the int check), the
Scenario that applies each operation to both the real services and the shadow model (see ledger_model) and
checks the invariants after every step, the drawdown-order check of property 3 for one accepted event, and
run_scenario, which the properties in test_ledger_properties call.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from hypothesis import event as tally
from hypothesis import note, target
from sqlalchemy import func, select, text
from sqlmodel import Session

from billing_core.db.models import (Account, Activity, DailyRollup, Invoice, LedgerEntry, Period, Pool,
                                    UsageEvent)
from billing_core.services import accounts, periods, usage
from billing_core.services.usage import UsageEventIn
from tests.conftest import T0
from tests.factories import compute, make_account, tokens

from .ledger_model import (CATALOG, AddPool, Again, Ev, Expected, Grant, Replay, SetPlan, Shadow, ShadowPool,
                           Tick, Usage, compute_price, token_list_price)


# --------------------------------------------------------------------------------------------------------
# Reading the database.

def _rows(session: Session, stmt) -> list[dict]:
    return [dict(r) for r in session.execute(stmt).mappings()]


def snapshot(engine, account_id: str) -> dict:
    """Everything a replay or a rejected conflict must leave untouched."""
    with Session(engine) as s:
        acc = Account.__table__
        ledger = LedgerEntry.__table__
        return dict(
            account=_rows(s, select(acc).where(acc.c.id == account_id)),
            pools=_rows(s, select(Pool.__table__).where(Pool.__table__.c.account_id == account_id)
                        .order_by(Pool.__table__.c.id)),
            ledger=tuple(s.execute(select(func.count(), func.max(ledger.c.id)).where(
                ledger.c.account_id == account_id)).one()),
            usage_events=s.execute(select(func.count()).select_from(UsageEvent.__table__).where(
                UsageEvent.__table__.c.account_id == account_id)).scalar_one(),
            rollups=_rows(s, select(DailyRollup.__table__).where(DailyRollup.__table__.c.account_id == account_id)
                          .order_by(*DailyRollup.__table__.primary_key.columns)),
            activity=s.execute(select(func.count()).select_from(Activity.__table__).where(
                Activity.__table__.c.account_id == account_id)).scalar_one(),
            invoices=_rows(s, select(Invoice.__table__).where(Invoice.__table__.c.account_id == account_id)
                           .order_by(Invoice.__table__.c.period_start)),
            periods=s.execute(select(func.count()).select_from(Period.__table__).where(
                Period.__table__.c.account_id == account_id)).scalar_one(),
        )


def is_int(value: Any) -> bool:
    return type(value) is int  # not bool, not float, not Decimal


# --------------------------------------------------------------------------------------------------------
# The scenario: runs operations on the real services and the shadow, and checks after every step.

class Scenario:
    def __init__(self, billing, plan: str, credit: int, start: datetime = T0) -> None:
        self.billing, self.engine = billing, billing.engine
        self.sqlite = billing.engine.dialect.name == "sqlite"
        self.now = start
        created = make_account(billing, plan=plan, credit_micros=credit, now=start,
                               email=f"prop-{uuid.uuid4().hex}@example.com")
        self.account_id, self.project_id = created.account_id, created.project_id
        self.shadow = Shadow(anchor=start, plan=plan, credit=credit)
        self.pool_draw_events = 0
        self.ledger_seen: list[tuple] = []  # every entry read so far, to check the ledger is append-only
        self.accepted: list[UsageEventIn] = []  # in the order they were first accepted
        self.serial = 0
        self.check()

    # ---- operations

    def run(self, op) -> None:
        note(f"step {op!r}")
        self.now += timedelta(seconds=op.advance)
        getattr(self, "_" + type(op).__name__.lower())(op)
        self.check()

    def _usage(self, op: Usage) -> None:
        batch: list[UsageEventIn] = []
        previous: UsageEventIn | None = None
        for item in op.events:
            if isinstance(item, Again):
                if previous is not None:
                    batch.append(other_body(previous) if item.conflict else previous)
                continue
            previous = self.build(item)
            batch.append(previous)
        self.shadow.bring_up_to_date(self.now)
        expected = [self.shadow.apply(event, self.now) for event in batch]
        result = usage.record_usage(self.billing, self.account_id, batch, now=self.now)
        assert len(result.results) == len(batch)
        for exp, got in zip(expected, result.results):
            assert got.id == exp.event.id
            assert (got.status, got.error_code) == (exp.status, exp.error_code), (exp.event, got)
            if got.status != "rejected":
                assert got.charged == exp.charged, (exp.event, got)
                assert got.late == exp.late, (exp.event, got)
                for value in dataclasses.astuple(got.charged):
                    assert is_int(value)
        new = [exp for exp in expected if exp.status == "accepted"]
        for exp in expected:
            tally(f"event {exp.status} {exp.error_code or ''}".strip())
            c = exp.charged
            for name, hit in (("paid by allowance", c.allowance_ms), ("paid by one pool", len(exp.pool_draws) == 1),
                              ("paid by several pools", len(exp.pool_draws) > 1), ("paid by credit", c.credit_micros),
                              ("paid by overage", c.overage_micros), ("paid by debt", c.debt_micros),
                              ("late", exp.late)):
                if exp.status == "accepted" and hit:
                    tally(f"accepted event {name}")
            if exp.status == "accepted" and exp.charged.debt_micros and exp.before.cap is not None:
                tally("accepted event past the spend cap (debt on pro)")
            self.pool_draw_events += bool(exp.pool_draws)
        if len(batch) >= 20:
            tally("batch of 20 or more events")
        self.check_drawdown(new)
        self.accepted.extend(exp.event for exp in new)

    def _grant(self, op: Grant) -> None:
        self.shadow.bring_up_to_date(self.now)
        accounts.grant_credit(self.billing, self.account_id, amount_micros=op.amount, now=self.now)
        self.shadow.grant(op.amount)

    def _addpool(self, op: AddPool) -> None:
        self.shadow.bring_up_to_date(self.now)
        accounts.add_pool(self.billing, self.account_id, size_ms=op.size_ms, valid_days=op.valid_days,
                          now=self.now)
        with Session(self.engine) as s:
            new = [p for p in s.execute(select(Pool).where(Pool.account_id == self.account_id)).scalars()
                   if p.id not in self.shadow.pools]
        assert len(new) == 1
        pool = new[0]
        assert (pool.size_ms, pool.remaining_ms, pool.purchased_at, pool.expires_at) == (
            op.size_ms, op.size_ms, self.now, self.now + timedelta(days=op.valid_days))
        self.shadow.pools[pool.id] = ShadowPool(pool.id, op.size_ms, op.size_ms, self.now,
                                                self.now + timedelta(days=op.valid_days))

    def _setplan(self, op: SetPlan) -> None:
        self.shadow.bring_up_to_date(self.now)
        accounts.set_plan(self.billing, self.account_id, op.plan, now=self.now)
        self.shadow.set_plan(op.plan, self.now)

    def _tick(self, op: Tick) -> None:
        periods.run_due_work(self.billing, self.now)
        self.shadow.bring_up_to_date(self.now)
        before = snapshot(self.engine, self.account_id)
        periods.run_due_work(self.billing, self.now)  # due work is idempotent: a second run changes nothing
        assert snapshot(self.engine, self.account_id) == before

    def _replay(self, op: Replay) -> None:
        """Property 4: a replayed prefix answers duplicate with the original charge and changes nothing."""
        if op.tick_first:
            periods.run_due_work(self.billing, self.now)
            self.shadow.bring_up_to_date(self.now)
            self.check()
        prefix = self.accepted[:op.count]
        if not prefix:
            return
        before = snapshot(self.engine, self.account_id)
        due = self.shadow.bring_up_to_date(self.now)
        tally("replay" + (" across due work" if due else ""))
        result = usage.record_usage(self.billing, self.account_id, list(prefix), now=self.now)
        for event, got in zip(prefix, result.results, strict=True):
            original = self.shadow.events[event.id]
            assert (got.id, got.status, got.charged, got.late) == (
                event.id, "duplicate", original.charged, original.late), (event, got)
        after = snapshot(self.engine, self.account_id)
        if not due:
            assert after == before
        else:  # only the due work (period close, pool expiry) may have changed anything
            assert after["usage_events"] == before["usage_events"]
            assert after["rollups"] == before["rollups"]
            with Session(self.engine) as s:
                since = before["ledger"][1] or 0
                caused = set(s.execute(select(LedgerEntry.ref_type).where(
                    LedgerEntry.account_id == self.account_id, LedgerEntry.id > since)).scalars())
            assert caused <= {"job", "invoice"}

    # ---- building events

    def build(self, spec: Ev) -> UsageEventIn:
        self.serial += 1
        stamp = None
        if spec.back_minutes is not None:
            stamp = self.now - timedelta(minutes=spec.back_minutes)
        if spec.kind == "compute":
            return compute(self.project_id, spec.duration_ms, id=f"c{self.serial}", timestamp=stamp)
        provider = CATALOG.models[spec.model].provider if spec.model in CATALOG.models else "mystery"
        return tokens(self.project_id, spec.model, spec.input_tokens, spec.output_tokens, id=f"t{self.serial}",
                      key_source=spec.key_source, provider=provider, timestamp=stamp)

    # ---- property 3, from each accepted event's own ledger entries

    def check_drawdown(self, accepted: list[Expected]) -> None:
        if not accepted:
            return
        with Session(self.engine) as s:
            entries = s.execute(select(LedgerEntry).where(
                LedgerEntry.account_id == self.account_id, LedgerEntry.ref_type == "event",
                LedgerEntry.ref_id.in_([e.event.id for e in accepted])).order_by(LedgerEntry.id)).scalars().all()
        by_event: dict[str, list[LedgerEntry]] = defaultdict(list)
        for entry in entries:
            by_event[entry.ref_id].append(entry)
        for exp in accepted:
            assert_drawdown_order(exp, by_event.get(exp.event.id, []), self.shadow.period_start)

    # ---- invariants after every step

    def check(self) -> None:
        with Session(self.engine) as s:
            acc = s.get(Account, self.account_id)
            entries = s.execute(select(LedgerEntry).where(LedgerEntry.account_id == self.account_id)
                                .order_by(LedgerEntry.id)).scalars().all()
            pools = s.execute(select(Pool).where(Pool.account_id == self.account_id)).scalars().all()
            events = s.execute(select(UsageEvent).where(UsageEvent.account_id == self.account_id)).scalars().all()
            rollups = s.execute(select(DailyRollup).where(
                DailyRollup.account_id == self.account_id)).scalars().all()
            invoices = s.execute(select(Invoice).where(Invoice.account_id == self.account_id)
                                 .order_by(Invoice.period_start)).scalars().all()
            closed = s.execute(select(Period).where(Period.account_id == self.account_id)
                               .order_by(Period.start)).scalars().all()
            storage = self._storage_classes(s) if self.sqlite else {}
        sh, now = self.shadow, self.now

        # the ledger is append-only: what was there before is still there, unchanged
        rows = [(e.id, e.book, e.kind, e.amount, e.balance_after, e.pool_id, e.period_start, e.ref_type, e.ref_id,
                 e.created_at) for e in entries]
        assert rows[:len(self.ledger_seen)] == self.ledger_seen
        self.ledger_seen = rows

        # 6. money and time are ints, never floats
        for e in entries:
            assert is_int(e.amount) and is_int(e.balance_after), e
        for name in ("included_ms", "used_ms", "credit_balance_micros", "overage_micros", "proration_due_micros"):
            assert is_int(getattr(acc, name)), name
        assert acc.spend_cap_micros is None or is_int(acc.spend_cap_micros)
        for p in pools:
            assert is_int(p.size_ms) and is_int(p.remaining_ms) and is_int(p.price_micros)
        for ev in events:
            for name in ("duration_ms", "allowance_ms", "pool_ms", "credit_micros", "overage_micros",
                         "debt_micros", "list_cost_micros"):
                assert is_int(getattr(ev, name)), name
        for inv in invoices:
            assert all(is_int(v) for v in (inv.plan_fee_micros, inv.overage_micros, inv.proration_micros,
                                           inv.total_micros))
        assert all(kind == "integer" for kind in storage), storage

        # no entry without a cause
        event_ids = {ev.event_id for ev in events}
        for e in entries:
            assert e.amount != 0, e
            assert e.book in ("allowance", "pool", "credit", "overage"), e
            assert e.ref_type in ("event", "grant", "job", "plan_change", "invoice"), e
            if e.ref_type == "event":
                assert e.ref_id in event_ids, e
            assert (e.pool_id is not None) == (e.book == "pool"), e

        # 1. credit balance = sum of its entries; each balance_after is the running sum
        running = 0
        for e in (e for e in entries if e.book == "credit"):
            running += e.amount
            assert e.balance_after == running, e
        assert acc.credit_balance_micros == running

        # 2. pools: remaining >= 0 and = size - draws - expiry = sum of its entries
        by_pool: dict[str, list[LedgerEntry]] = defaultdict(list)
        for e in entries:
            if e.book == "pool":
                by_pool[e.pool_id].append(e)
        assert set(by_pool) <= {p.id for p in pools}
        for p in pools:
            mine = by_pool[p.id]
            assert p.remaining_ms >= 0, p
            purchases = [e.amount for e in mine if e.kind == "purchase"]
            draws = -sum(e.amount for e in mine if e.kind == "usage")
            expiry = -sum(e.amount for e in mine if e.kind == "expiry")
            assert purchases == [p.size_ms], (p, mine)
            assert {e.kind for e in mine} <= {"purchase", "usage", "expiry"}
            assert all(e.amount < 0 for e in mine if e.kind != "purchase"), mine
            assert p.remaining_ms == p.size_ms - draws - expiry == sum(e.amount for e in mine), (p, mine)
            running = 0
            for e in mine:
                running += e.amount
                assert e.balance_after == running, e
            if p.expired_at is not None:
                assert p.remaining_ms == 0 and expiry + draws == p.size_ms
            assert (p.expired_at is not None) == sh.pools[p.id].expired, p
            assert p.remaining_ms == sh.pools[p.id].remaining_ms, p

        # 5. allowance of the current period, and the closed periods' books balance to zero
        allowance_by_period: dict[datetime, list[LedgerEntry]] = defaultdict(list)
        overage_by_period: dict[datetime, list[LedgerEntry]] = defaultdict(list)
        for e in entries:
            if e.book == "allowance":
                allowance_by_period[e.period_start].append(e)
            elif e.book == "overage":
                overage_by_period[e.period_start].append(e)
        current = allowance_by_period[acc.period_start]
        assert acc.used_ms == -sum(e.amount for e in current if e.kind == "usage"), current
        assert acc.included_ms - acc.used_ms == sum(e.amount for e in current), current
        assert 0 <= acc.used_ms <= acc.included_ms
        assert acc.overage_micros == sum(e.amount for e in overage_by_period[acc.period_start])
        for book in (allowance_by_period, overage_by_period):
            for start, mine in book.items():
                running = 0
                for e in mine:
                    running += e.amount
                    assert e.balance_after == running, (start, e)
                if start != acc.period_start:
                    assert running == 0, (start, mine)
        for period in closed:
            usage_ms = -sum(e.amount for e in allowance_by_period[period.start] if e.kind == "usage")
            assert period.used_ms == usage_ms, period
        assert set(allowance_by_period) <= {p.start for p in closed} | {acc.period_start}

        # usage events' charged columns = their ledger entries; rollups add up to the events
        by_ref: dict[str, list[LedgerEntry]] = defaultdict(list)
        for e in entries:
            if e.ref_type == "event":
                by_ref[e.ref_id].append(e)
        for ev in events:
            mine = by_ref[ev.event_id]
            assert ev.allowance_ms == -sum(e.amount for e in mine if e.book == "allowance"), ev
            assert ev.pool_ms == -sum(e.amount for e in mine if e.book == "pool"), ev
            assert ev.credit_micros + ev.debt_micros == -sum(e.amount for e in mine if e.book == "credit"), ev
            assert ev.overage_micros == sum(e.amount for e in mine if e.book == "overage"), ev
            exp = sh.events[ev.event_id]
            assert (ev.allowance_ms, ev.pool_ms, ev.credit_micros, ev.overage_micros, ev.debt_micros) == \
                dataclasses.astuple(exp.charged), ev
            assert (ev.late, ev.occurred_at, ev.recorded_at, ev.period_start) == (
                exp.late, exp.occurred_at, exp.recorded_at, exp.period_start), ev
        assert len(events) == len(sh.events)
        expected_rollups: dict[tuple, list[int]] = defaultdict(lambda: [0] * 6)
        for ev in events:
            key = (ev.occurred_at.date(), ev.project_id, ev.kind, ev.agent or "",
                   (ev.model or "") if ev.kind == "tokens" else "")
            sums = expected_rollups[key]
            for i, value in enumerate((1, ev.duration_ms, ev.input_tokens, ev.output_tokens,
                                       ev.credit_micros + ev.overage_micros + ev.debt_micros, ev.list_cost_micros)):
                sums[i] += value
        assert {(r.day, r.project_id, r.meter, r.agent, r.model): [r.events, r.compute_ms, r.input_tokens,
                r.output_tokens, r.cost_micros, r.list_cost_micros] for r in rollups} == dict(expected_rollups)
        assert sum(r.events for r in rollups) == len(events)
        assert sum(r.compute_ms for r in rollups) == sum(ev.duration_ms for ev in events if ev.kind == "compute")
        assert sum(r.cost_micros for r in rollups) == sum(
            ev.credit_micros + ev.overage_micros + ev.debt_micros for ev in events)
        assert sum(r.list_cost_micros for r in rollups) == sum(ev.list_cost_micros for ev in events)

        # the account row, the invoices and the closed periods equal the shadow's
        assert (acc.plan, acc.pending_plan, acc.period_start, acc.period_end, acc.included_ms, acc.used_ms,
                acc.credit_balance_micros, acc.overage_micros, acc.spend_cap_micros, acc.proration_due_micros) == (
            sh.plan, sh.pending, sh.period_start, sh.period_end, sh.included, sh.used, sh.credit, sh.overage,
            sh.cap, sh.proration_due)
        assert acc.status == sh.status(now), (acc.status, sh)
        assert [dict(period_start=i.period_start, period_end=i.period_end, plan=i.plan,
                     plan_fee_micros=i.plan_fee_micros, overage_micros=i.overage_micros,
                     proration_micros=i.proration_micros, total_micros=i.total_micros) for i in invoices] == [
            {k: v for k, v in inv.items() if k not in ("used_ms", "included_ms")} for inv in sh.invoices]
        assert [(p.start, p.end, p.used_ms, p.included_ms) for p in closed] == [
            (inv["period_start"], inv["period_end"], inv["used_ms"], inv["included_ms"]) for inv in sh.invoices]

    def _storage_classes(self, s: Session) -> set[str]:
        """SQLite keeps each cell's own type: every money or ms cell of the account must be an integer."""
        columns = {
            ("ledger_entries", "account_id"): ("amount", "balance_after"),
            ("accounts", "id"): ("included_ms", "used_ms", "credit_balance_micros", "overage_micros",
                                 "proration_due_micros"),
            ("pools", "account_id"): ("size_ms", "remaining_ms", "price_micros"),
            ("usage_events", "account_id"): ("duration_ms", "allowance_ms", "pool_ms", "credit_micros",
                                             "overage_micros", "debt_micros", "list_cost_micros"),
            ("daily_rollups", "account_id"): ("compute_ms", "cost_micros", "list_cost_micros"),
            ("invoices", "account_id"): ("plan_fee_micros", "overage_micros", "proration_micros", "total_micros"),
        }
        parts = [f"SELECT typeof({column}) AS kind FROM {table} WHERE {key} = :a"
                 for (table, key), names in columns.items() for column in names]
        return set(s.execute(text(f"SELECT DISTINCT kind FROM ({' UNION ALL '.join(parts)})"),
                             {"a": self.account_id}).scalars())


def other_body(event: UsageEventIn) -> UsageEventIn:
    """The same id with a body that differs in one field."""
    if event.kind == "compute":
        return dataclasses.replace(event, duration_ms=event.duration_ms + 1)
    return dataclasses.replace(event, output_tokens=event.output_tokens + 1)


def assert_drawdown_order(exp: Expected, entries: list[LedgerEntry], period_start: datetime) -> None:
    """Property 3 for one accepted event, from its ledger entries and what could pay just before it."""
    event, before = exp.event, exp.before
    assert all(e.period_start == period_start for e in entries), entries
    assert all(e.kind == "usage" for e in entries), entries
    allowance = -sum(e.amount for e in entries if e.book == "allowance")
    draws = [(e.pool_id, -e.amount) for e in entries if e.book == "pool"]
    credit_paid = -sum(e.amount for e in entries if e.book == "credit")  # credit and debt
    overage = sum(e.amount for e in entries if e.book == "overage")
    money = credit_paid + overage
    assert allowance >= 0 and overage >= 0 and credit_paid >= 0, entries
    if event.kind == "tokens":
        assert allowance == 0 and not draws, entries  # tokens never draw allowance or pools
        listed = token_list_price(event.model, event.input_tokens, event.output_tokens) or 0
        assert money == (0 if event.key_source == "byok" else listed), entries
    else:
        d = event.duration_ms
        pools = {p.id: p for p in before.pools}
        pool_total = sum(p.remaining_ms for p in before.pools)
        pool_drawn = sum(ms for _, ms in draws)
        # 1. allowance first, up to what remains
        assert allowance == min(d, before.allowance_ms), (allowance, before)
        # 2. pools only when the allowance could not cover the event, earliest expiry first
        if draws:
            assert before.allowance_ms < d and allowance == before.allowance_ms, (before, entries)
        ids = [pid for pid, _ in draws]
        assert len(set(ids)) == len(ids) and set(ids) <= set(pools), (draws, before)
        order = [(pools[pid].expires_at, pools[pid].purchased_at) for pid in ids]
        assert order == sorted(order), draws
        for i, (pid, ms) in enumerate(draws):
            assert 0 < ms <= pools[pid].remaining_ms
            if i < len(draws) - 1:
                assert ms == pools[pid].remaining_ms, ("a later pool drawn before this one was empty", draws)
        if draws:
            last = (pools[ids[-1]].expires_at, pools[ids[-1]].purchased_at)
            skipped = [p for p in before.pools if p.id not in ids and (p.expires_at, p.purchased_at) < last]
            assert not skipped, ("a pool expiring earlier was skipped", skipped, draws)
        assert allowance + pool_drawn == min(d, before.allowance_ms + pool_total), (d, before, entries)
        # 3./4. money only when the allowance and every pool are exhausted
        if money:
            assert allowance == before.allowance_ms and pool_drawn == pool_total, (before, entries)
        assert money == compute_price(d - allowance - pool_drawn), (d, entries)
    # the money split: credit while positive, then overage up to the cap, then debt
    from_credit = min(money, max(before.credit, 0))
    headroom = 0 if before.cap is None else max(0, before.cap - before.overage)
    assert overage == min(money - from_credit, headroom), (money, before, entries)
    assert (exp.charged.allowance_ms, exp.charged.pool_ms, exp.charged.credit_micros + exp.charged.debt_micros,
            exp.charged.overage_micros) == (allowance, sum(ms for _, ms in draws), credit_paid, overage)
    assert list(exp.pool_draws) == draws


def run_scenario(billing, plan: str, credit: int, ops: list, start: datetime = T0) -> Scenario:
    scenario = Scenario(billing, plan, credit, start)
    for op in ops:
        scenario.run(op)
    target(float(scenario.pool_draw_events), label="events paid by pools")
    return scenario
