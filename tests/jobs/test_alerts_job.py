"""evaluate_alerts on SQLite and PostgreSQL: each threshold fires once per period, into the activity feed
and as notifications, however many instances evaluate at once."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import event

from billing_core import notify
from billing_core.db.engine import write_session
from billing_core.db.operations import AlertFired, Notification
from billing_core.services import account_settings as settings
from billing_core.services import alerts as alerts_service
from billing_core.services.alerts import _insert_once, evaluate_alerts
from billing_core.services.identity import create_user
from billing_core.services.periods import run_due_work

from ..conftest import T0
from ..factories import make_account
from .helpers import activities, rows, use

HOUR_MS, MINUTE_MS = 3_600_000, 60_000
LATER = T0 + timedelta(hours=1)
PASSWORD = "correct horse battery staple"


def fired_keys(billing, account_id: str) -> list[tuple[str, int]]:
    return sorted((a.kind, a.threshold) for a in rows(billing, AlertFired, account_id=account_id))


def test_each_crossed_step_fires_once_into_the_feed_the_email_and_the_webhook(billing):
    account = make_account(billing)
    create_user(billing, account_id=account.account_id, email="owner@example.com", password=PASSWORD, now=T0)
    settings.save_alert_delivery(billing, account.account_id, alert_email=None,
                                 webhook_url="http://127.0.0.1:9/hook", now=T0, allow_loopback=True)
    use(billing, account, 40 * MINUTE_MS, LATER)
    changed: list[str] = []
    unsubscribe = notify.subscribe(changed.append)
    try:
        result = evaluate_alerts(billing, LATER)
    finally:
        unsubscribe()
    assert (result.alerts_fired, result.notifications_queued, result.accounts_alerted) == (1, 2, 1)
    assert changed == [account.account_id]
    assert fired_keys(billing, account.account_id) == [("allowance", 50)]
    (fired,) = rows(billing, AlertFired, account_id=account.account_id)
    assert (fired.period_start, fired.value, fired.fired_at) == (T0, 40 * MINUTE_MS, LATER)
    (line,) = activities(billing, account.account_id, "alert_fired")
    assert line.text == "50 % of this period's included compute used (40 min of 60 min)."

    by_channel = {n.channel: n for n in rows(billing, Notification, account_id=account.account_id)}
    email, hook = by_channel["email"], by_channel["webhook"]
    assert (email.destination, email.status, email.next_attempt_at) == ("owner@example.com", "pending", LATER)
    assert json.loads(email.payload)["subject"] == "Tollgate: 50 % of your included compute used"
    body = json.loads(hook.payload)
    assert hook.destination == "http://127.0.0.1:9/hook" and hook.event_type == "alert.allowance"
    assert body["type"] == "alert.allowance" and body["timestamp"] == "2026-01-15T13:00:00Z"
    assert body["data"] == {
        "account_id": account.account_id, "kind": "allowance", "threshold": 50, "value": 40 * MINUTE_MS,
        "text": line.text, "period_start": "2026-01-15T12:00:00Z", "period_end": "2026-02-15T12:00:00Z",
        "allowance_included_ms": HOUR_MS, "allowance_used_ms": 40 * MINUTE_MS, "credit_balance_micros": 0,
        "today_spend_micros": 0}

    assert evaluate_alerts(billing, LATER + timedelta(minutes=1)).alerts_fired == 0  # nothing new
    use(billing, account, 25 * MINUTE_MS, LATER + timedelta(hours=1))
    assert evaluate_alerts(billing, LATER + timedelta(hours=1)).alerts_fired == 2  # 80 and 100 together
    assert fired_keys(billing, account.account_id) == [("allowance", 50), ("allowance", 80), ("allowance", 100)]
    assert len(activities(billing, account.account_id, "alert_fired")) == 3
    assert len(rows(billing, Notification, account_id=account.account_id)) == 6


def test_without_a_settings_row_the_defaults_fire_to_the_accounts_email(billing):
    account = make_account(billing, email="nobody-signed-in@example.com")
    use(billing, account, HOUR_MS, LATER)
    assert evaluate_alerts(billing, LATER).alerts_fired == 3
    notes = rows(billing, Notification, account_id=account.account_id)
    assert {(n.channel, n.destination) for n in notes} == {("email", "nobody-signed-in@example.com")}
    assert len(notes) == 3


def test_a_new_period_fires_the_same_thresholds_again(billing):
    account = make_account(billing)
    use(billing, account, HOUR_MS, LATER)
    assert evaluate_alerts(billing, LATER).alerts_fired == 3
    period_end = T0 + timedelta(days=31)  # 2026-02-15 12:00
    assert evaluate_alerts(billing, period_end + timedelta(minutes=5)).alerts_fired == 0  # not closed yet
    run_due_work(billing, period_end + timedelta(minutes=5))
    assert evaluate_alerts(billing, period_end + timedelta(minutes=6)).alerts_fired == 0  # fresh allowance
    use(billing, account, 30 * MINUTE_MS, period_end + timedelta(hours=2))
    assert evaluate_alerts(billing, period_end + timedelta(hours=2)).alerts_fired == 1
    periods = sorted((a.period_start, a.threshold) for a in rows(billing, AlertFired, account_id=account.account_id))
    assert periods[-1] == (period_end, 50) and len(periods) == 4


def test_daily_spend_and_low_credit_fire_once_per_period(billing):
    account = make_account(billing, credit_micros=1_000_000)
    settings.save_alert_settings(billing, account.account_id, allowance_thresholds=[], daily_spend_micros=300_000,
                                 low_credit_micros=800_000, now=T0)
    use(billing, account, HOUR_MS + HOUR_MS, LATER)  # the second hour costs $0.36 of credit
    result = evaluate_alerts(billing, LATER)
    assert fired_keys(billing, account.account_id) == [("daily_spend", 300_000), ("low_credit", 800_000)]
    assert result.alerts_fired == 2
    texts = [a.text for a in activities(billing, account.account_id, "alert_fired")]
    assert texts == ["Today's spend reached $0.36 (alert at $0.30).", "Credit balance is $0.64, below $0.80."]
    next_day = LATER + timedelta(days=1)
    use(billing, account, HOUR_MS, next_day)
    assert evaluate_alerts(billing, next_day).alerts_fired == 0  # once per period, not once per day


def test_todays_spend_counts_only_the_current_utc_day(billing):
    account = make_account(billing, credit_micros=1_000_000)
    settings.save_alert_settings(billing, account.account_id, allowance_thresholds=[], daily_spend_micros=500_000,
                                 low_credit_micros=None, now=T0)
    use(billing, account, HOUR_MS + 3 * MINUTE_MS * 10, LATER)  # $0.18 today
    use(billing, account, 3 * MINUTE_MS * 10, LATER + timedelta(days=1))  # $0.18 the next day
    assert evaluate_alerts(billing, LATER + timedelta(days=1)).alerts_fired == 0
    use(billing, account, 4 * MINUTE_MS * 10, LATER + timedelta(days=1, hours=1))  # +$0.24: $0.42 that day
    assert evaluate_alerts(billing, LATER + timedelta(days=1, hours=1)).alerts_fired == 0
    use(billing, account, MINUTE_MS * 14, LATER + timedelta(days=1, hours=2))  # +$0.084: $0.504
    assert fired_keys(billing, account.account_id) == []
    assert evaluate_alerts(billing, LATER + timedelta(days=1, hours=2)).alerts_fired == 1


def test_the_constraint_turns_a_second_insert_of_the_same_alert_into_nothing(billing):
    account = make_account(billing)
    values = dict(account_id=account.account_id, period_start=T0, kind="allowance", threshold=80, value=1,
                  fired_at=LATER)
    with write_session(billing.engine) as session:
        assert _insert_once(session, values) is True
    with write_session(billing.engine) as session:
        assert _insert_once(session, values) is False
        assert _insert_once(session, dict(values, threshold=100)) is True
    assert fired_keys(billing, account.account_id) == [("allowance", 80), ("allowance", 100)]


def test_concurrent_evaluators_fire_each_alert_exactly_once(billing):
    accounts = [make_account(billing) for _ in range(8)]
    for account in accounts:
        use(billing, account, HOUR_MS, LATER)
    start = threading.Barrier(4)

    def evaluate(_):
        start.wait()
        return evaluate_alerts(billing, LATER).alerts_fired

    with ThreadPoolExecutor(4) as pool:
        fired = sum(pool.map(evaluate, range(4)))
    assert fired == 8 * 3
    for account in accounts:
        assert fired_keys(billing, account.account_id) == [("allowance", 50), ("allowance", 80), ("allowance", 100)]
        assert len(activities(billing, account.account_id, "alert_fired")) == 3
        assert len(rows(billing, Notification, account_id=account.account_id)) == 3


def test_the_number_of_queries_does_not_grow_with_accounts_that_have_nothing_due(billing):
    def statements_for(count: int) -> int:
        for _ in range(count):
            make_account(billing)
        seen = []
        listener = lambda *args: seen.append(1)  # noqa: E731
        event.listen(billing.engine, "before_cursor_execute", listener)
        try:
            assert evaluate_alerts(billing, LATER).alerts_fired == 0
        finally:
            event.remove(billing.engine, "before_cursor_execute", listener)
        return len(seen)

    assert statements_for(3) == statements_for(30)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_racing_instance_that_missed_the_others_uncommitted_alert_inserts_nothing(billing, monkeypatch):
    """PostgreSQL only (SQLite's write lock serialises the two transactions whole): B reads the fired alerts
    while A's insert is not committed, so B believes the alert is due; B's insert then waits for A's
    transaction and the constraint turns it into nothing."""
    account = make_account(billing)
    use(billing, account, 30 * MINUTE_MS, LATER)
    a_inserted, b_inserting = threading.Event(), threading.Event()
    outcomes: dict[str, bool] = {}
    real_insert = alerts_service._insert_once

    def insert(session, values):
        name = threading.current_thread().name
        if name == "B":
            b_inserting.set()  # B has read the fired alerts (A's row was not visible) and inserts now
        inserted = real_insert(session, values)
        outcomes[name] = inserted
        if name == "A":
            a_inserted.set()
            assert b_inserting.wait(10)  # A's transaction stays open until B is inserting
        return inserted

    monkeypatch.setattr(alerts_service, "_insert_once", insert)
    results: dict[str, tuple[int, int]] = {}

    def fire(name: str) -> None:
        if name == "B":
            assert a_inserted.wait(10)
        results[name] = alerts_service._fire(billing, account.account_id, LATER)

    threads = [threading.Thread(target=fire, args=(name,), name=name) for name in ("A", "B")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert outcomes == {"A": True, "B": False}
    assert results == {"A": (1, 1), "B": (0, 0)}
    assert fired_keys(billing, account.account_id) == [("allowance", 50)]
    assert len(activities(billing, account.account_id, "alert_fired")) == 1
    assert len(rows(billing, Notification, account_id=account.account_id)) == 1
