"""The sandbox provider's delivery job: POST each due event to the app's /webhooks/sandbox, signed with
Standard Webhooks, retried with backoff until answered 2xx, as a real provider does. With `chaos` (0..1) it
also behaves as real providers do now and then: an event sent twice, events sent out of order, one held back.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable

import httpx
from sqlalchemy import select, update

from ..db.engine import read_session, write_session
from ..db.payments import SandboxDelivery
from ..services.context import Billing
from ..services.notifications import webhook_headers

MAX_ATTEMPTS = 12
FIRST_RETRY = timedelta(seconds=2)
MAX_RETRY = timedelta(minutes=10)
LEASE = timedelta(seconds=30)  # a claimed delivery is not sent by another instance meanwhile
BATCH = 200
HOLD_BACK = timedelta(seconds=2)


@dataclass
class SandboxDeliveries:
    delivered: int = 0
    retrying: int = 0
    failed: int = 0
    duplicated: int = 0  # sent a second time on purpose (chaos)
    held_back: int = 0  # left for a later run on purpose (chaos), so later events overtake it

    def summary(self) -> dict:
        return dict(self.__dict__)


def deliver_sandbox_events(billing: Billing, *, url: str, secret: str, http: httpx.Client, now: datetime,
                           chaos: float = 0.0, rand: Callable[[], float] = random.random,
                           clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> SandboxDeliveries:
    """Send the sandbox events due at `now` to `url`. Signatures carry the sender's real clock (`clock`), not
    `now`, which may be a `tick --now` in the future: the receiver checks freshness against its own clock."""
    with read_session(billing.engine) as session:
        due = session.execute(select(SandboxDelivery.id, SandboxDelivery.attempts)
                              .where(SandboxDelivery.status == "pending", SandboxDelivery.next_attempt_at <= now)
                              .order_by(SandboxDelivery.next_attempt_at, SandboxDelivery.id).limit(BATCH)).all()
    result = SandboxDeliveries()
    due = list(due)
    if chaos and len(due) > 1 and rand() < chaos:
        due.reverse()  # the newest first: out of order, as providers promise nothing about order
    for msg_id, attempts in due:
        if chaos and rand() < chaos / 2:
            result.held_back += _hold(billing, msg_id, attempts, now)
            continue
        row = _claim(billing, msg_id, attempts, now)
        if row is None:
            continue
        error = _post(http, url, secret, row, clock())
        if error is None and chaos and rand() < chaos:
            _post(http, url, secret, row, clock())  # the same webhook-id again: the receiver must shrug
            result.duplicated += 1
        outcome = _record(billing, row, error, now)
        setattr(result, outcome, getattr(result, outcome) + 1)
    return result


def _post(http: httpx.Client, url: str, secret: str, row: SandboxDelivery, sent_at: datetime) -> str | None:
    try:
        response = http.post(url, content=row.payload.encode(), headers=webhook_headers(row.id, secret, row.payload,
                                                                                        sent_at),
                             timeout=10.0, follow_redirects=False)
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"
    return None if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"


def _hold(billing: Billing, msg_id: str, attempts: int, now: datetime) -> int:
    with write_session(billing.engine) as session:
        return session.execute(update(SandboxDelivery).where(SandboxDelivery.id == msg_id,
                                                             SandboxDelivery.attempts == attempts)
                               .values(next_attempt_at=now + HOLD_BACK)).rowcount


def _claim(billing: Billing, msg_id: str, attempts: int, now: datetime) -> SandboxDelivery | None:
    with write_session(billing.engine) as session:
        claimed = session.execute(update(SandboxDelivery).where(
            SandboxDelivery.id == msg_id, SandboxDelivery.status == "pending", SandboxDelivery.attempts == attempts,
            SandboxDelivery.next_attempt_at <= now).values(next_attempt_at=now + LEASE)).rowcount
        return session.get(SandboxDelivery, msg_id) if claimed == 1 else None


def _record(billing: Billing, row: SandboxDelivery, error: str | None, now: datetime) -> str:
    attempts = row.attempts + 1
    values: dict = dict(attempts=attempts, last_error=error[:300] if error else None)
    if error is None:
        values["status"], outcome = "delivered", "delivered"
    elif attempts >= MAX_ATTEMPTS:
        values["status"], outcome = "failed", "failed"
    else:
        values["next_attempt_at"], outcome = now + min(FIRST_RETRY * 2 ** (attempts - 1), MAX_RETRY), "retrying"
    with write_session(billing.engine) as session:
        session.execute(update(SandboxDelivery).where(SandboxDelivery.id == row.id).values(**values))
    return outcome
