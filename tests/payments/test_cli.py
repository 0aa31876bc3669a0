"""Payments in the CLI, with the real `tollgate` binary on a SQLite database a live API server (sandbox
provider) shares: `admin refund|payments|dispute`, the customer's `tollgate billing` over HTTP, and the demo
account's payments. Payments are made as a customer makes them (a checkout paid on the sandbox's page) and
the sandbox's own deliveries go to the server's /webhooks/sandbox, so an event the CLI applied at once and
then delivered by the sandbox is seen to change nothing the second time."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from datetime import datetime, timezone

import httpx
import pytest
from sqlalchemy import select

from billing_core.db.engine import make_engine, read_session
from billing_core.db.models import Account
from billing_core.db.payments import PaymentEvent, SandboxDelivery
from billing_core.payments import views
from billing_core.payments.apply import DUPLICATE, NO_CHANGE, apply_event
from billing_core.payments.reconcile import reconcile_payments
from billing_core.payments.refunds import refund_payment
from billing_core.payments.sandbox import CARD_SUCCEEDS, SandboxProvider
from billing_core.payments.sandbox_delivery import deliver_sandbox_events
from billing_core.plans import load_catalog
from billing_core.services.context import Billing
from billing_core.services.notifications import webhook_headers
from portal.cli.demo import DEMO_EMAIL
from portal.cli.payments_admin import dollars_to_micros
from portal.local_secrets import local_sandbox_webhook_secret

from ..factories import make_account
from ..live_server import ROOT, TOLLGATE, copy_sqlite_template, run_api_server, run_cli_ok
from .helpers import SECRET, checkout, state

USD = 1_000_000


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def clean_env(**extra: str) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.startswith(("TOLLGATE_", "XDG_"))}, **extra}


@pytest.fixture(scope="module", autouse=True)
def demo_build(tmp_path_factory, sqlite_template):
    """`tollgate demo` into a database of its own, started before the first test and read by the last:
    the demo takes seconds, which the other tests use meanwhile."""
    workdir = tmp_path_factory.mktemp("demo")
    url = copy_sqlite_template(sqlite_template, workdir)
    env = clean_env(TOLLGATE_DATABASE_URL=url, TOLLGATE_ENV="dev", TOLLGATE_DATA_DIR=str(workdir), COLUMNS="200")
    with open(workdir / "demo.out", "w") as out:  # a file, not a pipe nobody reads until the end
        process = subprocess.Popen([str(TOLLGATE), "demo"], cwd=workdir, env=env, stdout=out,
                                   stderr=subprocess.STDOUT)
    yield workdir, url, process
    if process.poll() is None:
        process.kill()
        process.wait()


class Shop:
    """The live server, a billing context on its database, the sandbox, and a way to pay."""

    def __init__(self, live, billing: Billing) -> None:
        self.live, self.billing = live, billing
        self.env = {**live.env, "COLUMNS": "200"}
        self.sandbox = SandboxProvider(billing, webhook_secret=SECRET, public_url=live.base_url)
        self.http = httpx.Client(timeout=10)

    def account(self, credit_micros: int = 0):
        return make_account(self.billing, plan="starter", credit_micros=credit_micros, now=utcnow())

    def pay(self, account_id: str, body: dict) -> str:
        """A checkout paid with 4242 on the sandbox's page; its event delivered to the server. The payment id."""
        started = checkout(self.billing, self.sandbox, account_id, body, utcnow())
        assert self.sandbox.pay(started.id, CARD_SUCCEEDS, utcnow()).status == "succeeded"
        self.deliver()
        assert views.get_payment(self.billing, account_id, started.payment_id)["status"] == "succeeded"
        return started.payment_id

    def deliver(self) -> int:
        """What the sandbox has queued, POSTed to the server's /webhooks/sandbox; how many were answered 2xx."""
        return deliver_sandbox_events(self.billing, url=f"{self.live.base_url}/webhooks/sandbox", secret=SECRET,
                                      http=self.http, now=utcnow()).delivered

    def cli(self, *args: str) -> subprocess.Popen:
        """`tollgate ARGS` on the server's database, started (see `finished`)."""
        return subprocess.Popen([str(TOLLGATE), *args], cwd=ROOT, env=self.env, text=True, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)


