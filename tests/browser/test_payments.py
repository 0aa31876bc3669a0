"""Paying on /billing in a real Chromium against the production server with the sandbox provider: its hosted
checkout, its test cards, and its signed webhooks delivered by the app's scheduler ("sandbox_deliveries", every
second) to /webhooks/sandbox on the same server. What the page shows is checked against the API.

The tests share one account of their own (not the demo's, which other tests expect on starter with no card) and
run in order: the first payment saves the card that the upgrade and auto top-up charge later. Each step is
photographed at 1280 and 390 px in light and dark (docs/screenshots/billing-<step>-<width>-<scheme>.png).
"""

from __future__ import annotations

import re
import secrets
import subprocess
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_EVEN, Decimal

import httpx
import pytest
from playwright.sync_api import expect

from billing_core.db.engine import make_engine
from billing_core.plans import load_catalog
from billing_core.services.accounts import create_account
from billing_core.services.context import Billing
from billing_core.services.identity import create_user
from portal.components.format import usd
from portal.components.payment_text import credit_problem, dollars_to_micros
from tests.identity.servers import BIN

from .conftest import SCHEMES, SCREENSHOTS, TIMEOUT_MS, WIDTHS, save_screenshot

pytestmark = pytest.mark.slow
EMAIL = "payer@example.com"
CARD_OK, CARD_DECLINED, CARD_DELAYED = "4242 4242 4242 4242", "4000000000000002", "4000000000003220"
PAYMENT_ROWS = "#payments-table tr[data-payment-id]"
CHECKOUT_RETURN = re.compile(r"/billing/?\?(?:cancelled=1&)?checkout=(chk_\w+)")


def test_typed_dollars_are_read_exactly_or_refused_with_a_reason():
    assert dollars_to_micros("$1,000") == 1_000_000_000
    assert dollars_to_micros("12.5") == 12_500_000 and dollars_to_micros(" 0.07 ") == 70_000
    for typed, reason in (("12.345", "whole cents"), ("1e3", "in dollars"), ("-5", "in dollars"), ("", "in dollars"),
                          ("4.99", "from $5.00 to $1,000.00"), ("1000.01", "from $5.00 to $1,000.00")):
        assert reason in credit_problem(typed).lower(), typed
    assert credit_problem("5") == credit_problem("1,000.00") == ""


@dataclass(frozen=True)
class Payer:
    base_url: str
    password: str
    project_id: str
    api: httpx.Client


@pytest.fixture(scope="module")
def payer(demo_server):
    """A starter account opened 40 days ago with $10 credit: one period closed, its $20 invoice past due (no card
    to collect it from), made by the services beside the server as `tollgate demo` makes the demo."""
    engine = make_engine(demo_server.env["TOLLGATE_DATABASE_URL"])
    now = datetime.now(timezone.utc)
    try:
        billing = Billing(engine, load_catalog())
        created = create_account(billing, email=EMAIL, plan="starter", credit_micros=10_000_000,
                                 now=now - timedelta(days=40))
        password = secrets.token_urlsafe(15)
        create_user(billing, account_id=created.account_id, email=EMAIL, password=password, name="Pat", now=now)
    finally:
        engine.dispose()
    subprocess.run([BIN / "tollgate", "admin", "tick", "--job", "periods", "--job", "payments"],
                   env=demo_server.env, check=True, capture_output=True, timeout=120)
    with httpx.Client(base_url=demo_server.base_url, timeout=30,
                      headers={"Authorization": f"Bearer {created.api_key}"}) as api:
        invoices = api.get("/api/v1/invoices").json()["data"]
        assert [i["status"] for i in invoices] == ["past_due"], invoices
        yield Payer(demo_server.base_url, password, created.project_id, api)


@pytest.fixture(scope="module")
def views(browser, payer):
    """A signed-in page per width and scheme, the first (1280 px, light) the one the tests click through. One
    sign-in: the others carry its cookies (only those: the colour mode is each context's own)."""
    pages, cookies = {}, None
    for scheme in SCHEMES:
        for width in WIDTHS.values():
            context = browser.new_context(viewport={"width": width, "height": 900}, color_scheme=scheme)
            context.set_default_timeout(TIMEOUT_MS)
            page = context.new_page()
            if cookies is None:
                page.goto(f"{payer.base_url}/sign-in")
                page.get_by_label("Email").fill(EMAIL)
                page.get_by_label("Password").fill(payer.password)
                page.get_by_role("button", name="Sign in", exact=True).click()
                page.wait_for_url(re.compile(r"^http://127\.0\.0\.1:\d+/$"))
                cookies = context.cookies()
            else:
                context.add_cookies(cookies)
            pages[(width, scheme)] = page
    yield pages
    for page in pages.values():
        page.context.close()


