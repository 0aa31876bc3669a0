"""Delivering alert notifications to a real SMTP server (aiosmtpd) and a real webhook receiver on 127.0.0.1:
signed by the Standard Webhooks scheme, retried with backoff, sent once even with two senders."""

from __future__ import annotations

import base64
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from billing_core.db.engine import write_session
from billing_core.db.operations import Notification
from billing_core.services import account_settings as settings
from billing_core.services.alerts import evaluate_alerts
from billing_core.services.identity import create_user
from billing_core.services.notifications import (MAX_ATTEMPTS, SmtpConfig, backoff, deliver_notifications,
                                                 new_notification)

from ..conftest import T0
from ..factories import make_account
from .helpers import activities, rows, use
from .receivers import Receiver, SmtpServer, closed_port_url

HOUR_MS = 3_600_000
LATER = T0 + timedelta(hours=1)
PASSWORD = "correct horse battery staple"
SENDER = "Tollgate Alerts <alerts@tollgate.test>"
HALF = lambda: 0.5  # noqa: E731 (no jitter: the waits are exactly 30 s, 2 min, ...)


def smtp_config(server: SmtpServer, **kw) -> SmtpConfig:
    return SmtpConfig(host="127.0.0.1", port=server.port, sender=SENDER, **kw)


def queue(billing, account_id: str, channel: str, destination: str, payload: dict, now) -> str:
    row = new_notification(account_id=account_id, channel=channel, destination=destination,
                           event_type="alert.allowance", payload=json.dumps(payload), now=now)
    with write_session(billing.engine) as session:
        session.execute(Notification.__table__.insert(), [row])
    return row["id"]


def one(billing, msg_id: str) -> Notification:
    (row,) = rows(billing, Notification, id=msg_id)
    return row


def webhook_account(billing, url: str, now):
    account = make_account(billing, now=now - timedelta(hours=1))
    settings.save_alert_delivery(billing, account.account_id, alert_email=None, webhook_url=url, now=now,
                                 allow_loopback=True)
    return account


def verifying(billing, account_id: str) -> Receiver:
    """A receiver that answers 204 only to a request whose Standard Webhooks signature verifies."""
    secret = settings.reveal_webhook_secret(billing, account_id)

    def check(received) -> int:
        try:
            Webhook(secret).verify(received.body, received.headers)
        except WebhookVerificationError:
            return 401
        return 204

    return Receiver(check)


def test_alert_emails_reach_a_real_smtp_server_with_their_content(billing, smtp_server, http):
    account = make_account(billing)
    create_user(billing, account_id=account.account_id, email="owner@example.com", password=PASSWORD, now=T0)
    use(billing, account, HOUR_MS, LATER)
    assert evaluate_alerts(billing, LATER).notifications_queued == 3
    result = deliver_notifications(billing, LATER, smtp=smtp_config(smtp_server), http=http)
    assert result.summary() == {"delivered": 3, "retrying": 0, "failed": 0, "skipped": 0, "taken": 0}

    inbox = smtp_server.inbox
    assert inbox.recipients == [["owner@example.com"]] * 3
    subjects = sorted(m["Subject"] for m in inbox.messages)
    assert subjects == [f"Tollgate: {p} % of your included compute used" for p in (100, 50, 80)]
    first = next(m for m in inbox.messages if "100 %" in m["Subject"])
    assert first["From"] == SENDER and first["To"] == "owner@example.com"
    assert first["X-Tollgate-Event"] == "alert.allowance"
    text = first.get_content()
    assert "100 % of this period's included compute used (60 min of 60 min)." in text
    assert account.account_id in text and "2026-01-15T12:00:00Z" in text
    delivered = rows(billing, Notification, account_id=account.account_id)
    assert {(n.status, n.attempts, n.delivered_at) for n in delivered} == {("delivered", 1, LATER)}
    assert {f"<{n.id}@tollgate.test>" for n in delivered} == {m["Message-ID"] for m in inbox.messages}
    again = deliver_notifications(billing, LATER + timedelta(hours=1), smtp=smtp_config(smtp_server), http=http)
    assert again.delivered == 0 and len(inbox.messages) == 3


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_smtp_login_is_used_when_a_username_is_set(sqlite_billing, http):
    server = SmtpServer(login=("alerts", "s3cret-pass"))
    try:
        account = make_account(sqlite_billing)
        good = queue(sqlite_billing, account.account_id, "email", "a@example.com", {"subject": "s", "body": "b"}, T0)
        result = deliver_notifications(sqlite_billing, T0, http=http, rand=HALF,
                                       smtp=smtp_config(server, username="alerts", password="s3cret-pass"))
        assert result.delivered == 1 and one(sqlite_billing, good).status == "delivered"
        bad = queue(sqlite_billing, account.account_id, "email", "a@example.com", {"subject": "s", "body": "b"}, T0)
        result = deliver_notifications(sqlite_billing, T0, http=http, rand=HALF,
                                       smtp=smtp_config(server, username="alerts", password="wrong", timeout_s=5))
        row = one(sqlite_billing, bad)
        assert result.retrying == 1 and row.status == "pending" and row.attempts == 1
        assert "SMTPAuthenticationError" in row.last_error and row.next_attempt_at == T0 + timedelta(seconds=30)
        assert len(server.inbox.messages) == 1
    finally:
        server.close()


