"""The nightly reconciliation compares the provider's records with ours: silent when they agree, an activity
row and an error log for each difference (a refund we never heard of, money taken and nothing granted)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from billing_core.db.engine import read_session, write_session
from billing_core.db.models import Activity
from billing_core.db.payments import SandboxCharge
from billing_core.payments.reconcile import reconcile_payments

from ..factories import make_account
from .helpers import checkout, deliver_here, sandbox


def test_reconciliation_is_silent_when_the_records_agree_and_names_each_difference(billing, caplog):
    now = datetime.now(timezone.utc)
    paid_at = now - timedelta(hours=2)
    provider = sandbox(billing)
    account_id = make_account(billing, plan="starter", now=paid_at - timedelta(days=1)).account_id
    for amount in (10_000_000, 20_000_000):
        started = checkout(billing, provider, account_id, {"item": "credit", "amount_micros": amount}, paid_at)
        assert provider.pay(started.id, "4242424242424242", paid_at).status == "succeeded"
    assert deliver_here(billing, provider, now) == ["applied", "applied"]
    assert reconcile_payments(billing, provider, now).summary() == {"compared": 2, "differences": 0, "first": []}

    with write_session(billing.engine) as session:  # the provider refunded $5 that we never heard of
        charge = session.execute(select(SandboxCharge).where(SandboxCharge.amount_micros == 10_000_000)).scalar_one()
        charge.refunded_micros = 5_000_000
    stray = checkout(billing, provider, account_id, {"item": "credit", "amount_micros": 7_000_000}, paid_at)
    provider.pay(stray.id, "4242424242424242", paid_at)  # taken, and its event never arrives
    found = reconcile_payments(billing, provider, now)
    assert found.compared == 3 and len(found.differences) == 2
    assert any("refunded $5.00, we recorded $0.00" in d for d in found.differences)
    assert any("took $7.00 but nothing was granted" in d for d in found.differences)
    with read_session(billing.engine) as session:
        rows = session.execute(select(Activity.text).where(Activity.account_id == account_id,
                                                           Activity.kind == "reconciliation_difference")).all()
    assert len(rows) == 2
    assert sum("payments reconciliation" in r.getMessage() for r in caplog.records if r.levelname == "ERROR") == 2
    caplog.errors_expected = True  # the operator's alert is an error in the log, on purpose
