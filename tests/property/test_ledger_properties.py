"""Property-based tests of the ledger, drawdown and idempotency, driving the real services on a real database.

Each example creates a fresh account (on a random plan with random credit) and runs a random sequence of
operations with time moving forward: usage batches (compute and token events, some late, some repeated or
conflicting inside the batch), credit grants, pool purchases (some expire during the run), plan changes
(upgrades at once, downgrades at the period close), the scheduled tick, and replays of events already sent.

The test keeps a shadow model of the account written from DESIGN.md alone (its own period arithmetic,
drawdown, proration and rounding; it shares only the catalog's numbers with the code) and, after every step,
reads everything back from the database and checks:

1. credit balance = sum of the credit-book entries (and every entry's balance_after is the running sum);
2. every pool: remaining >= 0 and = size - usage draws - expiry = sum of its pool-book entries;
3. the drawdown order of every accepted event, read from its own ledger entries: allowance first, pools only
   once the allowance is exhausted, earliest expiry first, money only once allowance and pools are exhausted;
   token events never touch allowance or pools;
4. replaying a prefix of the events already sent answers `duplicate` with the original charge and changes
   nothing (account row, pools, ledger, usage events, rollups, activity, invoices);
5. used_ms = -(sum of this period's allowance usage entries); included_ms - used_ms = sum of this period's
   allowance entries;
6. money is never float: every amount is an int, and on SQLite every stored value has integer storage class;

plus: the account row (plan, pending plan, period, allowance, credit, overage, cap, proration, status), pools,
charges, late flags, invoices and closed periods equal the shadow model's; every entry has a cause; the usage
events' charged columns equal their ledger entries; the daily rollups equal a regrouping of the events.
A separate property sends a known event id with another body and expects `idempotency_conflict`, no change.
The reduced variant runs on SQLite and PostgreSQL (`billing` fixture); another anchors accounts at month ends.
Runs: `.venv/bin/pytest -q tests/property --hypothesis-show-statistics` shows which paths were exercised.
"""

from __future__ import annotations

import calendar
import dataclasses
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from hypothesis import HealthCheck, Phase, given, note, settings, target
from hypothesis import event as tally
from hypothesis import strategies as st
from sqlalchemy import func, select, text
from sqlmodel import Session

from billing_core.db.models import (Account, Activity, DailyRollup, Invoice, LedgerEntry, Period, Pool,
                                    UsageEvent)
from billing_core.plans import load_catalog
from billing_core.services import accounts, periods, usage
from billing_core.services.usage import Charged, UsageEventIn
from tests.conftest import T0
from tests.factories import compute, make_account, tokens

CATALOG = load_catalog()
PLANS = ("hobby", "starter", "pro")
PLAN_RANK = {"hobby": 0, "starter": 1, "pro": 2}
MODELS = tuple(CATALOG.models) + ("mystery-model",)  # not in the price table: rejected on platform keys
FUTURE = -10  # back_minutes of an event stamped 10 minutes ahead: rejected
EDGE_OF_FUTURE = -5  # exactly 5 minutes ahead: still accepted
DAY = 86_400
US = timedelta(microseconds=1)

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
                phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink])


# --------------------------------------------------------------------------------------------------------
# Independent arithmetic (DESIGN.md), so the shadow does not reuse the code under test.

def round_half_even(num: int, den: int) -> int:
    q, r = divmod(num, den)
    if 2 * r > den or (2 * r == den and q % 2 == 1):
        q += 1
    return q


def months_after(anchor: datetime, n: int) -> datetime:
    """Day D of the month n months on, clamped to that month's last day."""
    years, month0 = divmod(anchor.month - 1 + n, 12)
    year, month = anchor.year + years, month0 + 1
    return anchor.replace(year=year, month=month, day=min(anchor.day, calendar.monthrange(year, month)[1]))


def compute_price(ms: int) -> int:
    return round_half_even(ms * CATALOG.compute_rate_micros_per_second, 1000)