def test_emails_without_smtp_are_marked_skipped_and_webhooks_still_go(sqlite_billing, receiver, http, wall_now):
    account = webhook_account(sqlite_billing, receiver.url, wall_now)
    mail = queue(sqlite_billing, account.account_id, "email", "a@example.com", {"subject": "s", "body": "b"},
                 wall_now)
    hook = queue(sqlite_billing, account.account_id, "webhook", receiver.url, {"type": "t"}, wall_now)
    result = deliver_notifications(sqlite_billing, wall_now, smtp=None, http=http)
    assert (result.skipped, result.delivered) == (1, 1)
    assert (one(sqlite_billing, mail).status, one(sqlite_billing, mail).last_error) == ("skipped",
                                                                                       "SMTP is not configured")
    assert one(sqlite_billing, hook).status == "delivered" and len(receiver.requests) == 1


def test_an_alert_webhook_is_signed_by_the_standard_webhooks_scheme(billing, http, wall_now):
    account = webhook_account(billing, "http://127.0.0.1:1/placeholder", wall_now)
    secret = settings.reveal_webhook_secret(billing, account.account_id)
    assert secret.startswith("whsec_") and len(base64.b64decode(secret.removeprefix("whsec_"))) == 24
    receiver = verifying(billing, account.account_id)
    try:
        settings.save_alert_delivery(billing, account.account_id, alert_email=None, webhook_url=receiver.url,
                                     now=wall_now, allow_loopback=True)
        use(billing, account, HOUR_MS // 2, wall_now)
        assert evaluate_alerts(billing, wall_now).alerts_fired == 1
        result = deliver_notifications(billing, wall_now, smtp=None, http=http)
        assert (result.delivered, result.skipped) == (1, 1)  # the webhook; the email waits for no SMTP
        (received,) = receiver.requests
        (hook,) = rows(billing, Notification, account_id=account.account_id, channel="webhook")
        assert hook.status == "delivered" and hook.attempts == 1
        assert received.path == "/hook" and received.headers["content-type"] == "application/json"
        assert received.headers["webhook-id"] == hook.id
        assert received.headers["webhook-timestamp"] == str(int(wall_now.timestamp()))
        assert received.body.decode() == hook.payload
        payload = Webhook(secret).verify(received.body, received.headers)  # what the customer runs
        assert payload["type"] == "alert.allowance" and payload["data"]["threshold"] == 50
        with pytest.raises(WebhookVerificationError):
            Webhook(settings.rotate_webhook_secret(billing, account.account_id, now=wall_now)).verify(
                received.body, received.headers)
    finally:
        receiver.close()


def test_a_failing_receiver_is_retried_with_backoff_and_gets_the_message_once(billing, http, wall_now):
    account = webhook_account(billing, "http://127.0.0.1:1/placeholder", wall_now)
    receiver = verifying(billing, account.account_id)
    try:
        msg = queue(billing, account.account_id, "webhook", receiver.url, {"type": "alert.low_credit"}, wall_now)
        receiver.fail_next(500, 503)
        first = deliver_notifications(billing, wall_now, smtp=None, http=http, rand=HALF)
        row = one(billing, msg)
        assert first.retrying == 1 and (row.status, row.attempts) == ("pending", 1)
        assert row.last_error == "HTTP 500 from the webhook URL"
        assert row.next_attempt_at == wall_now + timedelta(seconds=30)
        assert deliver_notifications(billing, wall_now + timedelta(seconds=29), smtp=None, http=http).retrying == 0
        assert len(receiver.requests) == 1  # not due yet
        deliver_notifications(billing, wall_now + timedelta(seconds=30), smtp=None, http=http, rand=HALF)
        row = one(billing, msg)
        assert row.attempts == 2 and row.last_error == "HTTP 503 from the webhook URL"
        assert row.next_attempt_at == wall_now + timedelta(seconds=150)
        done = deliver_notifications(billing, wall_now + timedelta(seconds=150), smtp=None, http=http, rand=HALF)
        row = one(billing, msg)
        assert done.delivered == 1 and (row.status, row.attempts, row.last_error) == ("delivered", 3, None)
        assert [r.headers["webhook-id"] for r in receiver.requests] == [msg] * 3  # one id: receivers dedupe
        later = deliver_notifications(billing, wall_now + timedelta(hours=1), smtp=None, http=http)
        assert later.delivered == 0 and len(receiver.requests) == 3
    finally:
        receiver.close()


def test_a_message_that_keeps_failing_is_given_up_and_shown_in_the_feed(sqlite_billing, http):
    url = closed_port_url()
    account = webhook_account(sqlite_billing, url, T0)
    msg = queue(sqlite_billing, account.account_id, "webhook", url, {"type": "t"}, T0)
    now = T0
    for attempt in range(1, MAX_ATTEMPTS + 1):
        result = deliver_notifications(sqlite_billing, now, smtp=None, http=http)
        assert (result.retrying, result.failed) == ((1, 0) if attempt < MAX_ATTEMPTS else (0, 1))
        now += timedelta(hours=8)  # past the longest wait
    row = one(sqlite_billing, msg)
    assert (row.status, row.attempts) == ("failed", MAX_ATTEMPTS) and "ConnectError" in row.last_error
    (line,) = activities(sqlite_billing, account.account_id, "alert_undelivered")
    assert line.text.startswith(f"Alert webhook to {url} given up after {MAX_ATTEMPTS} attempts: ConnectError")
    assert deliver_notifications(sqlite_billing, now, smtp=None, http=http).summary()["failed"] == 0


def test_an_smtp_server_that_is_down_delays_every_email_of_the_run(sqlite_billing, http):
    account = make_account(sqlite_billing)
    ids = [queue(sqlite_billing, account.account_id, "email", "a@example.com", {"subject": "s", "body": "b"}, T0)
           for _ in range(2)]
    port = int(closed_port_url().rsplit(":", 1)[1].split("/")[0])
    result = deliver_notifications(sqlite_billing, T0, smtp=SmtpConfig("127.0.0.1", port, timeout_s=2), http=http)
    assert result.retrying == 2
    assert all("SMTP 127.0.0.1" in one(sqlite_billing, i).last_error for i in ids)


def test_two_senders_at_once_send_each_message_once(billing, receiver, http, wall_now):
    account = webhook_account(billing, receiver.url, wall_now)
    ids = {queue(billing, account.account_id, "webhook", receiver.url, {"n": n}, wall_now) for n in range(6)}
    start = threading.Barrier(3)

    def send(_):
        start.wait()
        return deliver_notifications(billing, wall_now, smtp=None, http=http)

    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(send, range(3)))
    assert sum(r.delivered for r in results) == 6
    assert sorted(r.headers["webhook-id"] for r in receiver.requests) == sorted(ids)


@pytest.mark.parametrize("failures, rand, seconds", [
    (1, 0.5, 30), (2, 0.5, 120), (3, 0.5, 480), (5, 0.5, 7680), (6, 0.5, 21600), (40, 0.5, 21600),
    (1, 0.0, 24), (6, 0.0, 17280)])
def test_the_wait_grows_fourfold_to_a_cap_and_jitters_by_a_fifth(failures, rand, seconds):
    assert backoff(failures, rand) == timedelta(seconds=seconds)
    assert backoff(failures, 0.999999) < timedelta(seconds=seconds * 1.2 / (0.8 + 0.4 * rand) + 1)
