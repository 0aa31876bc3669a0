"""Delivering notifications (alert emails and webhooks): each claimed by one instance, retried with
exponential backoff and jitter, and given up visibly after MAX_ATTEMPTS."""

from __future__ import annotations

import json
import logging
import math
import random
import smtplib
import ssl
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Callable

import httpx
from sqlalchemy import select, update
from standardwebhooks.webhooks import Webhook

from .. import notify
from ..db.engine import read_session, write_session
from ..db.operations import Notification
from ..errors import ServiceError
from ..ids import new_id
from .account_settings import reveal_webhook_secret
from .context import Billing
from .journal import Journal

log = logging.getLogger("billing_core.notifications")

MAX_ATTEMPTS = 8  # about 15 hours of trying before a message is given up
FIRST_DELAY = timedelta(seconds=30)
BACKOFF_FACTOR = 4  # 30 s, 2 min, 8 min, 32 min, 2 h 8 min, then the cap
MAX_DELAY = timedelta(hours=6)
JITTER = 0.2  # each wait is stretched or shrunk by up to 20 %, so retries of many messages spread out
# A claimed message is not picked again before this, so a second instance never sends it at the same time;
# if the sender dies mid-send, it is retried once the lease runs out (at least once, never twice at once).
LEASE = timedelta(minutes=5)
SEND_TIMEOUT_S = 10.0
BATCH = 200  # messages per run; the rest wait for the next tick
ERROR_MAX = 500
USER_AGENT = "Tollgate-Webhooks/1"


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int = 25
    username: str | None = None
    password: str | None = None
    sender: str = "Tollgate <alerts@localhost>"
    starttls: bool = False
    timeout_s: float = SEND_TIMEOUT_S


@dataclass(frozen=True)
class DeliveryResult:
    delivered: int = 0
    retrying: int = 0  # failed this time, tried again later
    failed: int = 0  # given up this time
    skipped: int = 0  # emails with no SMTP server configured
    taken: int = 0  # claimed by another instance first

    def summary(self) -> dict:
        return {"delivered": self.delivered, "retrying": self.retrying, "failed": self.failed,
                "skipped": self.skipped, "taken": self.taken}


def new_notification(*, account_id: str, channel: str, destination: str, event_type: str, payload: str,
                     now: datetime) -> dict:
    """A notifications row, due at once; the caller inserts it in the transaction that caused it."""
    return dict(id=new_id("msg"), account_id=account_id, channel=channel, destination=destination,
                event_type=event_type, payload=payload, status="pending", attempts=0, next_attempt_at=now,
                created_at=now)


def backoff(failures: int, rand: float) -> timedelta:
    """The wait after the `failures`-th failed attempt, with `rand` in [0, 1) choosing the jitter."""
    # The exponent stops growing well past the cap, so a large count cannot overflow timedelta.
    base = min(FIRST_DELAY * BACKOFF_FACTOR ** min(max(0, failures - 1), 16), MAX_DELAY)
    return base * (1 - JITTER + 2 * JITTER * rand)