@pytest.fixture(scope="module")
def shop(tmp_path_factory, sqlite_template):
    workdir = tmp_path_factory.mktemp("payments-cli")
    url = copy_sqlite_template(sqlite_template, workdir)
    extra = {"TOLLGATE_SANDBOX_WEBHOOK_SECRET": SECRET, "TOLLGATE_DATA_DIR": str(workdir)}
    with run_api_server(url, extra_env=extra, log_path=workdir / "server.log") as live:
        billing = Billing(engine=make_engine(url), catalog=load_catalog())
        shop = Shop(live, billing)
        try:
            yield shop
        finally:
            shop.http.close()
            billing.engine.dispose()


def finished(*processes: subprocess.Popen) -> list[subprocess.CompletedProcess]:
    """Wait for CLI processes started side by side (each takes a second to start: run together)."""
    done = []
    for proc in processes:
        out, err = proc.communicate(timeout=60)
        done.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    return done


def one_line_failure(done: subprocess.CompletedProcess, fragment: str) -> None:
    assert done.returncode != 0, done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tollgate: ") and "Traceback" not in done.stderr, done.stderr
    assert fragment in lines[0], lines[0]


def events_of(billing: Billing, payment_id: str) -> list[tuple[str, str]]:
    with read_session(billing.engine) as session:
        return [tuple(row) for row in session.execute(
            select(PaymentEvent.type, PaymentEvent.outcome).where(PaymentEvent.payment_id == payment_id)
            .order_by(PaymentEvent.id))]


# -- admin refund ------------------------------------------------------------------------------------------
def test_a_partial_refund_then_the_rest_takes_back_the_credit_once(shop):
    account = shop.account()
    paid = shop.pay(account.account_id, {"item": "credit", "amount_micros": 25 * USD})
    assert state(shop.billing, account.account_id)["credit"] == 25 * USD

    out = run_cli_ok(shop.env, "admin", "refund", paid, "--usd", "10.50")
    assert f"refunded $10.50 of {paid}" in out and "partially_refunded" in out and "$10.50 of $25.00 refunded" in out
    assert state(shop.billing, account.account_id)["credit"] == 14_500_000
    out = run_cli_ok(shop.env, "admin", "refund", paid)  # all that is left
    assert f"refunded $14.50 of {paid}" in out and "$25.00 of $25.00 refunded" in out
    after = state(shop.billing, account.account_id)
    assert after["credit"] == after["credit_entries"] == 0
    assert after["payments"] == [("refunded", 25 * USD, 25 * USD, True)]

    # The sandbox then sends its own refund.succeeded events to the server: known refunds, nothing changes.
    assert shop.deliver() == 2
    assert state(shop.billing, account.account_id) == after
    assert sorted(events_of(shop.billing, paid)) == [("payment.succeeded", "applied"),
                                                   ("refund.created", "applied"), ("refund.created", "applied"),
                                                   ("refund.succeeded", NO_CHANGE), ("refund.succeeded", NO_CHANGE)]


def test_an_unknown_payment_or_too_much_is_one_line_and_changes_nothing(shop):
    account = shop.account()
    paid = shop.pay(account.account_id, {"item": "credit", "amount_micros": 25 * USD})
    before = state(shop.billing, account.account_id)
    unknown, too_much = finished(shop.cli("admin", "refund", "pay_nosuchpayment"),
                                 shop.cli("admin", "refund", paid, "--usd", "25.01"))
    one_line_failure(unknown, "No payment with id pay_nosuchpayment.")
    one_line_failure(too_much, f"--usd $25.01 is more than the $25.00 left to refund of payment {paid}")
    assert state(shop.billing, account.account_id) == before
    assert shop.deliver() == 0  # nothing was asked of the sandbox


@pytest.mark.parametrize(("text", "micros"), [("10", 10 * USD), ("12.5", 12_500_000), ("$12.50", 12_500_000),
                                              ("0.01", 10_000), (" 1000.99 ", 1_000_990_000)])
