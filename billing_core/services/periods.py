"""Period close (invoice, allowance reset, pending downgrade) and pool expiry; both idempotent."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlmodel import Session

from ..db.engine import lock_account, read_session, write_session
from ..db.models import Account, Invoice, Period, Pool
from ..ids import new_id
from ..invoices import draft_invoice
from ..money import format_usd
from ..payments.numbers import next_number
from ..periods import Period as PeriodSpan
from ..periods import next_period
from ..plans import Catalog
from ..sync.outbox import account_item, note_changed
from .context import Billing
from .journal import Journal
from .state import balances_of, live_pools, refresh_status


def close_due_periods(session: Session, catalog: Catalog, account: Account, now: datetime,
                      journal: Journal) -> int:
    """Close every period of a locked account that has ended by `now`; returns how many closed."""
    closed = 0
    while account.period_end <= now:
        span = PeriodSpan(account.period_start, account.period_end)
        plan = catalog.plan(account.plan)
        draft = draft_invoice(period=span, plan=account.plan, plan_fee_micros=plan.price_micros,
                              overage_micros=account.overage_micros,
                              proration_due_micros=account.proration_due_micros)
        invoice_id = new_id("inv")
        session.add(Invoice(id=invoice_id, account_id=account.id, period_start=span.start, period_end=span.end,
                            plan=account.plan, plan_fee_micros=plan.price_micros,
                            overage_micros=account.overage_micros,
                            proration_micros=account.proration_due_micros, total_micros=draft.total_micros,
                            created_at=now, number=next_number(session, "invoice")))
        session.add(Period(account_id=account.id, start=span.start, end=span.end, plan=account.plan,
                           included_ms=account.included_ms, used_ms=account.used_ms,
                           overage_micros=account.overage_micros, invoice_id=invoice_id, closed_at=now))
        journal.entry(book="overage", kind="invoiced", amount=-account.overage_micros, balance_after=0,
                      period_start=span.start, ref_type="invoice", ref_id=invoice_id)
        journal.entry(book="allowance", kind="expired", amount=-(account.included_ms - account.used_ms),
                      balance_after=0, period_start=span.start, ref_type="job", ref_id=f"close:{invoice_id}")
        journal.activity("period_closed", invoice_id,
                         f"Period closed; invoice {format_usd(draft.total_micros)}.")

        if account.pending_plan:
            journal.activity("plan_changed", account.id, f"Plan changed from {account.plan} to "
                                                         f"{account.pending_plan}.")
            account.plan, account.pending_plan = account.pending_plan, None
        new_plan = catalog.plan(account.plan)
        nxt = next_period(account.anchor_at, span)
        account.period_start, account.period_end = nxt.start, nxt.end
        account.included_ms, account.used_ms = new_plan.included_ms, 0
        account.overage_micros, account.proration_due_micros = 0, 0
        account.spend_cap_micros = new_plan.spend_cap_micros if new_plan.overage else None
        journal.entry(book="allowance", kind="grant", amount=new_plan.included_ms,
                      balance_after=new_plan.included_ms, period_start=nxt.start, ref_type="job",
                      ref_id=f"open:{invoice_id}")
        closed += 1
    return closed


def expire_pools(session: Session, account: Account, now: datetime, journal: Journal) -> int:
    """Forfeit what is left in pools past their expiry, with a ledger entry each."""
    stmt = select(Pool).where(Pool.account_id == account.id, Pool.expired_at.is_(None), Pool.expires_at <= now)
    expired = 0
    for pool in session.execute(stmt).scalars():
        if pool.remaining_ms:
            journal.entry(book="pool", kind="expiry", amount=-pool.remaining_ms, balance_after=0,
                          period_start=account.period_start, ref_type="job", ref_id=f"expire:{pool.id}",
                          pool_id=pool.id)
        journal.activity("pool_expired", pool.id,
                         f"Pool expired with {pool.remaining_ms // 60_000} min unused.")
        pool.remaining_ms, pool.expired_at = 0, now
        expired += 1
    return expired


def bring_up_to_date(session: Session, catalog: Catalog, account: Account, now: datetime,
                     journal: Journal) -> None:
    """Run the due period work of one locked account before anything else touches it."""
    close_due_periods(session, catalog, account, now, journal)
    expire_pools(session, account, now, journal)


@dataclass(frozen=True)
class TickResult:
    accounts_checked: int
    periods_closed: int
    pools_expired: int


def run_due_work(billing: Billing, now: datetime) -> TickResult:
    """Close due periods and expire due pools for every account; safe to run twice or concurrently."""
    with read_session(billing.engine) as session:
        due_periods = set(session.execute(select(Account.id).where(Account.period_end <= now)).scalars())
        due_pools = set(session.execute(select(Pool.account_id).where(
            Pool.expired_at.is_(None), Pool.expires_at <= now)).scalars())
    closed = expired = 0
    for account_id in sorted(due_periods | due_pools):
        with write_session(billing.engine) as session:
            account = lock_account(session, account_id)
            if account is None:
                continue
            journal = Journal(account_id, now)
            closed += close_due_periods(session, billing.catalog, account, now, journal)
            expired += expire_pools(session, account, now, journal)
            session.flush()
            refresh_status(account, balances_of(account, live_pools(session, account_id), now), journal)
            note_changed(session, now, account_item(account_id))  # new allowance, pools gone
            journal.flush(session)
    return TickResult(len(due_periods | due_pools), closed, expired)
