"""Operator actions on an account: create, grant credit, add a pool, change plan, suspend, resume."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from .. import notify
from ..db.engine import lock_account, write_session
from ..db.models import Account, AccountKey, Pool
from ..errors import Conflict, Invalid, NotFound
from ..ids import new_id
from ..invoices import prorate_upgrade
from ..keys import ACCOUNT_KEY_PREFIX, generate, stored_form
from ..money import MAX_MICROS, format_usd
from ..periods import Period as PeriodSpan
from ..periods import add_months
from ..sync.outbox import account_item, key_item, note_changed, project_item
from .context import Billing
from .journal import Journal
from .periods import bring_up_to_date
from .projects import new_project, note_hmac_key_created
from .state import balances_of, live_pools, refresh_status
from .views import AccountView, account_view


@dataclass(frozen=True)
class CreatedAccount:
    account_id: str
    project_id: str
    api_key: str  # shown once; only its hash is stored


def _locked(session: Session, account_id: str) -> Account:
    account = lock_account(session, account_id)
    if account is None:
        raise NotFound(f"No account with id {account_id}.")
    return account


def _finish(session: Session, account: Account, journal: Journal, now: datetime) -> AccountView:
    session.flush()
    pools = live_pools(session, account.id)
    refresh_status(account, balances_of(account, pools, now), journal)
    note_changed(session, now, account_item(account.id))  # the edge's copy of status and limits
    journal.flush(session)
    return account_view(account, pools)


def issue_account_key(session: Session, *, account_id: str, name: str, now: datetime) -> tuple[str, AccountKey]:
    """Create a key row from a fresh secret; the secret is returned to show once."""
    secret = generate(ACCOUNT_KEY_PREFIX)
    stored = stored_form(secret)
    row = AccountKey(id=new_id("key"), account_id=account_id, name=name, key_hash=stored.key_hash,
                     prefix=stored.prefix, last4=stored.last4, created_at=now)
    session.add(row)
    note_changed(session, now, key_item(stored.key_hash))  # every path that issues a key comes here
    return secret, row


def create_account(billing: Billing, *, email: str, plan: str = "hobby", credit_micros: int = 0,
                   now: datetime, project_name: str = "default") -> CreatedAccount:
    email = email.strip().lower()
    try:
        with write_session(billing.engine) as session:
            return open_account(session, billing, email=email, plan=plan, credit_micros=credit_micros, now=now,
                                project_name=project_name)
    except IntegrityError:
        raise Conflict(f"An account with email {email} already exists.", code="email_taken") from None


def open_account(session: Session, billing: Billing, *, email: str, plan: str = "hobby", credit_micros: int = 0,
                 now: datetime, project_name: str = "default") -> CreatedAccount:
    """create_account inside the caller's transaction, so what it writes next (a user) commits with it or
    not at all. An email already taken surfaces as IntegrityError, at the flush or the commit."""
    email = email.strip().lower()
    if "@" not in email or len(email) > 320:
        raise Invalid("Give a valid email address.", code="invalid_email")
    if plan not in billing.catalog.plans:
        raise Invalid(f"Unknown plan {plan!r}; choose one of {', '.join(billing.catalog.plans)}.",
                      code="unknown_plan")
    if not 0 <= credit_micros <= MAX_MICROS:
        raise Invalid("Credit must be between 0 and 1,000,000,000 USD.", code="invalid_amount")
    spec = billing.catalog.plan(plan)
    account_id = new_id("acc")
    account = Account(id=account_id, email=email, plan=plan, anchor_at=now, period_start=now,
                      period_end=add_months(now, 1), included_ms=spec.included_ms,
                      spend_cap_micros=spec.spend_cap_micros if spec.overage else None, created_at=now)
    session.add(account)
    project = new_project(billing.keyring, account_id=account_id, name=project_name, now=now)
    session.add(project)
    session.flush()
    secret, _ = issue_account_key(session, account_id=account_id, name="default", now=now)
    journal = Journal(account_id, now)
    journal.entry(book="allowance", kind="grant", amount=spec.included_ms, balance_after=spec.included_ms,
                  period_start=now, ref_type="job", ref_id=f"open:{account_id}")
    if credit_micros:
        account.credit_balance_micros = credit_micros
        journal.entry(book="credit", kind="grant", amount=credit_micros, balance_after=credit_micros,
                      period_start=now, ref_type="grant", ref_id=new_id("grt"))
    journal.activity("account_created", account_id, f"Account created on the {plan} plan.")
    note_hmac_key_created(journal, project)
    note_changed(session, now, project_item(project.id))
    _finish(session, account, journal, now)
    return CreatedAccount(account_id, project.id, secret)


@notify.after_commit
def grant_credit(billing: Billing, account_id: str, *, amount_micros: int, now: datetime,
                 kind: str = "grant", reference: str | None = None) -> AccountView:
    """Add credit (a grant or a top-up); a negative balance is paid off first by construction."""
    if not 0 < amount_micros <= MAX_MICROS:
        raise Invalid("Credit must be more than 0 and at most 1,000,000,000 USD.", code="invalid_amount")
    with write_session(billing.engine) as session:
        account = _locked(session, account_id)
        journal = Journal(account_id, now)
        bring_up_to_date(session, billing.catalog, account, now, journal)
        account.credit_balance_micros += amount_micros
        journal.entry(book="credit", kind=kind, amount=amount_micros, balance_after=account.credit_balance_micros,
                      period_start=account.period_start, ref_type=kind, ref_id=reference or new_id("grt"))
        journal.activity("credit_added", account_id, f"{format_usd(amount_micros)} credit added.")
        return _finish(session, account, journal, now)


@notify.after_commit
def add_pool(billing: Billing, account_id: str, *, size_ms: int, valid_days: int, now: datetime,
             price_micros: int = 0) -> AccountView:
    if not 0 < size_ms <= 100_000 * 3_600_000:
        raise Invalid("A pool holds between 1 ms and 100,000 hours.", code="invalid_amount")
    if not 0 < valid_days <= 3650:
        raise Invalid("A pool is valid for 1 to 3650 days.", code="invalid_amount")
    with write_session(billing.engine) as session:
        account = _locked(session, account_id)
        journal = Journal(account_id, now)
        bring_up_to_date(session, billing.catalog, account, now, journal)
        pool = Pool(id=new_id("pool"), account_id=account_id, size_ms=size_ms, remaining_ms=size_ms,
                    price_micros=price_micros, purchased_at=now, expires_at=now + timedelta(days=valid_days))
        session.add(pool)
        journal.entry(book="pool", kind="purchase", amount=size_ms, balance_after=size_ms,
                      period_start=account.period_start, ref_type="grant", ref_id=pool.id, pool_id=pool.id)
        journal.activity("pool_added", pool.id, f"Pool of {size_ms / 3_600_000:g} h added, valid {valid_days} days.")
        return _finish(session, account, journal, now)


@notify.after_commit
def set_plan(billing: Billing, account_id: str, plan: str, *, now: datetime) -> AccountView:
    """Upgrade at once with the prorated difference; downgrade at the next period close."""
    catalog = billing.catalog
    if plan not in catalog.plans:
        raise Invalid(f"Unknown plan {plan!r}; choose one of {', '.join(catalog.plans)}.", code="unknown_plan")
    with write_session(billing.engine) as session:
        account = _locked(session, account_id)
        journal = Journal(account_id, now)
        bring_up_to_date(session, catalog, account, now, journal)
        if plan == account.plan:
            account.pending_plan = None  # asking for the current plan cancels a pending downgrade
        elif catalog.is_upgrade(account.plan, plan):
            _upgrade(account, plan, catalog, now, journal)
        else:
            account.pending_plan = plan
            journal.activity("plan_change_scheduled", account_id,
                             f"Plan changes from {account.plan} to {plan} at the end of the period.")
        return _finish(session, account, journal, now)


def _upgrade(account: Account, plan: str, catalog, now: datetime, journal: Journal) -> None:
    old, new = catalog.plan(account.plan), catalog.plan(plan)
    due = prorate_upgrade(old_price_micros=old.price_micros, new_price_micros=new.price_micros,
                          period=PeriodSpan(account.period_start, account.period_end), at=now)
    ref = f"plan:{account.plan}->{plan}:{now.isoformat()}"
    if due and account.credit_balance_micros >= due:
        account.credit_balance_micros -= due
        journal.entry(book="credit", kind="proration", amount=-due, balance_after=account.credit_balance_micros,
                      period_start=account.period_start, ref_type="plan_change", ref_id=ref)
    else:
        account.proration_due_micros += due  # invoiced at the period close
    added_ms = new.included_ms - account.included_ms
    account.included_ms = new.included_ms
    journal.entry(book="allowance", kind="plan_change", amount=added_ms,
                  balance_after=max(0, account.included_ms - account.used_ms),
                  period_start=account.period_start, ref_type="plan_change", ref_id=ref)
    account.spend_cap_micros = new.spend_cap_micros if new.overage else None
    journal.activity("plan_changed", account.id, f"Plan upgraded from {account.plan} to {plan}.")
    account.plan, account.pending_plan = plan, None


@notify.after_commit
def set_suspended(billing: Billing, account_id: str, suspended: bool, *, now: datetime) -> AccountView:
    with write_session(billing.engine) as session:
        account = _locked(session, account_id)
        journal = Journal(account_id, now)
        account.suspended = suspended
        return _finish(session, account, journal, now)