# -- senders --------------------------------------------------------------------------------------
class _Mailer:
    """One SMTP connection for a run, opened on the first email. After a failure to connect, the remaining
    emails of the run fail with the same reason instead of each waiting for the timeout."""

    def __init__(self, config: SmtpConfig) -> None:
        self.config, self.conn, self.broken = config, None, None

    def _connect(self) -> smtplib.SMTP:
        c = self.config
        conn = smtplib.SMTP(c.host, c.port, timeout=c.timeout_s)
        try:
            conn.ehlo()
            if c.starttls:
                conn.starttls(context=ssl.create_default_context())
                conn.ehlo()
            if c.username:
                conn.login(c.username, c.password or "")
        except BaseException:
            conn.close()
            raise
        return conn

    def send(self, message: EmailMessage) -> None:
        if self.broken:
            raise ConnectionError(self.broken)
        if self.conn is None:
            try:
                self.conn = self._connect()
            except (OSError, smtplib.SMTPException) as exc:
                self.broken = f"SMTP {self.config.host}:{self.config.port}: {_reason(exc)}"
                raise ConnectionError(self.broken) from exc
        try:
            self.conn.send_message(message)
        except smtplib.SMTPRecipientsRefused:
            raise  # the connection is still good for the next message
        except (OSError, smtplib.SMTPException):
            self._drop()
            raise

    def _drop(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            finally:
                self.conn = None

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.quit()
            except (OSError, smtplib.SMTPException):
                log.debug("SMTP QUIT failed; the connection is dropped anyway", exc_info=True)
            self._drop()


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text != type(exc).__name__ else text


def email_message(row: Notification, sender: str, now: datetime) -> EmailMessage:
    content = json.loads(row.payload)
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, row.destination, content["subject"]
    msg["Date"] = format_datetime(now.astimezone(timezone.utc))
    # The same id on every attempt, so a receiving system can drop the copy of a retried send.
    domain = parseaddr(sender)[1].partition("@")[2] or "tollgate.invalid"
    msg["Message-ID"] = f"<{row.id}@{domain}>"
    msg["X-Tollgate-Event"] = row.event_type
    msg.set_content(content["body"])
    return msg


def webhook_headers(msg_id: str, secret: str, payload: str, now: datetime) -> dict[str, str]:
    """The Standard Webhooks headers: id, timestamp (unix seconds) and `v1,<base64 HMAC-SHA256>`."""
    return {"webhook-id": msg_id, "webhook-timestamp": str(math.floor(now.timestamp())),
            "webhook-signature": Webhook(secret).sign(msg_id, now.astimezone(timezone.utc), payload),
            "content-type": "application/json", "user-agent": USER_AGENT}


def _post_webhook(http: httpx.Client, row: Notification, secret: str, now: datetime) -> str | None:
    """None when the receiver answered 2xx, else why not. The answer's body is never read."""
    try:
        with http.stream("POST", row.destination, content=row.payload.encode(),
                         headers=webhook_headers(row.id, secret, row.payload, now),
                         timeout=SEND_TIMEOUT_S, follow_redirects=False) as response:
            if 200 <= response.status_code < 300:
                return None
            return f"HTTP {response.status_code} from the webhook URL"
    except httpx.HTTPError as exc:
        return _reason(exc)


# -- the job --------------------------------------------------------------------------------------
def deliver_notifications(billing: Billing, now: datetime, *, smtp: SmtpConfig | None, http: httpx.Client,
                          rand: Callable[[], float] = random.random, limit: int = BATCH) -> DeliveryResult:
    """Send what is due (pending, next_attempt_at <= now). Emails without an SMTP server are marked skipped."""
    with read_session(billing.engine) as session:
        due = session.execute(select(Notification.id, Notification.channel, Notification.attempts)
                              .where(Notification.status == "pending", Notification.next_attempt_at <= now)
                              .order_by(Notification.next_attempt_at, Notification.id).limit(limit)).all()
    counts = dict(delivered=0, retrying=0, failed=0, skipped=0, taken=0)
    mailer = _Mailer(smtp) if smtp is not None else None
    secrets: dict[str, str | Exception] = {}
    try:
        for msg_id, channel, attempts in due:
            if channel == "email" and mailer is None:
                counts["skipped"] += _skip(billing, msg_id)
                continue
            row = _claim(billing, msg_id, attempts, now)
            if row is None:
                counts["taken"] += 1
                continue
            if row.channel == "email":
                error = _send_email(mailer, row, now)
            else:
                error = _send_webhook(billing, http, row, now, secrets)
            counts[_record(billing, row, error, now, rand)] += 1
    finally:
        if mailer is not None:
            mailer.close()
    return DeliveryResult(**counts)


def _skip(billing: Billing, msg_id: str) -> int:
    with write_session(billing.engine) as session:
        return session.execute(update(Notification).where(Notification.id == msg_id,
                                                          Notification.status == "pending")
                               .values(status="skipped", last_error="SMTP is not configured")).rowcount


def _claim(billing: Billing, msg_id: str, attempts: int, now: datetime) -> Notification | None:
    """Push the message's next attempt past the lease; only the instance whose UPDATE matched sends it."""
    with write_session(billing.engine) as session:
        claimed = session.execute(
            update(Notification).where(Notification.id == msg_id, Notification.status == "pending",
                                       Notification.attempts == attempts, Notification.next_attempt_at <= now)
            .values(next_attempt_at=now + LEASE)).rowcount
        return session.get(Notification, msg_id) if claimed == 1 else None


def _send_email(mailer: _Mailer, row: Notification, now: datetime) -> str | None:
    try:
        mailer.send(email_message(row, mailer.config.sender, now))
    except (OSError, smtplib.SMTPException, ValueError) as exc:
        return _reason(exc)
    return None


def _send_webhook(billing: Billing, http: httpx.Client, row: Notification, now: datetime,
                  secrets: dict[str, str | Exception]) -> str | None:
    if row.account_id not in secrets:
        try:
            secrets[row.account_id] = reveal_webhook_secret(billing, row.account_id)
        except (ServiceError, RuntimeError, ValueError) as exc:  # no secret, no keyring, or it does not open
            secrets[row.account_id] = exc
    secret = secrets[row.account_id]
    if isinstance(secret, Exception):
        return f"cannot sign: {getattr(secret, 'message', None) or secret}"
    return _post_webhook(http, row, secret, now)


def _record(billing: Billing, row: Notification, error: str | None, now: datetime,
            rand: Callable[[], float]) -> str:
    attempts = row.attempts + 1
    done = update(Notification).where(Notification.id == row.id)
    with write_session(billing.engine) as session:
        if error is None:
            session.execute(done.values(status="delivered", attempts=attempts, delivered_at=now, last_error=None))
            return "delivered"
        if attempts < MAX_ATTEMPTS:
            session.execute(done.values(attempts=attempts, last_error=error[:ERROR_MAX],
                                        next_attempt_at=now + backoff(attempts, rand())))
            return "retrying"
        session.execute(done.values(status="failed", attempts=attempts, last_error=error[:ERROR_MAX]))
        journal = Journal(row.account_id, now)
        what = "email to" if row.channel == "email" else "webhook to"
        journal.activity("alert_undelivered", row.id,
                         f"Alert {what} {row.destination} given up after {attempts} attempts: {error}")
        journal.flush(session)
    notify.account_changed(row.account_id)
    return "failed"