def test_usd_is_dollars_with_cents_read_exactly(text, micros):
    assert dollars_to_micros(text) == micros


@pytest.mark.parametrize("text", ["1.234", "0", "0.00", "-1", "1e3", "NaN", "12,50", "", "1.2.3", "inf"])
def test_usd_that_is_not_dollars_with_cents_is_refused(text):
    with pytest.raises(ValueError, match="--usd must be"):
        dollars_to_micros(text)


# -- admin payments -------------------------------------------------------------------------------------------
def test_payments_are_listed_as_a_table_and_as_json(shop):
    account = shop.account()
    credit = shop.pay(account.account_id, {"item": "credit", "amount_micros": 25 * USD})
    pack = shop.pay(account.account_id, {"item": "pool_pack", "quantity": 2})
    refund_payment(shop.billing, shop.sandbox, credit, amount_micros=5 * USD, now=utcnow())
    text, as_json = finished(shop.cli("admin", "payments", account.account_id),
                             shop.cli("admin", "payments", account.account_id, "--json"))
    assert text.returncode == as_json.returncode == 0, text.stderr + as_json.stderr
    rows = {line.split("│")[1].strip(): line for line in text.stdout.splitlines() if "pay_" in line}
    assert set(rows) == {credit, pack}
    for cell in ("$25.00 credit", "partially_refunded", "$25.00", "$5.00"):
        assert cell in rows[credit]
    for cell in ("2 pool packs", "succeeded", "$6.00", "$0.00"):
        assert cell in rows[pack]
    listed = json.loads(as_json.stdout)
    assert listed["account_id"] == account.account_id
    expected = views.list_payments(shop.billing, account.account_id)
    assert [p["id"] for p in listed["data"]] == [p["id"] for p in expected] == [pack, credit]  # newest first
    for shown, row in zip(listed["data"], expected):
        assert shown == {**row, "created_at": shown["created_at"]}
        at = row["created_at"]  # RFC 3339 in UTC, to the millisecond as the API's other times
        assert shown["created_at"].endswith("Z")
        assert datetime.fromisoformat(shown["created_at"]) == at.replace(microsecond=at.microsecond // 1000 * 1000)
    assert listed["data"][1]["status"] == "partially_refunded" and listed["data"][1]["refunded_micros"] == 5 * USD


# -- admin dispute ----------------------------------------------------------------------------------------------
def test_a_dispute_opened_suspends_the_account_and_its_later_delivery_is_a_duplicate(shop):
    account = shop.account()
    paid = shop.pay(account.account_id, {"item": "credit", "amount_micros": 25 * USD})
    out = run_cli_ok(shop.env, "admin", "dispute", paid, "--outcome", "opened")
    assert "disputed, dispute open" in out and f"tollgate admin resume {account.account_id}" in out
    opened = state(shop.billing, account.account_id)
    assert opened["suspended"] and opened["credit"] == 25 * USD
    assert opened["payments"] == [("disputed", 0, 0, True)]
    # The sandbox's own delivery of the event reaches the server: the same webhook-id, so a duplicate.
    assert shop.deliver() == 1
    assert state(shop.billing, account.account_id) == opened
    assert events_of(shop.billing, paid) == [("payment.succeeded", "applied"), ("dispute.opened", "applied")]


# -- the customer's `tollgate billing` -----------------------------------------------------------------------------
def test_billing_shows_balances_card_auto_top_up_and_payments_over_http(shop, tmp_path):
    email = f"billing-{uuid.uuid4().hex[:8]}@example.com"
    account = make_account(shop.billing, plan="starter", credit_micros=3 * USD, now=utcnow(), email=email)
    paid = shop.pay(account.account_id, {"item": "credit", "amount_micros": 25 * USD})
    pack = shop.pay(account.account_id, {"item": "pool_pack", "quantity": 1})
    turned_on = httpx.put(f"{shop.live.base_url}/api/v1/billing/auto-top-up", headers=account_auth(account),
                          json={"enabled": True, "threshold_micros": 5 * USD, "amount_micros": 20 * USD,
                                "monthly_limit_micros": 60 * USD})
    assert turned_on.status_code == 200, turned_on.text
    # What `tollgate login` leaves behind: the device flow's account key, kept for the server it came from.
    config = tmp_path / "config"
    (config / "tollgate").mkdir(parents=True)
    (config / "tollgate" / "credentials.json").write_text(json.dumps({"url": shop.live.base_url,
                                                                      "api_key": account.api_key}))
    customer = clean_env(HOME=str(tmp_path), XDG_CONFIG_HOME=str(config), COLUMNS="200")
    shown = subprocess.run([str(TOLLGATE), "billing"], env=customer, cwd=tmp_path, text=True, capture_output=True,
                           timeout=60)
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    for line in (f"{email} ({account.account_id})  status active", "plan         starter",
                 "credit       $28.00", "allowance    ", "pools        10 h 00 min left in 1 pool",
                 "card         visa ending 4242 (sandbox)", "past due     no",
                 "auto top-up  on: $20.00 when credit falls below $5.00, at most $60.00 a month"):
        assert line in out, out
    rows = [line for line in out.splitlines() if "$" in line and "│" in line]
    assert len(rows) == 2 and "1 pool pack" in rows[0] and "$25.00 credit" in rows[1], out
    assert all("succeeded" in row for row in rows)
    assert views.list_payments(shop.billing, account.account_id)[0]["id"] == pack != paid


def account_auth(account) -> dict[str, str]:
    return {"Authorization": f"Bearer {account.api_key}"}


# -- the demo -------------------------------------------------------------------------------------------------------
def test_the_demo_has_a_card_payments_a_refund_and_a_paid_invoice(demo_build):
    workdir, url, process = demo_build
    process.wait(timeout=120)
    out = (workdir / "demo.out").read_text()
    assert process.returncode == 0, out
    assert "Payments with the sandbox card" in out and DEMO_EMAIL in out
    billing = Billing(engine=make_engine(url), catalog=load_catalog())
    try:
        with read_session(billing.engine) as session:
            account_id = session.execute(select(Account.id).where(Account.email == DEMO_EMAIL)).scalar_one()
        card = views.payment_method(billing, account_id)
        assert card is not None and (card["provider"], card["brand"], card["last4"]) == ("sandbox", "visa", "4242")
        made = views.list_payments(billing, account_id)
        assert len(made) >= 2 and all(p["provider"] == "sandbox" for p in made)
        refunded = [p for p in made if p["status"] == "partially_refunded"]
        assert len(refunded) == 1 and 0 < refunded[0]["refunded_micros"] < refunded[0]["amount_micros"]
        assert {p["item"] for p in made} >= {"credit", "pool_pack", "invoice"}
        assert all(p["receipt_number"] for p in made if p["status"] != "failed")
        paid = [i for i in views.list_invoices(billing, account_id) if i["status"] == "paid"]
        assert paid and paid[0]["payment_id"] in {p["id"] for p in made} and paid[0]["number"]
        assert not views.past_due(billing, account_id)

        # The app's first start runs the reconciliation at once and delivers what the sandbox queued: the
        # provider's records agree with the ledger, and every queued event is one the demo applied already.
        provider = SandboxProvider(billing, webhook_secret=local_sandbox_webhook_secret(workdir),
                                   public_url="http://localhost:3000")
        assert reconcile_payments(billing, provider, utcnow()).differences == []
        before = state(billing, account_id)
        with read_session(billing.engine) as session:
            queued = session.execute(select(SandboxDelivery).where(SandboxDelivery.status == "pending")).scalars().all()
        assert len(queued) >= 3
        for row in queued:
            now = utcnow()
            event = provider.parse_webhook(webhook_headers(row.id, provider.secret, row.payload, now),
                                           row.payload.encode(), now)
            assert apply_event(billing, event, now=now).outcome in (DUPLICATE, NO_CHANGE)
        assert state(billing, account_id) == before
    finally:
        billing.engine.dispose()