def token_list_price(model: str, input_tokens: int, output_tokens: int) -> int | None:
    price = CATALOG.models.get(model)
    if price is None:
        return None
    return round_half_even(input_tokens * price.input_micros_per_mtok
                           + output_tokens * price.output_micros_per_mtok, 1_000_000)


# --------------------------------------------------------------------------------------------------------
# Operations (kept small and readable: hypothesis prints the shrunk list when a property fails).

@dataclass(frozen=True)
class Ev:
    kind: str
    duration_ms: int = 0
    model: str | None = None
    key_source: str = "platform"
    input_tokens: int = 0
    output_tokens: int = 0
    back_minutes: int | None = None  # timestamp = now - back_minutes; None: no timestamp; FUTURE: ahead


@dataclass(frozen=True)
class Again:
    """Resend the previous event of the batch: the same body, or (conflict) another body with the same id."""
    conflict: bool


@dataclass(frozen=True)
class Usage:
    advance: int  # seconds
    events: tuple


@dataclass(frozen=True)
class Grant:
    advance: int
    amount: int


@dataclass(frozen=True)
class AddPool:
    advance: int
    size_ms: int
    valid_days: int


@dataclass(frozen=True)
class SetPlan:
    advance: int
    plan: str


@dataclass(frozen=True)
class Tick:
    advance: int


@dataclass(frozen=True)
class Replay:
    advance: int
    count: int  # how many of the accepted events, from the first
    tick_first: bool  # run the due work at the new now before taking the snapshot


advances = st.one_of(st.integers(0, 10).map(lambda d: d * DAY), st.integers(0, 10 * DAY))
back_minutes = st.one_of(st.none(), st.none(), st.none(), st.none(), st.integers(0, 20 * 1440),
                         st.integers(1440, 20 * 1440), st.just(FUTURE), st.just(EDGE_OF_FUTURE))
durations = st.one_of(st.integers(0, 5_000_000), st.integers(1_500_000, 5_000_000))
compute_events = st.builds(Ev, kind=st.just("compute"), duration_ms=durations,
                           back_minutes=back_minutes)
token_counts = st.one_of(st.integers(0, 200_000), st.integers(0, 5_000_000))
token_events = st.builds(Ev, kind=st.just("tokens"), model=st.sampled_from(MODELS),
                         key_source=st.sampled_from(["platform", "byok"]), input_tokens=token_counts,
                         output_tokens=token_counts, back_minutes=back_minutes)
batch_items = st.one_of(compute_events, compute_events, token_events, st.builds(Again, st.booleans()))

usage_batches = st.builds(Usage, advances, st.lists(batch_items, min_size=1, max_size=8).map(tuple))
# Now and then a batch of 20 to 30 events: the bulk paths (on PostgreSQL, COPY from 20 rows) get exercised.
big_batches = st.builds(Usage, advances, st.lists(st.one_of(compute_events, compute_events, token_events),
                                                  min_size=20, max_size=30).map(tuple))
operations = st.one_of(  # a branch listed n times is drawn n times as often: usage is the most common step
    usage_batches, usage_batches, usage_batches, usage_batches, big_batches,
    st.builds(Grant, advances, st.one_of(st.integers(1, 5_000_000), st.integers(1, 200_000_000))),
    *[st.builds(AddPool, advances,
                st.one_of(st.integers(1, 3_000_000), st.integers(1, 10_000_000), st.integers(1_000_000, 36_000_000)),
                st.one_of(st.integers(1, 40), st.integers(20, 90), st.sampled_from([365, 3650])))
      for _ in range(2)],
    st.builds(SetPlan, advances, st.sampled_from(PLANS)),
    st.builds(Tick, advances),
    st.builds(Replay, advances, st.integers(1, 30), st.booleans()),
)
# Pool-heavy histories: several small pools with different expiries, drained by compute (property 3's order).
small_pools = st.builds(AddPool, st.integers(0, 2 * DAY), st.integers(1, 4_000_000),
                        st.one_of(st.integers(1, 30), st.sampled_from([365, 3650])))
