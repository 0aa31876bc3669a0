"""The billing page's read service against real SQLite and PostgreSQL: balances as the API shows them,
the ledger as transactions in pages, and the invoices, each only for its own account."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from billing_core.errors import Invalid, NotFound
from billing_core.services import accounts
from billing_core.services.billing_view import billing_overview, list_invoices, list_transactions
from billing_core.services.periods import run_due_work
from billing_core.services.usage import record_usage
from billing_core.services.views import get_account

from ..conftest import T0
from ..factories import compute, make_account, tokens

MINUTE, HOUR = 60_000, 3_600_000


@pytest.fixture
def lived(billing):
    """A hobby account (1 h allowance, $5 credit) with a pool, a top-up and usage past its allowance."""
    acc = make_account(billing, plan="hobby", credit_micros=5_000_000, now=T0)
    accounts.add_pool(billing, acc.account_id, size_ms=2 * HOUR, valid_days=30, now=T0 + timedelta(minutes=1),
                      price_micros=600_000)
    accounts.grant_credit(billing, acc.account_id, amount_micros=10_000_000, now=T0 + timedelta(minutes=2),
                          kind="topup")
    events = [replace(compute(acc.project_id, 50 * MINUTE), timestamp=T0 + timedelta(minutes=10)),
              replace(compute(acc.project_id, 100 * MINUTE), timestamp=T0 + timedelta(minutes=20)),
              replace(tokens(acc.project_id, "claude-sonnet-4", 10_000, 2_000), timestamp=T0 + timedelta(minutes=30))]
    result = record_usage(billing, acc.account_id, events, now=T0 + timedelta(hours=1))
    assert all(r.status == "accepted" for r in result.results)
    return acc


def _all_transactions(billing, account_id, **filters):
    pages, cursor = [], None
    while True:
        page = list_transactions(billing, account_id, limit=3, cursor=cursor, **filters)
        pages.append(page.items)
        if page.next_cursor is None:
            return pages
        cursor = page.next_cursor


def test_the_overview_says_what_get_account_says_with_the_plans_terms(billing, lived):
    overview = billing_overview(billing, lived.account_id)
    assert overview.account == get_account(billing, lived.account_id)
    allowance = overview.account.allowance
    assert (allowance["included_ms"], allowance["used_ms"], allowance["remaining_ms"]) == (HOUR, HOUR, 0)
    spec = billing.catalog.plan("hobby")
    assert (overview.plan.name, overview.plan.price_micros, overview.plan.overage) == ("hobby", 0, False)
    assert overview.plan.max_projects == spec.max_projects and overview.plan.concurrent_runs == spec.concurrent_runs
    [pool] = overview.pools
    assert (pool.size_ms, pool.remaining_ms, pool.price_micros) == (2 * HOUR, 2 * HOUR - 90 * MINUTE, 600_000)
    assert pool.expires_at == T0 + timedelta(minutes=1, days=30)
    assert overview.pool_pack == billing.catalog.pool_pack


def test_transactions_come_newest_first_in_pages_that_neither_skip_nor_repeat(billing, lived):
    pages = _all_transactions(billing, lived.account_id)
    entries = [t for page in pages for t in page]
    assert all(len(page) <= 3 for page in pages) and len(pages) > 2
    ids = [t.id for t in entries]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == len(ids)
    first = list_transactions(billing, lived.account_id, limit=500)
    assert [t.id for t in first.items] == ids and first.next_cursor is None


def test_each_book_keeps_a_running_balance_its_entries_add_up_to(billing, lived):
    entries = list_transactions(billing, lived.account_id, limit=500).items
    for book in ("credit", "allowance"):
        mine = [t for t in reversed(entries) if t.book == book]  # oldest first
        running = 0
        for t in mine:
            running += t.amount
            assert t.balance_after == running, (book, t)
    credit = [t for t in entries if t.book == "credit"]
    assert credit[0].balance_after == get_account(billing, lived.account_id).credit["balance_micros"]
    assert {t.unit for t in entries if t.book in ("allowance", "pool")} == {"ms"}
    assert {t.unit for t in credit} == {"micros"}


def test_categories_tell_top_ups_from_usage_and_expiry(billing, lived):
    by_category = {c: list_transactions(billing, lived.account_id, limit=500, category=c).items
                   for c in ("topup", "usage", "expiry", "charge")}
    topups = {(t.book, t.kind) for t in by_category["topup"]}
    assert topups == {("allowance", "grant"), ("credit", "grant"), ("pool", "purchase"), ("credit", "topup")}
    assert {t.kind for t in by_category["usage"]} == {"usage"} and len(by_category["usage"]) >= 4
    assert by_category["expiry"] == [] and by_category["charge"] == []
    run_due_work(billing, T0 + timedelta(days=31))  # the pool expires, then the period closes
    expiry = list_transactions(billing, lived.account_id, limit=500, category="expiry").items
    assert {(t.book, t.kind) for t in expiry} == {("pool", "expiry")}
    assert expiry[0].amount == -(2 * HOUR - 90 * MINUTE) and expiry[0].balance_after == 0
    pools = list_transactions(billing, lived.account_id, limit=500, book="pool").items
    assert {t.book for t in pools} == {"pool"} and {t.category for t in pools} == {"topup", "usage", "expiry"}


def test_invoices_list_each_closed_period_newest_first(billing, lived):
    assert list_invoices(billing, lived.account_id, limit=10).items == []
    run_due_work(billing, T0 + timedelta(days=70))  # two periods close
    invoices = list_invoices(billing, lived.account_id, limit=1)
    assert len(invoices.items) == 1 and invoices.next_cursor
    older = list_invoices(billing, lived.account_id, limit=1, cursor=invoices.next_cursor)
    newest, oldest = invoices.items[0], older.items[0]
    assert oldest.period_start == T0 and oldest.period_end == newest.period_start
    assert (oldest.plan, oldest.plan_fee_micros, oldest.total_micros) == ("hobby", 0, 0)
    assert older.next_cursor is None


def test_another_account_sees_none_of_it(billing, lived):
    other = make_account(billing, plan="starter", now=T0)
    run_due_work(billing, T0 + timedelta(days=40))
    mine = {t.id for t in list_transactions(billing, lived.account_id, limit=500).items}
    theirs = {t.id for t in list_transactions(billing, other.account_id, limit=500).items}
    assert mine and theirs and not mine & theirs
    assert {i.id for i in list_invoices(billing, lived.account_id, limit=50).items}.isdisjoint(
        i.id for i in list_invoices(billing, other.account_id, limit=50).items)
    assert billing_overview(billing, other.account_id).pools == []
    with pytest.raises(NotFound):
        billing_overview(billing, "acc_nobody")
    assert list_transactions(billing, "not an id!", limit=5).items == []


@pytest.mark.parametrize("bad", [dict(cursor="0"), dict(cursor="abc"), dict(cursor="-5"), dict(book="cash"),
                                 dict(category="refund"), dict(limit=0), dict(limit=501)])
def test_bad_paging_and_filters_are_refused_with_a_message(billing, lived, bad):
    args = {"limit": 10, **bad}
    with pytest.raises(Invalid):
        list_transactions(billing, lived.account_id, **args)
