"""Invoices and receipts as documents: what a printable page and a PDF show, read from one account's rows.

A `Document` is plain values (numbers as text, amounts in micros, dates); the renderers (portal/api/documents.py
for the page, pdf.py for the PDF) only lay it out, using `details`, `totals` and `status_label` here so that
the page and the PDF always say the same thing. Invoice and receipt numbers come from the gapless sequences
taken when the document was issued (numbers.py): at period close, and when a payment succeeded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import select

from ..db.engine import read_session
from ..db.models import Account, Invoice
from ..db.payments import Payment, PaymentMethod, Refund
from ..errors import NotFound
from ..invoices import draft_invoice
from ..money import format_usd
from ..periods import Period as PeriodSpan
from ..services.context import Billing
from .grants import describe
from .rules import charge_micros

INVOICE, RECEIPT = "invoice", "receipt"
_PREFIX = {INVOICE: "INV", RECEIPT: "RCT"}
_BRANDS = {"visa": "Visa", "mastercard": "Mastercard", "amex": "American Express", "discover": "Discover",
           "jcb": "JCB", "diners": "Diners Club", "unionpay": "UnionPay"}
_STATUS_WORDS = {"open": "Open", "paid": "Paid", "past_due": "Past due", "void": "Void", "succeeded": "Paid",
                 "refunded": "Refunded", "partially_refunded": "Partially refunded", "disputed": "Disputed",
                 "pending": "Pending", "failed": "Failed"}


@dataclass(frozen=True)
class Seller:
    """Who issues the documents: this instance, named by its public URL."""

    url: str
    name: str = "Tollgate"

    @property
    def lines(self) -> tuple[str, ...]:
        return (self.name, self.url.rstrip("/"))


@dataclass(frozen=True)
class Line:
    description: str
    amount_micros: int


@dataclass(frozen=True)
class RefundLine:
    refunded_at: datetime
    amount_micros: int
    reason: str  # refund | dispute_lost


@dataclass(frozen=True)
class Document:
    kind: str  # invoice | receipt
    id: str  # the invoice's id, or the payment's for a receipt
    number: str  # INV-000042 | RCT-000017
    issued_at: datetime
    seller: tuple[str, ...]
    buyer_email: str
    buyer_account_id: str
    lines: tuple[Line, ...]
    total_micros: int
    amount_paid_micros: int
    amount_due_micros: int
    status: str  # invoice: open|paid|past_due|void; receipt: the payment's status
    period_start: datetime | None = None  # invoices
    period_end: datetime | None = None
    paid_at: datetime | None = None
    payment_id: str | None = None  # the receipt's payment, or the payment that paid the invoice
    payment_method: str | None = None  # "Visa •••• 4242", when known
    refunds: tuple[RefundLine, ...] = ()

    @property
    def title(self) -> str:
        return "Invoice" if self.kind == INVOICE else "Receipt"

    @property
    def refunded_micros(self) -> int:
        return sum(refund.amount_micros for refund in self.refunds)

    @property
    def filename(self) -> str:
        return f"{self.number}.pdf"


def document_number(kind: str, number: int | None) -> str:
    """`INV-000042` / `RCT-000017`: the sequence's number, zero-padded to six digits (more when it grows)."""
    return f"{_PREFIX[kind]}-{number:06d}" if number is not None else f"{_PREFIX[kind]}-DRAFT"


def method_text(method: PaymentMethod | None) -> str | None:
    """`Visa •••• 4242`, or None when no card is known."""
    if method is None or not method.last4:
        return None
    brand = _BRANDS.get(method.brand.lower(), method.brand.title() or "Card")
    return f"{brand} \u2022\u2022\u2022\u2022 {method.last4}"


def invoice_document(billing: Billing, account_id: str | None, invoice_id: str, seller: Seller) -> Document:
    """The invoice as a document; `account_id` None is the operator's view. Another account's id is NotFound."""
    with read_session(billing.engine) as session:
        invoice = session.get(Invoice, invoice_id)
        if invoice is None or (account_id is not None and invoice.account_id != account_id):
            raise NotFound(f"No invoice with id {invoice_id}.")
        account = session.get(Account, invoice.account_id)
        payment = session.get(Payment, invoice.payment_id) if invoice.payment_id else None
    draft = draft_invoice(period=PeriodSpan(invoice.period_start, invoice.period_end), plan=invoice.plan,
                          plan_fee_micros=invoice.plan_fee_micros, overage_micros=invoice.overage_micros,
                          proration_due_micros=invoice.proration_micros)
    lines = tuple(Line(_invoice_line(line.kind, line.description, invoice), line.amount_micros)
                  for line in draft.lines)
    settled = invoice.status in ("paid", "void")
    return Document(
        kind=INVOICE, id=invoice.id, number=document_number(INVOICE, invoice.number), issued_at=invoice.created_at,
        seller=seller.lines, buyer_email=account.email, buyer_account_id=account.id, lines=lines,
        total_micros=invoice.total_micros,
        amount_paid_micros=payment.amount_micros if payment is not None and invoice.status == "paid" else 0,
        amount_due_micros=0 if settled else charge_micros(invoice.total_micros), status=invoice.status,
        period_start=invoice.period_start, period_end=invoice.period_end, paid_at=invoice.paid_at,
        payment_id=invoice.payment_id)


def _invoice_line(kind: str, description: str, invoice: Invoice) -> str:
    if kind == "plan_fee":
        return f"{invoice.plan.title()} plan, {day(invoice.period_start)} \u2013 {day(invoice.period_end)}"
    if kind == "overage":
        return "Overage: compute and tokens beyond the allowance and credit"
    if kind == "proration":
        return "Plan upgrade during the period (prorated)"
    return description[:1].upper() + description[1:]


