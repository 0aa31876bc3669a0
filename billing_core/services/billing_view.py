"""What the billing page reads: plan and balances, the ledger as transactions, and the invoices.

Read-only. Every figure of the balances comes from the same rows and rules as GET /api/v1/account, so
the page and the API never disagree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import and_, or_, select

from ..db.engine import read_session
from ..db.models import Account, Invoice, LedgerEntry
from ..errors import Invalid, NotFound
from ..plans import Plan, PoolPack
from .context import Billing
from .paging import Page, check_limit, decode_cursor, encode_cursor
from .runs import checked_cursor, is_issued_id
from .state import live_pools
from .views import AccountView, account_view

# A ledger entry's book says what changed and so the unit of its amount and balance.
BOOK_UNITS = {"allowance": "ms", "pool": "ms", "credit": "micros", "overage": "micros"}
BOOKS = tuple(BOOK_UNITS)
# What a person asks of a ledger: money or time that came in, went to usage, lapsed, or was billed.
CATEGORY_KINDS = {
    # Money in, and what a refund or a lost dispute takes back of it.
    "topup": ("topup", "grant", "purchase", "plan_change", "refund", "dispute_lost"),
    "usage": ("usage",),
    "expiry": ("expiry", "expired"),
    "charge": ("invoiced", "proration"),
}
CATEGORIES = tuple(CATEGORY_KINDS)
KIND_CATEGORY = {kind: category for category, kinds in CATEGORY_KINDS.items() for kind in kinds}
_LEDGER_CURSOR = re.compile(r"[1-9][0-9]{0,18}")


@dataclass(frozen=True)
class PoolView:
    id: str
    size_ms: int
    remaining_ms: int
    price_micros: int
    purchased_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class BillingOverview:
    """The account as the API shows it, with the plan's terms and each live pool's size and dates."""

    account: AccountView
    plan: Plan  # the catalog's plan with this account's included compute and spend cap
    pending_plan: str | None
    period_start: datetime
    period_end: datetime
    pools: list[PoolView]
    compute_rate_micros_per_second: int
    pool_pack: PoolPack  # what a pool holds, costs and lasts when bought (buying comes later)


@dataclass(frozen=True)
class Transaction:
    id: int
    created_at: datetime
    book: str
    unit: str  # "ms" or "micros"
    kind: str
    category: str  # topup | usage | expiry | charge | other
    amount: int
    balance_after: int
    pool_id: str | None
    ref_type: str
    ref_id: str


@dataclass(frozen=True)
class InvoiceView:
    id: str
    period_start: datetime
    period_end: datetime
    plan: str
    plan_fee_micros: int
    overage_micros: int
    proration_micros: int
    total_micros: int
    status: str
    created_at: datetime


def billing_overview(billing: Billing, account_id: str) -> BillingOverview:
    with read_session(billing.engine) as session:
        account = session.get(Account, account_id) if is_issued_id(account_id) else None
        if account is None:
            raise NotFound("No such account.")
        pools = live_pools(session, account_id)
    plan = replace(billing.catalog.plan(account.plan), included_ms=account.included_ms,
                   spend_cap_micros=account.spend_cap_micros)
    return BillingOverview(
        account=account_view(account, pools), plan=plan, pending_plan=account.pending_plan,
        period_start=account.period_start, period_end=account.period_end,
        pools=[PoolView(p.id, p.size_ms, p.remaining_ms, p.price_micros, p.purchased_at, p.expires_at)
               for p in pools],
        compute_rate_micros_per_second=billing.catalog.compute_rate_micros_per_second,
        pool_pack=billing.catalog.pool_pack)


def list_transactions(billing: Billing, account_id: str, *, limit: int, cursor: str | None = None,
                      book: str | None = None, category: str | None = None) -> Page[Transaction]:
    """The ledger newest first, optionally one book or one category; the cursor is the last entry seen."""
    limit = check_limit(limit)
    if book is not None and book not in BOOKS:
        raise Invalid(f"book: one of {', '.join(BOOKS)}.", code="invalid_book")
    if category is not None and category not in CATEGORIES:
        raise Invalid(f"category: one of {', '.join(CATEGORIES)}.", code="invalid_category")
    if cursor is not None and not _LEDGER_CURSOR.fullmatch(cursor):
        raise Invalid("The cursor is not one this page gave out.", code="invalid_cursor")
    if not is_issued_id(account_id):
        return Page([], None)
    le = LedgerEntry
    stmt = select(le).where(le.account_id == account_id)
    if book is not None:
        stmt = stmt.where(le.book == book)
    if category is not None:
        stmt = stmt.where(le.kind.in_(CATEGORY_KINDS[category]))
    if cursor is not None:
        stmt = stmt.where(le.id < int(cursor))
    with read_session(billing.engine) as session:
        rows = list(session.execute(stmt.order_by(le.id.desc()).limit(limit + 1)).scalars())
    more, rows = len(rows) > limit, rows[:limit]
    items = [Transaction(id=r.id, created_at=r.created_at, book=r.book, unit=BOOK_UNITS.get(r.book, "micros"),
                         kind=r.kind, category=KIND_CATEGORY.get(r.kind, "other"), amount=r.amount,
                         balance_after=r.balance_after, pool_id=r.pool_id, ref_type=r.ref_type, ref_id=r.ref_id)
             for r in rows]
    return Page(items, str(rows[-1].id) if more and rows else None)


def list_invoices(billing: Billing, account_id: str, *, limit: int, cursor: str | None = None) -> Page[InvoiceView]:
    """The account's invoices, latest period first (one job may close several periods at the same moment)."""
    limit = check_limit(limit)
    cursor = checked_cursor(cursor, is_issued_id)
    if not is_issued_id(account_id):
        return Page([], None)
    stmt = select(Invoice).where(Invoice.account_id == account_id)
    if cursor:
        start, invoice_id = decode_cursor(cursor)
        stmt = stmt.where(or_(Invoice.period_start < start,
                              and_(Invoice.period_start == start, Invoice.id < invoice_id)))
    with read_session(billing.engine) as session:
        rows = list(session.execute(stmt.order_by(Invoice.period_start.desc(), Invoice.id.desc())
                                    .limit(limit + 1)).scalars())
    more, rows = len(rows) > limit, rows[:limit]
    return Page([InvoiceView(id=i.id, period_start=i.period_start, period_end=i.period_end, plan=i.plan,
                             plan_fee_micros=i.plan_fee_micros, overage_micros=i.overage_micros,
                             proration_micros=i.proration_micros, total_micros=i.total_micros, status=i.status,
                             created_at=i.created_at) for i in rows],
                encode_cursor(rows[-1].period_start, rows[-1].id) if more and rows else None)