compute_batches = st.builds(Usage, advances, st.lists(compute_events, min_size=1, max_size=5).map(tuple))
pool_heavy_operations = st.one_of(small_pools, small_pools, compute_batches, compute_batches,
                                  st.builds(Tick, advances), st.builds(Replay, advances, st.integers(1, 30),
                                                                       st.booleans()))
start_plans = st.sampled_from(("hobby", "hobby", "starter", "pro"))
start_credits = st.one_of(st.just(0), st.integers(0, 3_000_000), st.integers(0, 150_000_000))


# --------------------------------------------------------------------------------------------------------
# The shadow model.

@dataclass
class ShadowPool:
    id: str
    size_ms: int
    remaining_ms: int
    purchased_at: datetime
    expires_at: datetime
    expired: bool = False


@dataclass(frozen=True)
class Before:
    """What could pay for an event just before it was applied."""
    allowance_ms: int
    pools: tuple  # of ShadowPool copies that can be drawn, any order
    credit: int
    overage: int
    cap: int | None


@dataclass(frozen=True)
class Expected:
    event: UsageEventIn
    status: str
    charged: Charged = Charged()
    late: bool = False
    error_code: str | None = None
    pool_draws: tuple = ()
    before: Before | None = None
    occurred_at: datetime | None = None
    recorded_at: datetime | None = None
    period_start: datetime | None = None


