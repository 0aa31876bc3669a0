"""Auto top-up: when credit falls below the owner's threshold, charge a fixed amount to the saved method, at
most one attempt in flight, within a monthly limit, turned off after 3 failures in a row (rules.py decides;
this module reads the state under the account's lock and does what the decision says)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlmodel import Session

from ..db.engine import lock_account, read_session, write_session
from ..db.models import Account
from ..db.payments import AutoTopUpSettings, Payment, PaymentMethod
from ..errors import Conflict, NotFound
from ..money import format_usd
from ..services.context import Billing
from ..services.journal import Journal
from . import provider as p
from .checkout import ChargeStarted, charge_saved_method, new_off_session_payment
from .rules import AutoTopUp, Purchase, auto_top_up_decision, check_auto_top_up, top_up_idempotency_key

DEFAULTS = AutoTopUp(enabled=False, threshold_micros=5_000_000, amount_micros=20_000_000,
                     monthly_limit_micros=100_000_000)


def _public(row: AutoTopUpSettings | None) -> dict:
    if row is None:
        return {**DEFAULTS.__dict__, "consecutive_failures": 0, "in_flight": False}
    return {"enabled": row.enabled, "threshold_micros": row.threshold_micros, "amount_micros": row.amount_micros,
            "monthly_limit_micros": row.monthly_limit_micros, "consecutive_failures": row.failures,
            "in_flight": row.in_flight_payment_id is not None}


def get_auto_top_up(billing: Billing, account_id: str) -> dict:
    with read_session(billing.engine) as session:
        return _public(session.get(AutoTopUpSettings, account_id))


def put_auto_top_up(billing: Billing, account_id: str, settings: AutoTopUp, *, provider_name: str,
                    now: datetime, actor: str = "owner") -> dict:
    """Save the settings; turning it on needs a saved payment method, and resets the failure count."""
    check_auto_top_up(settings)
    with write_session(billing.engine) as session:
        account = lock_account(session, account_id)
        if account is None:
            raise NotFound(f"No account with id {account_id}.")
        method = session.get(PaymentMethod, account_id)
        if settings.enabled and (method is None or method.provider != provider_name):
            raise Conflict("Save a payment method first: pay once by checkout and the card is kept.",
                           code="payment_method_required")
        row = session.get(AutoTopUpSettings, account_id)
        if row is None:
            row = AutoTopUpSettings(account_id=account_id, updated_at=now)
            session.add(row)
        turned_on = settings.enabled and not row.enabled
        row.enabled, row.threshold_micros = settings.enabled, settings.threshold_micros
        row.amount_micros, row.monthly_limit_micros = settings.amount_micros, settings.monthly_limit_micros
        row.updated_at = now
        if turned_on:
            row.failures = 0
        journal = Journal(account_id, now)
        journal.activity("auto_top_up_changed", account_id,
                         f"Auto top-up {'on' if settings.enabled else 'off'}: {format_usd(settings.amount_micros)} "
                         f"when credit falls below {format_usd(settings.threshold_micros)}, at most "
                         f"{format_usd(settings.monthly_limit_micros)} a month.", actor=actor)
        journal.flush(session)
        return _public(row)


def _charged_this_month(session: Session, account_id: str, now: datetime) -> int:
    month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return session.execute(select(func.coalesce(func.sum(Payment.amount_micros), 0)).where(
        Payment.account_id == account_id, Payment.source == "auto_top_up", Payment.created_at >= month,
        Payment.status.in_(("pending", "succeeded", "partially_refunded", "refunded", "disputed")))).scalar_one()


@dataclass(frozen=True)
class TopUpOutcome:
    reason: str  # the decision's reason, or "no_settings" / "no_method"
    charge: ChargeStarted | None = None


def maybe_top_up(billing: Billing, provider: p.Provider, account_id: str, *, now: datetime) -> TopUpOutcome:
    """Charge now when the rules say so; safe to call on every change and from several processes at once
    (the decision and the in-flight mark are taken under the account's lock)."""
    with write_session(billing.engine) as session:
        settings = session.get(AutoTopUpSettings, account_id)
        if settings is None or not settings.enabled:
            return TopUpOutcome("disabled")
        account = lock_account(session, account_id)
        session.refresh(settings)
        method = session.get(PaymentMethod, account_id)
        if method is None or method.provider != provider.name:
            return TopUpOutcome("no_method")
        decision = auto_top_up_decision(
            AutoTopUp(settings.enabled, settings.threshold_micros, settings.amount_micros,
                      settings.monthly_limit_micros),
            credit_micros=account.credit_balance_micros, in_flight=settings.in_flight_payment_id is not None,
            charged_this_month_micros=_charged_this_month(session, account_id, now),
            consecutive_failures=settings.failures)
        if decision.disable:
            settings.enabled = False
            journal = Journal(account_id, now)
            journal.activity("auto_top_up_disabled", account_id, "Auto top-up turned off after repeated failures.")
            journal.flush(session)
        if not decision.charge_micros:
            return TopUpOutcome(decision.reason)
        settings.attempts += 1
        payment = new_off_session_payment(session, account_id, provider.name,
                                          Purchase("credit", decision.charge_micros), source="auto_top_up",
                                          idempotency_key=top_up_idempotency_key(account_id, settings.attempts),
                                          now=now)
        settings.in_flight_payment_id = payment.id
        session.flush()
    return TopUpOutcome("charge", charge_saved_method(billing, provider, payment, method, now=now))


def accounts_below_threshold(billing: Billing, *, only: set[str] | None = None) -> list[str]:
    """Accounts with auto top-up on, none in flight, and credit under the threshold (among `only`)."""
    stmt = select(AutoTopUpSettings.account_id).join(Account, Account.id == AutoTopUpSettings.account_id).where(
        AutoTopUpSettings.enabled.is_(True), AutoTopUpSettings.in_flight_payment_id.is_(None),
        Account.credit_balance_micros < AutoTopUpSettings.threshold_micros)
    if only is not None:
        stmt = stmt.where(AutoTopUpSettings.account_id.in_(sorted(only)))
    with read_session(billing.engine) as session:
        return list(session.execute(stmt).scalars())


def run_auto_top_ups(billing: Billing, provider: p.Provider, now: datetime) -> dict:
    """The job's safety net behind the trigger on usage: every account due a top-up, charged."""
    counts: dict[str, int] = {}
    for account_id in accounts_below_threshold(billing):
        reason = maybe_top_up(billing, provider, account_id, now=now).reason
        counts[reason] = counts.get(reason, 0) + 1
    return counts
