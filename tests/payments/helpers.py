"""Shared pieces of the payments tests: a sandbox provider on a test database, checkouts started through the
real service, provider events built as the adapters build them, and the ledger's sums to compare."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx
from sqlalchemy import func, select

from billing_core.db.engine import read_session
from billing_core.db.models import Account, LedgerEntry, Pool
from billing_core.db.payments import Payment
from billing_core.payments import provider as p
from billing_core.payments.checkout import start_checkout
from billing_core.payments.sandbox import SandboxProvider
from billing_core.services.context import Billing

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # the Standard Webhooks spec's example secret
PUBLIC_URL = "http://localhost:3000"


def sandbox(billing: Billing) -> SandboxProvider:
    return SandboxProvider(billing, webhook_secret=SECRET, public_url=PUBLIC_URL)


def checkout(billing: Billing, provider, account_id: str, body: dict, now: datetime, key: str | None = None):
    return start_checkout(billing, provider, account_id, body, success_url=f"{PUBLIC_URL}/billing",
                          cancel_url=f"{PUBLIC_URL}/billing", now=now, idempotency_key=key)


def event(kind: str, event_id: str, *, payment_id: str | None = None, checkout_id: str | None = None,
          account_id: str | None = None, provider_payment_id: str | None = "sbp_1", amount_micros: int | None = None,
          at: datetime, provider: str = "sandbox", **extra) -> p.PaymentEvent:
    return p.PaymentEvent(provider=provider, event_id=event_id, type=kind, kind=kind, occurred_at=at,
                          checkout_id=checkout_id, payment_id=payment_id, account_id=account_id,
                          provider_payment_id=provider_payment_id, amount_micros=amount_micros, **extra)


def state(billing: Billing, account_id: str) -> dict:
    """What a customer and an auditor see of the account: balances, the ledger's sums, the payments."""
    with read_session(billing.engine) as session:
        account = session.get(Account, account_id)
        credit_entries = session.execute(select(func.coalesce(func.sum(LedgerEntry.amount), 0)).where(
            LedgerEntry.account_id == account_id, LedgerEntry.book == "credit")).scalar_one()
        pools = session.execute(select(Pool.size_ms, Pool.remaining_ms).where(Pool.account_id == account_id)
                                .order_by(Pool.size_ms)).all()
        payments = session.execute(select(Payment.status, Payment.refunded_micros, Payment.taken_back_micros,
                                          Payment.granted_at.is_not(None)).where(Payment.account_id == account_id)
                                   .order_by(Payment.created_at, Payment.id)).all()
        kinds = sorted(session.execute(select(LedgerEntry.book, LedgerEntry.kind, LedgerEntry.amount).where(
            LedgerEntry.account_id == account_id, LedgerEntry.ref_type == "payment")).all())
    return {"credit": account.credit_balance_micros, "credit_entries": credit_entries, "plan": account.plan,
            "suspended": account.suspended, "pools": [tuple(r) for r in pools],
            "payments": [tuple(r) for r in payments], "entries": [tuple(r) for r in kinds]}


def later(at: datetime, seconds: int) -> datetime:
    return at + timedelta(seconds=seconds)


def deliver_here(billing: Billing, provider: SandboxProvider, now: datetime) -> list[str]:
    """The sandbox's pending events, signed, verified and applied in this process (no server): outcomes."""
    from billing_core.db.engine import write_session
    from billing_core.db.payments import SandboxDelivery
    from billing_core.payments.apply import apply_event
    from billing_core.services.notifications import webhook_headers

    with read_session(billing.engine) as session:
        rows = session.execute(select(SandboxDelivery).where(SandboxDelivery.status == "pending")
                               .order_by(SandboxDelivery.created_at)).scalars().all()
    outcomes = []
    for row in rows:
        headers = webhook_headers(row.id, provider.secret, row.payload, now)
        outcomes.append(apply_event(billing, provider.parse_webhook(headers, row.payload.encode(), now),
                                    now=now).outcome)
        with write_session(billing.engine) as session:
            session.get(SandboxDelivery, row.id).status = "delivered"
    return outcomes


# -- against a live server, with an account key ---------------------------------------------------
def api_credit(server, tenant) -> int:
    """The account's credit balance as GET /api/v1/account shows it."""
    return httpx.get(f"{server.base_url}/api/v1/account", headers=tenant.auth).json()["credit"]["balance_micros"]


def api_checkout(server, tenant, body: dict) -> dict:
    """POST /api/v1/billing/checkout, which must answer 201: the checkout."""
    answer = httpx.post(f"{server.base_url}/api/v1/billing/checkout", json=body, headers=tenant.auth)
    assert answer.status_code == 201, answer.text
    return answer.json()