@dataclass
class Shadow:
    anchor: datetime
    plan: str
    credit: int
    k: int = 0  # index of the current period
    pending: str | None = None
    included: int = 0
    used: int = 0
    overage: int = 0
    cap: int | None = None
    proration_due: int = 0
    pools: dict = field(default_factory=dict)
    events: dict = field(default_factory=dict)  # event id -> Expected of its acceptance
    invoices: list = field(default_factory=list)

    def __post_init__(self) -> None:
        self._set_plan_terms(self.plan)

    def _set_plan_terms(self, plan: str) -> None:
        spec = CATALOG.plan(plan)
        self.plan, self.included = plan, spec.included_ms
        self.cap = spec.spend_cap_micros if spec.overage else None

    @property
    def period_start(self) -> datetime:
        return months_after(self.anchor, self.k)

    @property
    def period_end(self) -> datetime:
        return months_after(self.anchor, self.k + 1)

    def headroom(self) -> int:
        return 0 if self.cap is None else max(0, self.cap - self.overage)

    def live_pools(self, now: datetime) -> list[ShadowPool]:
        return [p for p in self.pools.values() if not p.expired and p.remaining_ms > 0 and p.expires_at > now]

    def status(self, now: datetime) -> str:
        covered = (max(0, self.included - self.used) > 0 or sum(p.remaining_ms for p in self.live_pools(now)) > 0
                   or self.credit > 0 or self.headroom() > 0)
        return "active" if covered else "over_limit"

    def bring_up_to_date(self, now: datetime) -> bool:
        """Close ended periods and expire due pools; True when anything was due."""
        changed = False
        while self.period_end <= now:
            spec = CATALOG.plan(self.plan)
            self.invoices.append(dict(period_start=self.period_start, period_end=self.period_end, plan=self.plan,
                                      plan_fee_micros=spec.price_micros, overage_micros=self.overage,
                                      proration_micros=self.proration_due,
                                      total_micros=spec.price_micros + self.overage + self.proration_due,
                                      used_ms=self.used, included_ms=self.included))
            tally("period closed")
            if self.pending:
                tally("downgrade applied at close")
                self.plan, self.pending = self.pending, None
            self.k += 1
            self._set_plan_terms(self.plan)
            self.used = self.overage = self.proration_due = 0
            changed = True
        for pool in self.pools.values():
            if not pool.expired and pool.expires_at <= now:
                tally("pool expired" + (" with time left" if pool.remaining_ms else " empty"))
                pool.remaining_ms, pool.expired = 0, True
                changed = True
        return changed

    def grant(self, amount: int) -> None:
        self.credit += amount

    def set_plan(self, plan: str, now: datetime) -> None:
        if plan == self.plan:
            self.pending = None
            return
        old, new = CATALOG.plan(self.plan), CATALOG.plan(plan)
        if (new.price_micros, PLAN_RANK[plan]) > (old.price_micros, PLAN_RANK[self.plan]):
            due = 0
            if new.price_micros > old.price_micros and now < self.period_end:
                total = (self.period_end - self.period_start) // US
                left = (self.period_end - max(now, self.period_start)) // US
                due = round_half_even((new.price_micros - old.price_micros) * left, total)
            tally("upgrade, proration " + ("from credit" if due and self.credit >= due else "invoiced"))
            if due and self.credit >= due:
                self.credit -= due
            else:
                self.proration_due += due
            self._set_plan_terms(plan)
            self.pending = None
        else:
            tally("downgrade scheduled")
            self.pending = plan

    def _pay(self, cost: int) -> tuple[int, int, int]:
        from_credit = min(cost, max(self.credit, 0))
        rest = cost - from_credit
        overage = min(rest, self.headroom())
        debt = rest - overage
        self.credit -= from_credit + debt
        self.overage += overage
        return from_credit, overage, debt

    def apply(self, event: UsageEventIn, now: datetime) -> Expected:
        """One event of a batch, in order; the batch's due work has been done already."""
        if event.id in self.events:
            original = self.events[event.id]
            if original.event != event:
                return Expected(event, "rejected", error_code="idempotency_conflict")
            return Expected(event, "duplicate", original.charged, original.late)
        occurred = event.timestamp or now
        if occurred > now + timedelta(minutes=5):
            return Expected(event, "rejected", error_code="timestamp_in_future")
        late = occurred < self.period_start
        before = Before(max(0, self.included - self.used),
                        tuple(dataclasses.replace(p) for p in self.live_pools(now)),
                        self.credit, self.overage, self.cap)
        draws: list[tuple[str, int]] = []
        if event.kind == "compute":
            rest = event.duration_ms
            allowance = min(rest, before.allowance_ms)
            rest -= allowance
            self.used += allowance
            for pool in sorted(self.live_pools(now), key=lambda p: (p.expires_at, p.purchased_at, p.id)):
                if rest == 0:
                    break
                take = min(rest, pool.remaining_ms)
                pool.remaining_ms -= take
                rest -= take
                draws.append((pool.id, take))
            credit, overage, debt = self._pay(compute_price(rest)) if rest else (0, 0, 0)
        else:
            listed = token_list_price(event.model, event.input_tokens, event.output_tokens)
            if listed is None and event.key_source == "platform":
                return Expected(event, "rejected", error_code="unknown_model")
            allowance = 0
            credit, overage, debt = self._pay(0 if event.key_source == "byok" else listed)
        charged = Charged(allowance, sum(ms for _, ms in draws), credit, overage, debt)
        expected = Expected(event, "accepted", charged, late, pool_draws=tuple(draws), before=before,
                            occurred_at=occurred, recorded_at=now, period_start=self.period_start)
        self.events[event.id] = expected
        return expected


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


# --------------------------------------------------------------------------------------------------------
# The properties.

@settings(max_examples=30, **SETTINGS)
@given(plan=start_plans, credit=start_credits, ops=st.lists(operations, min_size=6, max_size=30))
def test_ledger_balances_drawdown_and_replays_hold_over_random_histories(sqlite_billing, plan, credit, ops):
    """Properties 1-6 after every step of a random history on SQLite."""
    run_scenario(sqlite_billing, plan, credit, ops)


@settings(max_examples=8, **SETTINGS)
@given(plan=start_plans, credit=start_credits, ops=st.lists(operations, min_size=3, max_size=12))
def test_ledger_properties_hold_on_sqlite_and_postgresql(billing, plan, credit, ops):
    """A reduced run of the same properties on each database of the `billing` fixture."""
    run_scenario(billing, plan, credit, ops)


@settings(max_examples=20, **SETTINGS)
@given(credit=start_credits, ops=st.lists(pool_heavy_operations, min_size=6, max_size=24))
def test_pools_drain_in_expiry_order_over_pool_heavy_histories(sqlite_billing, credit, ops):
    """The same properties on a hobby account that buys many small pools, so events span several pools."""
    run_scenario(sqlite_billing, "hobby", credit, ops)