@pytest.fixture
def page(views):
    return views[(1280, "light")]


@pytest.fixture
def who(payer):
    return payer


def _account(who: Payer) -> dict:
    return who.api.get("/api/v1/account").json()


def _credit(who: Payer) -> int:
    return _account(who)["credit"]["balance_micros"]


def _payments(who: Payer) -> list[dict]:
    return who.api.get("/api/v1/billing/payments").json()["data"]


def _open_billing(page, who: Payer, query: str = "") -> None:
    page.goto(f"{who.base_url}/billing{query}")
    expect(page.locator("#plan-picker [data-plan]")).to_have_count(3)


def _shoot(views, who: Payer, step: str, path: str, ready: str, prepare=None, *, dialog: bool = False) -> None:
    """billing-<step> at every width and scheme: each page opens `path`, is brought to the step by `prepare`, and
    is photographed once `ready` shows: the whole page, or only the screen when a dialog sits on it."""
    for (width, scheme), shot in views.items():
        shot.goto(f"{who.base_url}{path}")
        if prepare is not None:
            prepare(shot)
        expect(shot.locator(ready).first).to_be_visible()
        shot.wait_for_timeout(250)  # dialogs and callouts fade in
        if dialog:
            assert shot.evaluate("document.documentElement.scrollWidth") <= width, f"{step} scrolls sideways"
            shot.screenshot(path=str(SCREENSHOTS / f"billing-{step}-{width}-{scheme}.png"))
        else:
            save_screenshot(shot, f"billing-{step}", scheme)


def _pay(page, card: str) -> None:
    """On the sandbox's hosted page: pay with `card`."""
    expect(page).to_have_url(re.compile(r"/checkout/sandbox/chk_\w+$"))
    page.locator("#card_number").fill(card)
    page.get_by_role("button", name=re.compile(r"^Pay \$")).click()


def _back_from_checkout(page) -> str:
    page.wait_for_url(CHECKOUT_RETURN)
    return CHECKOUT_RETURN.search(page.url).group(1)


def _banner(page, kind: str, text: str):
    banner = page.locator("#checkout-banner")
    expect(banner).to_have_attribute("data-kind", kind, timeout=15_000)
    expect(banner).to_contain_text(text)
    return banner


# -- add credit --------------------------------------------------------------------------------------------
def test_the_page_before_any_payment(views, page, who):
    _open_billing(page, who)
    expect(page.locator("#no-payment-method")).to_have_text("No card saved — your first payment saves one.")
    expect(page.locator("#past-due")).to_be_visible()
    expect(page.locator("[data-plan='starter']")).to_have_attribute("data-change", "current")
    expect(page.locator("[data-plan='pro']")).to_have_attribute("data-change", "upgrade")
    expect(page.locator(PAYMENT_ROWS)).to_have_count(0)
    invoice = page.locator("#invoice-table tr[data-invoice-id]")
    expect(invoice).to_have_count(1)
    expect(invoice).to_have_attribute("data-status", "past_due")
    invoice_id = invoice.get_attribute("data-invoice-id")
    expect(invoice.locator(".invoice-view a, a.invoice-view")).to_have_attribute("href", f"/invoices/{invoice_id}")
    expect(invoice.locator(".invoice-pdf a, a.invoice-pdf")).to_have_attribute(
        "href", f"/api/v1/invoices/{invoice_id}/pdf")
    expect(invoice.get_by_role("button", name="Pay now")).to_be_visible()
    _shoot(views, who, "start", "/billing", "#plan-picker [data-plan='pro']")


def test_a_typed_amount_is_checked_as_it_is_typed(page, who):
    _open_billing(page, who)
    amount, button = page.locator("#credit-amount"), page.locator("#add-credit")
    for typed, says in (("4.99", "from $5.00 to $1,000.00"), ("12.345", "whole cents"), ("ten", "in dollars")):
        amount.fill(typed)
        expect(page.locator("#credit-amount-problem")).to_contain_text(says)
        expect(button).to_be_disabled()
    amount.fill("$1,000")
    expect(button).to_have_text("Pay $1,000.00")
    page.locator("#credit-preset-25").click()
    expect(amount).to_have_value("25.00")
    expect(button).to_have_text("Pay $25.00")


