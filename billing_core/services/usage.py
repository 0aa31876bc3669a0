"""Recording usage: one transaction per account per batch, idempotent per (account, event id)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime

from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from ..db.engine import lock_account, write_session
from ..db.models import Account, Pool, Project, UsageEvent
from ..drawdown import Balances, Charge, draw_compute, draw_money
from ..errors import NotFound
from ..periods import classify_timestamp
from ..pricing import UnknownModel, compute_cost_micros, token_cost
from .context import Billing
from .journal import Journal
from .periods import bring_up_to_date
from .rollups import RollupBatch
from .state import balances_of, live_pools, refresh_status
from .views import AccountView, account_view

MAX_BATCH = 1000
MAX_DURATION_MS = 31 * 24 * 3_600_000  # one event reports at most a month of compute
MAX_TOKENS = 10**10


@dataclass(frozen=True)
class UsageEventIn:
    """One usage event as reported; already of the right types (the HTTP layer checks those)."""

    id: str
    project_id: str
    kind: str  # compute | tokens
    timestamp: datetime | None = None
    duration_ms: int = 0
    model: str | None = None
    provider: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    key_source: str = "platform"
    agent: str | None = None
    run_id: str | None = None

    def body_hash(self) -> str:
        """A fingerprint of the body as sent, so a replay can be told from a conflicting reuse of the id."""
        body = asdict(self)
        body["timestamp"] = self.timestamp.isoformat() if self.timestamp else None
        return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@dataclass(frozen=True)
class Charged:
    allowance_ms: int = 0
    pool_ms: int = 0
    credit_micros: int = 0
    overage_micros: int = 0
    debt_micros: int = 0

    @classmethod
    def of(cls, charge: Charge) -> "Charged":
        return cls(charge.allowance_ms, charge.pool_ms, charge.credit_micros, charge.overage_micros,
                   charge.debt_micros)


@dataclass(frozen=True)
class EventResult:
    id: str
    status: str  # accepted | duplicate | rejected
    charged: Charged = field(default_factory=Charged)
    late: bool = False
    error_code: str | None = None
    error_message: str | None = None


@dataclass(frozen=True)
class BatchResult:
    results: list[EventResult]
    account: AccountView


def _reject(event_id: str, code: str, message: str) -> EventResult:
    return EventResult(id=event_id, status="rejected", error_code=code, error_message=message)


def invalid_reason(event: UsageEventIn) -> str | None:
    """Why an event of the right types is still not a usage fact, or None."""
    if not 1 <= len(event.id) <= 128:
        return "id must be 1 to 128 characters"
    if event.kind == "compute":
        if not 0 <= event.duration_ms <= MAX_DURATION_MS:
            return f"duration_ms must be between 0 and {MAX_DURATION_MS}"
    elif event.kind == "tokens":
        if not event.model:
            return "a tokens event needs a model"
        if not (0 <= event.input_tokens <= MAX_TOKENS and 0 <= event.output_tokens <= MAX_TOKENS):
            return f"token counts must be between 0 and {MAX_TOKENS}"
        if event.key_source not in ("platform", "byok"):
            return "key_source must be platform or byok"
    else:
        return "kind must be compute or tokens"
    return None


def record_usage(billing: Billing, account_id: str, events: list[UsageEventIn], *, now: datetime) -> BatchResult:
    """Apply a batch for one account; a unique-constraint race is retried once and then reads as duplicates."""
    try:
        return _record_once(billing, account_id, events, now)
    except IntegrityError:
        return _record_once(billing, account_id, events, now)


def _record_once(billing: Billing, account_id: str, events: list[UsageEventIn], now: datetime) -> BatchResult:
    with write_session(billing.engine) as session:
        account = lock_account(session, account_id)
        if account is None:
            raise NotFound("No such account.")
        journal = Journal(account_id, now)
        bring_up_to_date(session, billing.catalog, account, now, journal)
        session.flush()
        pools = live_pools(session, account_id)
        applier = _BatchApplier(billing, session, account, balances_of(account, pools, now), journal, now)
        results = applier.apply(events)
        applier.write()
        pools = live_pools(session, account_id)
        refresh_status(account, balances_of(account, pools, now), journal)
        journal.flush(session)
        return BatchResult(results, account_view(account, pools))


class _BatchApplier:
    """Walks one batch in order over the account's balances, then writes everything in bulk."""

    def __init__(self, billing: Billing, session: Session, account: Account, balances: Balances,
                 journal: Journal, now: datetime) -> None:
        self.catalog, self.session, self.account, self.journal, self.now = (
            billing.catalog, session, account, journal, now)
        self.balances = balances
        self.start_balances = balances
        self.rows: list[dict] = []
        self.rollups = RollupBatch(account.id)
        self.seen: dict[str, tuple[str, EventResult]] = {}

    def _existing(self, events: list[UsageEventIn]) -> dict[str, tuple[str, EventResult]]:
        ids = list({e.id for e in events})
        found: dict[str, tuple[str, EventResult]] = {}
        for i in range(0, len(ids), 500):
            stmt = select(UsageEvent.event_id, UsageEvent.body_hash, UsageEvent.allowance_ms, UsageEvent.pool_ms,
                          UsageEvent.credit_micros, UsageEvent.overage_micros, UsageEvent.debt_micros,
                          UsageEvent.late).where(UsageEvent.account_id == self.account.id,
                                                 UsageEvent.event_id.in_(ids[i:i + 500]))
            for eid, body_hash, a, p, c, o, d, late in self.session.execute(stmt):
                found[eid] = (body_hash, EventResult(eid, "duplicate", Charged(a, p, c, o, d), late))
        return found

    def apply(self, events: list[UsageEventIn]) -> list[EventResult]:
        self.seen = self._existing(events)
        projects = set(self.session.execute(select(Project.id).where(
            Project.account_id == self.account.id, Project.deleted_at.is_(None))).scalars())
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
        b, period, ref = self.balances, self.account.period_start, event.id
        self.journal.entry(book="allowance", kind="usage", amount=-charge.allowance_ms,
                           balance_after=b.allowance_remaining_ms, period_start=period, ref_type="event", ref_id=ref)
        remaining = {p.id: p.remaining_ms for p in b.pools}
        for pool_id, ms in charge.pool_draws:
            self.journal.entry(book="pool", kind="usage", amount=-ms, balance_after=remaining[pool_id],
                               period_start=period, ref_type="event", ref_id=ref, pool_id=pool_id)
        self.journal.entry(book="credit", kind="usage", amount=-(charge.credit_micros + charge.debt_micros),
                           balance_after=b.credit_micros, period_start=period, ref_type="event", ref_id=ref)
        self.journal.entry(book="overage", kind="usage", amount=charge.overage_micros,
                           balance_after=b.overage_micros, period_start=period, ref_type="event", ref_id=ref)

    def _row(self, event: UsageEventIn, body_hash: str, occurred: datetime, charge: Charge, list_cost: int,
             late: bool) -> dict:
        return dict(account_id=self.account.id, event_id=event.id, body_hash=body_hash,
                    project_id=event.project_id, kind=event.kind, occurred_at=occurred, recorded_at=self.now,
                    period_start=self.account.period_start, duration_ms=event.duration_ms, model=event.model,
                    provider=event.provider, input_tokens=event.input_tokens, output_tokens=event.output_tokens,
                    key_source=event.key_source if event.kind == "tokens" else None, agent=event.agent,
                    run_id=event.run_id, allowance_ms=charge.allowance_ms, pool_ms=charge.pool_ms,
                    credit_micros=charge.credit_micros, overage_micros=charge.overage_micros,
                    debt_micros=charge.debt_micros, list_cost_micros=list_cost, late=late)

    def write(self) -> None:
        if not self.rows:
            return
        self.session.execute(UsageEvent.__table__.insert(), self.rows)
        before = {p.id: p.remaining_ms for p in self.start_balances.pools}
        changed = [{"pid": p.id, "rem": p.remaining_ms} for p in self.balances.pools
                   if p.remaining_ms != before[p.id]]
        if changed:
            self.session.connection().execute(
                update(Pool.__table__).where(Pool.__table__.c.id == bindparam("pid"))
                .values(remaining_ms=bindparam("rem")), changed)
        acc, b = self.account, self.balances
        acc.used_ms = acc.included_ms - b.allowance_remaining_ms
        acc.credit_balance_micros = b.credit_micros
        acc.overage_micros = b.overage_micros
        self.rollups.write(self.session)
        self.session.flush()
        # Pool objects in the session are stale after the bulk update; reload them when next read.
        self.session.expire_all()
