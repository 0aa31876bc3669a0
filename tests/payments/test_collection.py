"""Invoices collected at period close from the saved card; past due when that fails, retried on days 1, 3 and 5,
dropped to hobby after 7 days; paid by hand by checkout; nothing owed is paid at once. On SQLite and PostgreSQL,
and once through `tollgate admin tick --now` as an operator runs it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from billing_core.db.engine import make_engine, read_session
from billing_core.db.models import Account, Invoice
from billing_core.db.payments import Payment
from billing_core.payments import provider as p
from billing_core.payments.apply import apply_event
from billing_core.payments.collect import collect_invoices
from billing_core.services.periods import run_due_work

from ..conftest import T0
from ..factories import make_account
from ..live_server import copy_sqlite_template, create_account_cli, run_cli_ok, server_env
from .helpers import checkout, event, sandbox

CLOSE = T0 + timedelta(days=31, minutes=1)  # the first period (from T0) has ended


def _account_with_card(billing, provider, card_last4: str, plan: str = "starter") -> str:
    account_id = make_account(billing, plan=plan).account_id
    started = checkout(billing, provider, account_id, {"item": "credit", "amount_micros": 5_000_000},
                       T0 + timedelta(days=1))
    paid = event(p.PAYMENT_SUCCEEDED, f"evt_{account_id}", checkout_id=started.id, account_id=account_id,
                 provider_payment_id=f"sbp_{account_id}", amount_micros=5_000_000, at=T0,
                 method=p.SavedMethod(f"sbcard_{card_last4}", None, "visa", card_last4))
    assert apply_event(billing, paid, now=T0 + timedelta(days=1)).outcome == "applied"
    return account_id


def _invoice(billing, account_id: str) -> Invoice:
    with read_session(billing.engine) as session:
        return session.execute(select(Invoice).where(Invoice.account_id == account_id)).scalar_one()


def _plan(billing, account_id: str) -> str:
    with read_session(billing.engine) as session:
        return session.get(Account, account_id).plan


def test_period_close_collects_the_invoice_from_the_saved_card(billing):
    provider = sandbox(billing)
    account_id = _account_with_card(billing, provider, "4242")
    run_due_work(billing, CLOSE)
    invoice = _invoice(billing, account_id)
    assert (invoice.status, invoice.total_micros, invoice.number is not None) == ("open", 20_000_000, True)
    assert collect_invoices(billing, provider, CLOSE).charged == 1
    invoice = _invoice(billing, account_id)
    assert invoice.status == "paid" and invoice.payment_id is not None
    with read_session(billing.engine) as session:
        payment = session.get(Payment, invoice.payment_id)
    assert (payment.status, payment.amount_micros, payment.receipt_number is not None) == ("succeeded",
                                                                                           20_000_000, True)
    assert collect_invoices(billing, provider, CLOSE + timedelta(hours=1)).charged == 0  # once


def test_a_failed_collection_is_retried_on_days_1_3_5_and_drops_to_hobby_after_7(billing):
    provider = sandbox(billing)
    account_id = _account_with_card(billing, provider, "0341")  # succeeds at checkout, declines later
    run_due_work(billing, CLOSE)
    collect_invoices(billing, provider, CLOSE)
    invoice = _invoice(billing, account_id)
    assert (invoice.status, invoice.retries_done) == ("past_due", 0)
    for days, retries in ((0.5, 0), (1, 1), (2, 1), (3, 2), (5, 3), (6, 3)):
        result = collect_invoices(billing, provider, CLOSE + timedelta(days=days))
        assert (_invoice(billing, account_id).retries_done, result.dropped_to_hobby) == (retries, 0), days
    assert _plan(billing, account_id) == "starter"
    assert collect_invoices(billing, provider, CLOSE + timedelta(days=7)).dropped_to_hobby == 1
    assert _plan(billing, account_id) == "hobby" and _invoice(billing, account_id).status == "past_due"

    # Paying by hand is still possible: a checkout for the invoice, then its success.
    started = checkout(billing, provider, account_id, {"item": "invoice", "invoice_id": invoice.id},
                       CLOSE + timedelta(days=8))
    assert started.amount_micros == 20_000_000
    paid = event(p.PAYMENT_SUCCEEDED, "evt_by_hand", checkout_id=started.id, account_id=account_id,
                 provider_payment_id="sbp_by_hand", amount_micros=20_000_000, at=CLOSE)
    apply_event(billing, paid, now=CLOSE + timedelta(days=8))
    assert _invoice(billing, account_id).status == "paid"


def test_without_a_saved_card_the_invoice_is_past_due_at_once_and_nothing_owed_is_paid(billing):
    provider = sandbox(billing)
    starter = make_account(billing, plan="starter").account_id
    hobby = make_account(billing, plan="hobby").account_id
    run_due_work(billing, CLOSE)
    collect_invoices(billing, provider, CLOSE)
    assert _invoice(billing, starter).status == "past_due"
    assert _invoice(billing, hobby).status == "paid"


def test_tick_now_drives_collection_and_dunning(tmp_path, sqlite_template):
    env = server_env(copy_sqlite_template(sqlite_template, tmp_path))
    created = create_account_cli(env, "tick-dunning@example.com", "starter")
    start = datetime.now(timezone.utc)
    for days in (32, 33, 40):  # the period closes (no card: past due), a retry day, then 7 days unpaid
        stamp = (start + timedelta(days=days)).isoformat().replace("+00:00", "Z")
        out = run_cli_ok(env, "admin", "tick", "--now", stamp)
        assert "payments: ok" in out, out
    engine = make_engine(env["TOLLGATE_DATABASE_URL"])
    try:
        with read_session(engine) as session:
            plan = session.get(Account, created["account_id"]).plan
            invoices = session.execute(select(Invoice.status, Invoice.retries_done).where(
                Invoice.account_id == created["account_id"])).all()
    finally:
        engine.dispose()
    assert plan == "hobby" and [tuple(i) for i in invoices] == [("past_due", 1)]


def test_an_unpaid_checkout_expires_and_a_late_success_is_still_granted(billing):
    from billing_core.payments.checkout import CHECKOUT_TTL, expire_checkouts, get_checkout

    provider = sandbox(billing)
    account_id = make_account(billing, plan="starter").account_id
    at = T0 + timedelta(days=1)
    started = checkout(billing, provider, account_id, {"item": "credit", "amount_micros": 5_000_000}, at)
    assert expire_checkouts(billing, at + CHECKOUT_TTL - timedelta(seconds=1)) == 0
    assert expire_checkouts(billing, at + CHECKOUT_TTL) == 1
    assert get_checkout(billing, account_id, started.id).status == "expired"
    late = event(p.PAYMENT_SUCCEEDED, "evt_late", checkout_id=started.id, account_id=account_id,
                 provider_payment_id="sbp_late", amount_micros=5_000_000, at=at)
    assert apply_event(billing, late, now=at + CHECKOUT_TTL).outcome == "applied"
    assert get_checkout(billing, account_id, started.id).status == "complete"


def test_an_invoice_paid_twice_at_once_keeps_the_second_payment_as_credit(billing):
    provider = sandbox(billing)
    account_id = _account_with_card(billing, provider, "4242")
    run_due_work(billing, CLOSE)
    invoice = _invoice(billing, account_id)
    by_hand = checkout(billing, provider, account_id, {"item": "invoice", "invoice_id": invoice.id}, CLOSE)
    assert collect_invoices(billing, provider, CLOSE).charged == 1  # collected meanwhile
    paid = event(p.PAYMENT_SUCCEEDED, "evt_twice", checkout_id=by_hand.id, account_id=account_id,
                 provider_payment_id="sbp_twice", amount_micros=20_000_000, at=CLOSE)
    assert apply_event(billing, paid, now=CLOSE).outcome == "applied"
    with read_session(billing.engine) as session:
        credit = session.get(Account, account_id).credit_balance_micros
    assert credit == 5_000_000 + 20_000_000 and _invoice(billing, account_id).status == "paid"