def test_credit_bought_with_a_card_arrives_live(views, page, who):
    _open_billing(page, who)
    before = _credit(who)
    page.locator("#credit-preset-25").click()
    page.locator("#add-credit").click()
    expect(page).to_have_url(re.compile(r"/checkout/sandbox/chk_"))
    expect(page.get_by_text("$25.00 credit")).to_be_visible()
    _shoot(views, who, "checkout", urlsplit(page.url).path, "#card_number")
    _pay(page, CARD_OK)
    checkout_id = _back_from_checkout(page)
    page.evaluate("window.__stayed = true")
    _banner(page, "received", "Payment received: $25.00 credit added")
    expect(page.locator("#credit-balance")).to_have_attribute("data-raw", str(before + 25_000_000))
    assert _credit(who) == before + 25_000_000
    expect(page.locator("#payment-method")).to_have_text("Visa •••• 4242")
    row = page.locator(PAYMENT_ROWS).first
    expect(row).to_have_attribute("data-status", "succeeded")
    expect(row).to_contain_text("$25.00 credit")
    paid = _payments(who)[0]
    assert (paid["status"], paid["amount_micros"], paid["receipt_url"]) == ("succeeded", 25_000_000,
                                                                           f"/receipts/{paid['id']}")
    expect(row.locator("a.receipt-link, .receipt-link a").first).to_have_attribute("href", paid["receipt_url"])
    assert page.evaluate("window.__stayed") is True
    _shoot(views, who, "received", f"/billing?checkout={checkout_id}", "#checkout-banner[data-kind='received']")


def test_a_payment_confirmed_later_shows_pending_then_the_credit_without_a_reload(page, who):
    _open_billing(page, who)
    before = _credit(who)
    page.locator("#credit-preset-10").click()
    page.locator("#add-credit").click()
    _pay(page, CARD_DELAYED)  # the sandbox confirms this card's payments a few seconds later
    _back_from_checkout(page)
    _banner(page, "pending", "Payment pending…")
    page.evaluate("window.__stayed = true")
    expect(page.locator("#credit-balance")).to_have_attribute("data-raw", str(before))
    _banner(page, "received", "Payment received: $10.00 credit added")
    expect(page.locator("#credit-balance")).to_have_attribute("data-raw", str(before + 10_000_000))
    assert page.evaluate("window.__stayed") is True  # pushed by the server, not reloaded


def test_an_unpaid_checkout_is_pending_and_a_cancelled_one_charged_nothing(views, who):
    started = who.api.post("/api/v1/billing/checkout", json={"item": "credit", "amount_micros": 50_000_000})
    assert started.status_code == 201, started.text
    checkout_id = started.json()["id"]
    _shoot(views, who, "pending", f"/billing?checkout={checkout_id}", "#checkout-banner[data-kind='pending']")
    _shoot(views, who, "cancelled", f"/billing?checkout={checkout_id}&cancelled=1",
           "#checkout-banner[data-kind='cancelled']")
    expect(views[(1280, "light")].locator("#checkout-banner")).to_contain_text(
        "Checkout cancelled, nothing was charged.")


def test_a_declined_card_is_said_clearly_and_grants_nothing(views, page, who):
    _open_billing(page, who)
    before, payments_before = _credit(who), len(_payments(who))
    page.locator("#credit-preset-50").click()
    page.locator("#add-credit").click()
    _pay(page, CARD_DECLINED)
    expect(page.get_by_role("alert")).to_have_text("Your card was declined.")
    page.get_by_role("link", name="Cancel and go back").click()
    checkout_id = _back_from_checkout(page)
    _banner(page, "declined", "The card was declined")
    expect(page.locator("#checkout-banner")).to_contain_text("Your card was declined. Nothing was charged")
    row = page.locator(PAYMENT_ROWS).first
    expect(row).to_have_attribute("data-status", "failed")
    expect(row.locator(".payment-failure")).to_have_text("Your card was declined.")
    expect(page.locator("#credit-balance")).to_have_attribute("data-raw", str(before))
    assert _credit(who) == before
    payments = _payments(who)
    assert len(payments) == payments_before + 1 and payments[0]["status"] == "failed"
    assert payments[0]["receipt_url"] is None
    _shoot(views, who, "declined", f"/billing?cancelled=1&checkout={checkout_id}",
           "#checkout-banner[data-kind='declined']")


