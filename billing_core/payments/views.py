"""What the API, the portal and the CLI show of payments, invoices and the saved method: plain dicts built
from one account's rows (never another's)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from ..db.engine import read_session
from ..db.models import Account, Invoice
from ..db.payments import Payment, PaymentMethod, Refund
from ..errors import NotFound
from ..invoices import draft_invoice
from ..periods import Period as PeriodSpan
from ..services.context import Billing
from .grants import describe
from .rules import charge_micros

PAYMENTS_SHOWN = 100


def payment_dict(payment: Payment) -> dict:
    return {"id": payment.id, "provider": payment.provider, "item": payment.item, "description": describe(payment),
            "source": payment.source, "amount_micros": payment.amount_micros,
            "refunded_micros": payment.refunded_micros, "status": payment.status, "dispute": payment.dispute,
            "failure_message": payment.failure_message, "created_at": payment.created_at,
            "receipt_number": payment.receipt_number,
            "receipt_url": f"/receipts/{payment.id}" if payment.receipt_number else None}


def list_payments(billing: Billing, account_id: str, *, limit: int = PAYMENTS_SHOWN) -> list[dict]:
    with read_session(billing.engine) as session:
        rows = session.execute(select(Payment).where(Payment.account_id == account_id)
                               .order_by(Payment.created_at.desc(), Payment.id.desc()).limit(limit)).scalars()
        return [payment_dict(row) for row in rows]


def get_payment(billing: Billing, account_id: str | None, payment_id: str) -> dict:
    """One payment with its refunds; `account_id` None is the operator's view of any account."""
    with read_session(billing.engine) as session:
        payment = session.get(Payment, payment_id)
        if payment is None or (account_id is not None and payment.account_id != account_id):
            raise NotFound(f"No payment with id {payment_id}.")
        refunds = session.execute(select(Refund).where(Refund.payment_id == payment_id)
                                  .order_by(Refund.created_at)).scalars().all()
        account = session.get(Account, payment.account_id)
        return {**payment_dict(payment), "account_id": payment.account_id, "email": account.email,
                "provider_payment_id": payment.provider_payment_id, "granted_at": payment.granted_at,
                "refunds": [{"id": r.id, "amount_micros": r.amount_micros, "reason": r.reason,
                             "created_at": r.created_at} for r in refunds]}


def payment_method(billing: Billing, account_id: str) -> dict | None:
    with read_session(billing.engine) as session:
        row = session.get(PaymentMethod, account_id)
        if row is None:
            return None
        return {"provider": row.provider, "brand": row.brand, "last4": row.last4, "updated_at": row.updated_at}


def invoice_dict(invoice: Invoice, *, with_lines: bool = False) -> dict:
    out = {"id": invoice.id, "number": invoice.number, "period": {"start": invoice.period_start,
                                                                   "end": invoice.period_end},
           "plan": invoice.plan, "total_micros": invoice.total_micros,
           "amount_due_micros": 0 if invoice.status in ("paid", "void") else charge_micros(invoice.total_micros),
           "status": invoice.status, "created_at": invoice.created_at, "paid_at": invoice.paid_at,
           "payment_id": invoice.payment_id, "pdf_url": f"/api/v1/invoices/{invoice.id}/pdf",
           "page_url": f"/invoices/{invoice.id}"}
    if with_lines:
        draft = draft_invoice(period=PeriodSpan(invoice.period_start, invoice.period_end), plan=invoice.plan,
                              plan_fee_micros=invoice.plan_fee_micros, overage_micros=invoice.overage_micros,
                              proration_due_micros=invoice.proration_micros)
        out["lines"] = [{"kind": line.kind, "description": line.description, "amount_micros": line.amount_micros}
                        for line in draft.lines]
    return out


def list_invoices(billing: Billing, account_id: str) -> list[dict]:
    with read_session(billing.engine) as session:
        rows = session.execute(select(Invoice).where(Invoice.account_id == account_id)
                               .order_by(Invoice.period_start.desc())).scalars()
        return [invoice_dict(row) for row in rows]


def get_invoice(billing: Billing, account_id: str | None, invoice_id: str) -> dict:
    with read_session(billing.engine) as session:
        invoice = session.get(Invoice, invoice_id)
        if invoice is None or (account_id is not None and invoice.account_id != account_id):
            raise NotFound(f"No invoice with id {invoice_id}.")
        account = session.get(Account, invoice.account_id)
        return {**invoice_dict(invoice, with_lines=True), "account_id": account.id, "email": account.email}


def past_due(billing: Billing, account_id: str) -> bool:
    with read_session(billing.engine) as session:
        return session.execute(select(Invoice.id).where(Invoice.account_id == account_id,
                                                        Invoice.status == "past_due").limit(1)).first() is not None


def stamp(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
