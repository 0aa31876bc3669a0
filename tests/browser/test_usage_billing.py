"""/usage and /billing in a real Chromium against the production server holding the demo account: the
numbers on the page are the API's, and the CSV export is the table."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import httpx
import pytest
from playwright.sync_api import expect

from portal.components.format import duration, number, usd

from .conftest import save_screenshot

pytestmark = pytest.mark.slow
USAGE_ROWS = "#usage-table tbody tr"


@pytest.fixture(scope="module")
def api(demo_server):
    with httpx.Client(base_url=demo_server.base_url, timeout=30,
                      headers={"Authorization": f"Bearer {demo_server.api_key}"}) as client:
        yield client


def _summary(api, page, group_by: str) -> list[dict]:
    start, end = page.locator("#usage-from").input_value(), page.locator("#usage-to").input_value()
    response = api.get("/api/v1/usage/summary", params={"from": start, "to": end, "group_by": group_by})
    assert response.status_code == 200, response.text
    return response.json()["data"]


def _table(page) -> list[list[str]]:
    return [[c.inner_text().strip() for c in row.locator("td").all()] for row in page.locator(USAGE_ROWS).all()]


def _group(page, label: str) -> None:
    page.locator("#usage-group").get_by_role("radio", name=label, exact=True).click()


def _open_usage(page, base_url: str) -> None:
    page.goto(f"{base_url}/usage")
    expect(page.locator(USAGE_ROWS).first).to_be_visible()
    expect(page.locator("#usage-chart")).to_be_visible()
    expect(page.locator("#usage-chart .main-svg").first).to_be_visible(timeout=15_000)  # plotly loads lazily


def test_usage_totals_and_rows_are_the_apis(signed_in_page, demo_server, api):
    page = signed_in_page
    _open_usage(page, demo_server.base_url)
    rows = _summary(api, page, "day")
    assert rows, "the demo has usage in the last 30 days"
    totals = {name: sum(r[name] for r in rows) for name in ("compute_ms", "input_tokens", "output_tokens",
                                                             "cost_micros")}
    for stat, name, text in (("compute", "compute_ms", duration), ("input", "input_tokens", number),
                             ("output", "output_tokens", number), ("cost", "cost_micros", usd)):
        expect(page.locator(f"#total-{stat}")).to_have_attribute("data-raw", str(totals[name]))
        expect(page.locator(f"#total-{stat}")).to_have_text(text(totals[name]))
    expect(page.locator(USAGE_ROWS)).to_have_count(len(rows))
    assert [r[0] for r in _table(page)] == [r["key"] for r in rows]

    _group(page, "Project")
    names = {p["id"]: p["name"] for p in api.get("/api/v1/projects").json()["data"]}
    by_project = _summary(api, page, "project")
    expect(page.locator(USAGE_ROWS)).to_have_count(len(by_project))
    label = {r["key"]: names.get(r["key"], r["key"]) for r in by_project}  # a deleted project shows its id
    expect(page.locator(USAGE_ROWS).first).to_contain_text(label[by_project[0]["key"]])
    shown = {cells[0]: cells for cells in _table(page)}
    for r in by_project:
        assert shown[label[r["key"]]][1] == duration(r["compute_ms"])
        assert shown[label[r["key"]]][4] == usd(r["cost_micros"])


def _export(page) -> tuple[list[str], list[list[str]]]:
    with page.expect_download() as download:
        page.locator("#usage-export").click()
    text = open(download.value.path(), encoding="utf-8").read()
    header, *body = list(csv.reader(io.StringIO(text)))
    return header, body


@pytest.mark.parametrize("group", ["Day", "Model", "Agent"])
def test_the_csv_export_is_exactly_the_table(signed_in_page, demo_server, api, group):
    page = signed_in_page
    _open_usage(page, demo_server.base_url)
    _group(page, group)
    rows = _summary(api, page, group.lower())
    expect(page.locator(USAGE_ROWS)).to_have_count(len(rows))
    table = _table(page)
    header, body = _export(page)
    assert header == [group.lower(), "compute_ms", "input_tokens", "output_tokens", "cost_usd"]
    assert len(body) == len(table) == len(rows)
    for shown, exported, api_row in zip(table, body, rows):
        key, compute_ms, input_tokens, output_tokens, cost_usd = exported
        assert shown[0] == key
        assert shown[1] == duration(int(compute_ms)) and int(compute_ms) == api_row["compute_ms"]
        assert shown[2] == number(int(input_tokens)) and int(input_tokens) == api_row["input_tokens"]
        assert shown[3] == number(int(output_tokens)) and int(output_tokens) == api_row["output_tokens"]
        assert Decimal(cost_usd) * 1_000_000 == api_row["cost_micros"] and shown[4] == usd(api_row["cost_micros"])


def test_a_range_that_ends_before_it_starts_is_a_message(signed_in_page, demo_server):
    page = signed_in_page
    _open_usage(page, demo_server.base_url)
    page.locator("#usage-to").fill("2030-01-01")
    page.locator("#usage-from").fill("2030-01-10")
    message = page.get_by_role("alert").filter(has_text="The last day is before the first day.")
    expect(message).to_be_visible(timeout=10_000)
    page.locator("#usage-from").fill("2029-12-01")
    expect(message).to_have_count(0)
    expect(page.get_by_text("No usage in this range")).to_be_visible()


# -- billing ---------------------------------------------------------------------------------------------
def test_billing_shows_the_accounts_numbers(signed_in_page, demo_server, api):
    page = signed_in_page
    page.goto(f"{demo_server.base_url}/billing")
    expect(page.locator("#credit-balance")).to_be_visible()
    account = api.get("/api/v1/account").json()
    allowance, credit = account["allowance"], account["credit"]["balance_micros"]
    expect(page.locator("#billing-plan")).to_have_text(account["plan"].capitalize())
    expect(page.locator("#billing-status")).to_have_text(account["status"].replace("_", " "))
    for locator, raw, text in (("#allowance-used", allowance["used_ms"], duration(allowance["used_ms"])),
                               ("#allowance-remaining", allowance["remaining_ms"], duration(allowance["remaining_ms"])),
                               ("#credit-balance", credit, usd(credit))):
        expect(page.locator(locator)).to_have_attribute("data-raw", str(raw))
        expect(page.locator(locator)).to_have_text(text)
    expect(page.locator("#allowance-included")).to_have_attribute("data-raw", str(allowance["included_ms"]))
    pools = page.locator("#pools-table tr[data-pool-id]")
    expect(pools).to_have_count(len(account["pools"]))
    for pool in account["pools"]:
        cell = page.locator(f"tr[data-pool-id='{pool['id']}'] [data-raw]")
        expect(cell).to_have_attribute("data-raw", str(pool["remaining_ms"]))
    if not account["pools"]:
        expect(page.locator("#pools-empty")).to_be_visible()
    # The page sells too (tests/browser/test_payments.py buys): credit and pool packs have their buttons.
    expect(page.locator("#add-credit")).to_be_visible()
    expect(page.locator("#buy-pool")).to_be_visible()


def test_transactions_filter_and_page_and_invoices_list(signed_in_page, demo_server):
    page = signed_in_page
    page.goto(f"{demo_server.base_url}/billing")
    rows = page.locator("#tx-table tr[data-entry-id]")
    expect(rows).to_have_count(25)
    first_page = [r.get_attribute("data-entry-id") for r in rows.all()]
    page.locator("#tx-pager-next").click()
    expect(page.locator("#tx-pager-page")).to_have_text("Page 2")
    expect(rows.first).not_to_have_attribute("data-entry-id", first_page[0])
    second = [int(r.get_attribute("data-entry-id")) for r in rows.all()]
    assert max(second) < min(int(i) for i in first_page)  # older entries, none repeated
    page.locator("#tx-pager-prev").click()
    expect(rows.first).to_have_attribute("data-entry-id", first_page[0])

    page.locator("#tx-category").click()
    page.get_by_role("option", name="Top-ups & grants").click()
    expect(page.locator("#tx-table")).to_contain_text("Credit top-up")
    table = page.locator("#tx-table")
    for amount in ("+$50.00", "+$20.00", "+$25.00", "+10 h"):  # the demo's top-ups, grant and pool
        expect(table).to_contain_text(amount)
    assert set(table.locator("tbody .rt-Badge").all_inner_texts()) == {"Top-up"}
    page.locator("#tx-book").click()
    page.get_by_role("option", name="Credit").click()
    expect(table).not_to_contain_text("Compute pool added")  # the pool book's top-up is filtered out now
    credit_in = rows.locator("td:nth-child(5)").all_inner_texts()  # the $25 grant at sign-up, two top-ups, and
    assert {"+$25.00", "+$20.00", "+$50.00"} <= set(credit_in)   # whatever other tests granted meanwhile
    # Money in, and what refunds took back of it (the demo refunded $10 of a card payment).
    assert [text for text in credit_in if not text.startswith("+$")] == ["\u2212$10.00"], credit_in

    invoices = page.locator("#invoice-table tr[data-invoice-id]")
    expect(invoices.first).to_be_visible()  # sixty days of history close at least one period
    expect(invoices.first).to_contain_text("$20.00")  # starter: the plan fee, no overage


def test_screenshots_of_usage_and_billing(screen, demo_server, scheme):
    page = screen
    for name, ready in (("usage", "#usage-chart .main-svg"), ("billing", "#tx-table tr[data-entry-id]")):
        page.goto(f"{demo_server.base_url}/{name}")
        expect(page.locator(ready).first).to_be_visible(timeout=15_000)
        page.wait_for_timeout(500)  # let the chart finish drawing
        save_screenshot(page, name, scheme)