# -- pool packs, invoices --------------------------------------------------------------------------------
def test_pool_packs_are_bought_by_checkout(views, page, who):
    _open_billing(page, who)
    pools_before = {p["id"] for p in _account(who)["pools"]}
    page.locator("#pack-quantity").click()
    page.get_by_role("option", name="2", exact=True).click()
    expect(page.locator("#pack-total")).to_have_text("$6.00")
    expect(page.locator("#pack-size")).to_have_text("20 h")
    page.locator("#buy-pool").click()
    _pay(page, CARD_OK)
    checkout_id = _back_from_checkout(page)
    _banner(page, "received", "Payment received: 2 pool packs added")
    new = [p for p in _account(who)["pools"] if p["id"] not in pools_before]
    assert [p["remaining_ms"] for p in new] == [20 * 3_600_000]
    expect(page.locator(f"tr[data-pool-id='{new[0]['id']}']")).to_be_visible()
    assert _payments(who)[0]["amount_micros"] == 6_000_000
    _shoot(views, who, "pool-pack", f"/billing?checkout={checkout_id}", "#checkout-banner[data-kind='received']")


def test_a_past_due_invoice_is_paid_now(page, who):
    _open_billing(page, who)
    page.locator("#past-due-pay").click()
    expect(page).to_have_url(re.compile(r"/checkout/sandbox/chk_"))
    expect(page.locator(".amount")).to_have_text("$20.00")  # the starter fee of the closed period
    _pay(page, CARD_OK)
    _back_from_checkout(page)
    _banner(page, "received", "Payment received: the invoice is paid")
    expect(page.locator("#past-due")).to_have_count(0)
    expect(page.locator("#invoice-table tr[data-invoice-id]").first).to_have_attribute("data-status", "paid")
    expect(page.locator("#invoice-table").get_by_role("button", name="Pay now")).to_have_count(0)
    assert [i["status"] for i in who.api.get("/api/v1/invoices").json()["data"]] == ["paid"]