MONTH_END_STARTS = [datetime(2026, 1, 31, 23, 30, tzinfo=timezone.utc),  # Jan 31 -> Feb 28 -> Mar 31
                    datetime(2028, 1, 30, 6, 0, tzinfo=timezone.utc),  # leap year: Feb 29
                    datetime(2026, 3, 31, 0, 0, tzinfo=timezone.utc),  # Apr 30, May 31
                    datetime(2026, 12, 31, 12, 0, tzinfo=timezone.utc)]  # across the new year


@settings(max_examples=10, **SETTINGS)
@given(start=st.sampled_from(MONTH_END_STARTS), plan=start_plans, credit=start_credits,
       ops=st.lists(operations, min_size=6, max_size=20))
def test_ledger_properties_hold_for_accounts_anchored_at_a_month_end(sqlite_billing, start, plan, credit, ops):
    """The same properties with period ends clamped to short months (DESIGN.md: Periods)."""
    run_scenario(sqlite_billing, plan, credit, ops, start)


def conflicting_bodies(event: UsageEventIn) -> st.SearchStrategy[UsageEventIn]:
    """Bodies with the event's id that differ from it in at least one field (all still valid events)."""
    changes: list[dict] = [dict(agent="another-agent"), dict(run_id="run-x"),
                           dict(timestamp=(event.timestamp or T0) - timedelta(seconds=1)),
                           dict(project_id="prj_someone_else")]
    if event.kind == "compute":
        changes += [dict(duration_ms=event.duration_ms + 1),
                    dict(duration_ms=max(0, event.duration_ms - 1) if event.duration_ms else 7),
                    dict(kind="tokens", model="claude-haiku-4", input_tokens=event.duration_ms, duration_ms=0)]
    else:
        changes += [dict(input_tokens=event.input_tokens + 1), dict(output_tokens=event.output_tokens + 1),
                    dict(key_source="byok" if event.key_source == "platform" else "platform"),
                    dict(model="gpt-4o" if event.model != "gpt-4o" else "gpt-4o-mini"),
                    dict(provider="someone-else")]
    return st.sampled_from(changes).map(lambda change: dataclasses.replace(event, **change)).filter(
        lambda other: other != event)


@settings(max_examples=30, **SETTINGS)
@given(plan=start_plans, credit=start_credits, ops=st.lists(operations, max_size=8), advance=advances,
       with_duplicate=st.booleans(), data=st.data())
def test_same_event_id_with_another_body_is_rejected_and_changes_nothing(sqlite_billing, plan, credit, ops,
                                                                        advance, with_duplicate, data):
    """A known id with another body (alone, or beside a true duplicate) is rejected and changes nothing."""
    scenario = run_scenario(sqlite_billing, plan, credit, ops)
    if not scenario.accepted:
        scenario.run(Usage(0, (Ev("compute", duration_ms=1_234_567),)))
    original = data.draw(st.sampled_from(scenario.accepted), label="original")
    other = data.draw(conflicting_bodies(original), label="other body")
    scenario.now += timedelta(seconds=advance)
    periods.run_due_work(sqlite_billing, scenario.now)
    scenario.shadow.bring_up_to_date(scenario.now)
    scenario.check()

    before = snapshot(sqlite_billing.engine, scenario.account_id)
    batch = [other, original] if with_duplicate else [other]
    result = usage.record_usage(sqlite_billing, scenario.account_id, batch, now=scenario.now)
    assert (result.results[0].status, result.results[0].error_code) == ("rejected", "idempotency_conflict")
    assert result.results[0].charged == Charged()
    if with_duplicate:
        first = scenario.shadow.events[original.id]
        assert (result.results[1].status, result.results[1].charged, result.results[1].late) == (
            "duplicate", first.charged, first.late)
    assert snapshot(sqlite_billing.engine, scenario.account_id) == before
    scenario.check()