def receipt_document(billing: Billing, account_id: str | None, payment_id: str, seller: Seller) -> Document:
    """The receipt of a succeeded payment, with its refunds; NotFound for another account's payment or for a
    payment that has no receipt (never succeeded)."""
    with read_session(billing.engine) as session:
        payment = session.get(Payment, payment_id)
        if payment is None or (account_id is not None and payment.account_id != account_id):
            raise NotFound(f"No payment with id {payment_id}.")
        if payment.receipt_number is None:
            raise NotFound(f"Payment {payment_id} has no receipt: only a succeeded payment has one.")
        account = session.get(Account, payment.account_id)
        refunds = session.execute(select(Refund).where(Refund.payment_id == payment.id)
                                  .order_by(Refund.created_at, Refund.id)).scalars().all()
        invoice = session.get(Invoice, payment.invoice_id) if payment.invoice_id else None
        # The card the payment was made with, kept on it when it succeeded.
        method = PaymentMethod(account_id=payment.account_id, provider=payment.provider, method_ref="",
                               brand=payment.card_brand, last4=payment.card_last4, updated_at=paid_at_of(payment))
    line = Line(_receipt_line(payment, invoice), payment.amount_micros)
    paid_at = paid_at_of(payment)
    return Document(
        kind=RECEIPT, id=payment.id, number=document_number(RECEIPT, payment.receipt_number), issued_at=paid_at,
        seller=seller.lines, buyer_email=account.email, buyer_account_id=account.id, lines=(line,),
        total_micros=payment.amount_micros, amount_paid_micros=payment.amount_micros, amount_due_micros=0,
        status=payment.status, paid_at=paid_at, payment_id=payment.id,
        payment_method=method_text(method if method is not None and method.provider == payment.provider else None),
        refunds=tuple(RefundLine(r.created_at, r.amount_micros, r.reason) for r in refunds))


def paid_at_of(payment: Payment):
    return payment.granted_at or payment.updated_at


def _receipt_line(payment: Payment, invoice: Invoice | None) -> str:
    if payment.item == "credit":
        return "Credit top-up"
    if payment.item == "plan":
        return f"Upgrade to the {payment.plan} plan (prorated for the rest of the period)"
    if payment.item == "invoice":
        return f"Invoice {document_number(INVOICE, invoice.number) if invoice else payment.invoice_id}"
    text = describe(payment)
    return text[:1].upper() + text[1:]


# -- what both renderers show, worded once ------------------------------------------------------------
def day(moment: datetime) -> str:
    """`15 January 2026`, in UTC."""
    moment = moment.astimezone(timezone.utc)
    return f"{moment.day} {moment:%B %Y}"


def status_label(doc: Document) -> str:
    return _STATUS_WORDS.get(doc.status, doc.status.replace("_", " ").capitalize())


def stamp_word(doc: Document) -> str | None:
    """The word stamped on the document: PAID, PAST DUE, VOID, REFUNDED, DISPUTED; None while it is open."""
    if doc.status in ("open", "pending"):
        return None
    return "PAID" if doc.status in ("succeeded", "partially_refunded") else status_label(doc).upper()


def tone(doc: Document) -> str:
    """How the status reads at a glance: good (paid), bad (owed late, disputed), or neutral."""
    if doc.status in ("paid", "succeeded", "partially_refunded"):
        return "good"
    if doc.status in ("past_due", "disputed", "failed"):
        return "bad"
    return "neutral"


def details(doc: Document) -> tuple[tuple[str, str], ...]:
    """The labelled facts under the title: number, dates, period, payment."""
    rows = [(f"{doc.title} number", doc.number), ("Date of issue", day(doc.issued_at))]
    if doc.period_start is not None and doc.period_end is not None:
        rows.append(("Billing period", f"{day(doc.period_start)} \u2013 {day(doc.period_end)}"))
    if doc.kind == INVOICE and doc.paid_at is not None:
        rows.append(("Paid on", day(doc.paid_at)))
    if doc.payment_method:
        rows.append(("Payment method", doc.payment_method))
    if doc.payment_id:
        rows.append(("Payment", doc.payment_id))
    rows.append(("Status", status_label(doc)))
    return tuple(rows)


def totals(doc: Document) -> tuple[tuple[str, str], ...]:
    """The rows under the lines: the total, what was paid and, for an invoice, what is still due."""
    rows = [("Total", format_usd(doc.total_micros))]
    if doc.kind == INVOICE:
        charged = charge_micros(doc.total_micros)
        if charged != doc.total_micros:  # providers charge whole cents
            rows.append(("Rounded to whole cents", format_usd(charged)))
        rows.append(("Amount paid", format_usd(doc.amount_paid_micros)))
        rows.append(("Amount due", format_usd(doc.amount_due_micros)))
        return tuple(rows)
    rows.append(("Amount paid", format_usd(doc.amount_paid_micros)))
    if doc.refunds:
        rows.append(("Refunded", format_usd(-doc.refunded_micros)))
        rows.append(("Net paid", format_usd(doc.amount_paid_micros - doc.refunded_micros)))
    return tuple(rows)


def refund_rows(doc: Document) -> tuple[tuple[str, str, str], ...]:
    """Each refund as (date, what, amount)."""
    return tuple((day(r.refunded_at), "Dispute lost" if r.reason == "dispute_lost" else "Refund",
                  format_usd(-r.amount_micros)) for r in doc.refunds)
