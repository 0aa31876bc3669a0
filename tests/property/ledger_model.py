"""The independent side of the ledger properties: arithmetic, operations, strategies and the shadow model.

The arithmetic (banker's rounding, period ends, compute and token prices) is written from DESIGN.md alone, so
the shadow does not reuse the code under test; it shares only the catalog's numbers with the code. The
operations are small frozen dataclasses (a usage batch, a credit grant, a pool purchase, a plan change, the
scheduled tick, a replay) and the hypothesis strategies draw random histories of them. The shadow model keeps
its own account (period arithmetic, drawdown, proration and rounding) and says what each event must be
charged, what could pay for it just before it was applied, and which invoices each period close must write.
"""

from __future__ import annotations

import calendar
import dataclasses
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from hypothesis import HealthCheck, Phase
from hypothesis import event as tally
from hypothesis import strategies as st

from billing_core.plans import load_catalog
from billing_core.services.usage import Charged, UsageEventIn

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
        self.created_at = self.anchor  # the account is created at its first period's start
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
        if occurred < self.created_at:
            return Expected(event, "rejected", error_code="timestamp_before_account")
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