# -- plans -----------------------------------------------------------------------------------------------
def _prorated_micros(who: Payer, now: datetime) -> int:
    """starter -> pro: the price difference for what is left of the period, in whole cents (DESIGN.md, Plan
    changes), from the catalog's prices and the account's period as the API gives them."""
    prices = {p["name"]: p["price_micros"] for p in who.api.get("/api/v1/billing/catalog").json()["plans"]}
    period = _account(who)["period"]
    start, end = (datetime.fromisoformat(period[k].replace("Z", "+00:00")) for k in ("start", "end"))
    us = timedelta(microseconds=1)
    exact = Decimal(prices["pro"] - prices["starter"]) * ((end - now) // us) / ((end - start) // us)
    return int((exact / 10_000).quantize(Decimal(1), rounding=ROUND_HALF_EVEN)) * 10_000


def _ask_upgrade(shot) -> None:
    shot.locator("[data-plan='pro'] [data-plan-action]").click()
    expect(shot.locator("#plan-quote-amount")).to_be_visible()


def _close_dialog(views) -> None:
    for shot in views.values():
        shot.keyboard.press("Escape")


def test_an_upgrade_shows_its_prorated_amount_then_charges_the_saved_card(views, page, who):
    _shoot(views, who, "upgrade", "/billing", "#plan-quote-amount", prepare=_ask_upgrade, dialog=True)
    _close_dialog(views)
    _open_billing(page, who)
    expected = _prorated_micros(who, datetime.now(timezone.utc))
    _ask_upgrade(page)
    shown = dollars_to_micros(page.locator("#plan-quote-amount").inner_text())
    assert abs(shown - expected) <= 10_000, (usd(shown), usd(expected))  # a cent: the clock moved meanwhile
    expect(page.locator("#plan-quote-payer")).to_have_text("Charged now to Visa •••• 4242.")
    page.locator("#plan-confirm").click()
    expect(page.get_by_text("You are on Pro now")).to_be_visible()
    expect(page.locator("#billing-plan")).to_have_text("Pro")
    expect(page.locator("[data-plan='pro']")).to_have_attribute("data-change", "current")
    charged = _payments(who)[0]
    assert (charged["item"], charged["status"], _account(who)["plan"]) == ("plan", "succeeded", "pro")
    assert abs(charged["amount_micros"] - shown) <= 10_000
    row = page.locator(PAYMENT_ROWS).first
    expect(row).to_contain_text("Upgrade to Pro (prorated)")
    expect(row).to_contain_text(usd(charged["amount_micros"]))


def test_a_downgrade_says_when_it_takes_effect_and_can_be_taken_back(views, page, who):
    _open_billing(page, who)
    period_end = datetime.fromisoformat(_account(who)["period"]["end"].replace("Z", "+00:00"))
    on = f"{period_end:%b} {period_end.day}, {period_end.year}"
    _shoot(views, who, "downgrade", "/billing", "#plan-quote-text",
           prepare=lambda p: p.locator("[data-plan='starter'] [data-plan-action]").click(), dialog=True)
    _close_dialog({k: v for k, v in views.items() if v is not page})
    expect(page.locator("#plan-quote-text")).to_contain_text(f"at the end of this period, on {on} (effective date)")
    page.locator("#plan-confirm").click()
    expect(page.get_by_text(f"Your plan changes to Starter on {on}.")).to_be_visible()
    expect(page.locator("[data-plan='starter']")).to_have_attribute("data-change", "pending")
    assert _account(who)["plan"] == "pro"
    page.locator("[data-plan='pro'] [data-plan-action]").click()  # "Keep Pro"
    page.locator("#plan-confirm").click()
    expect(page.locator("[data-plan='starter']")).to_have_attribute("data-change", "downgrade")


# -- auto top-up -----------------------------------------------------------------------------------------
def test_auto_top_up_lands_when_usage_takes_credit_below_the_threshold(views, page, who):
    _open_billing(page, who)
    credit = _credit(who)
    threshold = (credit // 1_000_000 - 5) * 1_000_000  # a few dollars below the balance
    page.locator("#auto-threshold").fill(str(threshold // 1_000_000))
    page.locator("#auto-amount").fill("20")
    page.locator("#auto-limit").fill("100")
    page.locator("#auto-enabled").click()
    page.locator("#save-auto").click()
    expect(page.locator("#auto-state")).to_have_text(
        f"On: $20.00 when credit falls below {usd(threshold)}, at most $100.00 a month.")
    assert who.api.get("/api/v1/billing/auto-top-up").json()["enabled"] is True
    page.evaluate("window.__stayed = true")
    for _ in range(10):  # $7.50 of platform-key tokens a report, until credit is below the threshold
        crossed_at = datetime.now(timezone.utc)
        sent = who.api.post("/api/v1/usage", json={"events": [
            {"id": f"tokens-{uuid.uuid4().hex}", "project_id": who.project_id, "kind": "tokens",
             "model": "claude-opus-4", "provider": "anthropic", "input_tokens": 0, "output_tokens": 100_000}]})
        assert sent.json()["results"][0]["status"] == "accepted", sent.text
        credit = sent.json()["account"]["credit"]["balance_micros"]  # as the report left it, before any top-up
        if credit < threshold:
            break
    assert credit < threshold
    row = page.locator(PAYMENT_ROWS).filter(has_text="Auto top-up: $20.00 credit")
    expect(row).to_have_count(1, timeout=5_000)
    expect(row).to_have_attribute("data-status", "succeeded")
    topped = [p for p in _payments(who) if p["source"] == "auto_top_up"]
    assert [(p["amount_micros"], p["status"]) for p in topped] == [(20_000_000, "succeeded")]
    # Started by the report that crossed the threshold, not by the payments job's next round (every 60 s).
    started = datetime.fromisoformat(topped[0]["created_at"].replace("Z", "+00:00"))
    started = started if started.tzinfo else started.replace(tzinfo=timezone.utc)
    assert started - crossed_at < timedelta(seconds=2), (crossed_at, started)
    expect(page.locator("#credit-balance")).to_have_attribute("data-raw", str(credit + 20_000_000))
    assert page.evaluate("window.__stayed") is True
    _shoot(views, who, "auto-top-up", "/billing", "#payments-table tr[data-payment-id]")
