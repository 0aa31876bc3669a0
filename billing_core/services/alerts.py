"""The usage alerts job: fire each crossed threshold once per period, into the activity feed and as
notifications (email, webhook) that services/notifications.py delivers."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import and_, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from .. import notify
from ..alerts import Alert, Measures, Thresholds, due_alerts, subject_line
from ..db.engine import read_session, write_session
from ..db.models import Account, DailyRollup
from ..db.operations import AlertFired, Notification
from ..db.settings import AccountSettings
from .account_settings import decode_thresholds, default_alert_email
from .context import Billing
from .journal import Journal
from .notifications import new_notification
from .views import rfc3339

BATCH = 500  # accounts read per round: four queries per batch, whatever the number of usage events


@dataclass(frozen=True)
class AlertsResult:
    accounts_checked: int
    accounts_alerted: int
    alerts_fired: int
    notifications_queued: int

    def summary(self) -> dict:
        return {"accounts": self.accounts_checked, "alerted": self.accounts_alerted, "fired": self.alerts_fired,
                "notifications": self.notifications_queued}


def _thresholds(row: AccountSettings | None) -> Thresholds:
    if row is None:
        return Thresholds()
    return Thresholds(decode_thresholds(row.allowance_thresholds), row.daily_spend_micros, row.low_credit_micros)


def _measures(account, today_spend: int) -> Measures:
    return Measures(account.included_ms, account.used_ms, account.credit_balance_micros, int(today_spend or 0))


def _today(now: datetime):
    return now.astimezone(timezone.utc).date()


def evaluate_alerts(billing: Billing, now: datetime) -> AlertsResult:
    """Fire every due alert of every account; safe to run twice and from two instances at once.

    A first pass reads accounts in batches (account rows, settings, today's rollup cost and this period's fired
    alerts: no usage events) and keeps the accounts with something due; each of those is then written in its own
    transaction, which reads its numbers again and inserts each alert under the once-per-period constraint."""
    checked = alerted = fired = queued = 0
    after = ""
    while True:
        with read_session(billing.engine) as session:
            accounts = session.execute(
                select(Account.id, Account.period_start, Account.period_end, Account.included_ms, Account.used_ms,
                       Account.credit_balance_micros)
                .where(Account.id > after).order_by(Account.id).limit(BATCH)).all()
            if not accounts:
                break
            ids = [a.id for a in accounts]
            settings = {row.account_id: row for row in session.execute(
                select(AccountSettings).where(AccountSettings.account_id.in_(ids))).scalars()}
            spend = dict(session.execute(
                select(DailyRollup.account_id, func.sum(DailyRollup.cost_micros))
                .where(DailyRollup.account_id.in_(ids), DailyRollup.day == _today(now))
                .group_by(DailyRollup.account_id)).all())
            already: dict[str, set] = {}
            for account_id, kind, threshold in session.execute(
                    select(AlertFired.account_id, AlertFired.kind, AlertFired.threshold)
                    .join(Account, and_(Account.id == AlertFired.account_id,
                                        Account.period_start == AlertFired.period_start))
                    .where(AlertFired.account_id.in_(ids))):
                already.setdefault(account_id, set()).add((kind, threshold))
        checked += len(accounts)
        after = ids[-1]
        for account in accounts:
            # A period that has ended is closed by the period job first; its numbers are about to reset.
            if account.period_end <= now:
                continue
            if due_alerts(_thresholds(settings.get(account.id)), _measures(account, spend.get(account.id)),
                          frozenset(already.get(account.id, ()))):
                n_fired, n_queued = _fire(billing, account.id, now)
                if n_fired:
                    alerted, fired, queued = alerted + 1, fired + n_fired, queued + n_queued
                    notify.account_changed(account.id)  # committed: the live dashboard shows the alert
    return AlertsResult(checked, alerted, fired, queued)


def _insert_once(session: Session, values: dict) -> bool:
    """Insert the fired alert unless this (account, period, kind, threshold) is there already; True if inserted.
    On PostgreSQL a concurrent insert of the same key waits for the other transaction and then does nothing."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    table = AlertFired.__table__
    stmt = dialect.insert(table).values(**values).on_conflict_do_nothing(
        index_elements=["account_id", "period_start", "kind", "threshold"]).returning(table.c.id)
    # A row comes back only when the insert happened (rowcount is unknown with RETURNING on PostgreSQL).
    return session.execute(stmt).first() is not None


def _webhook_body(account: Account, alert: Alert, measures: Measures, now: datetime) -> str:
    """The Standard Webhooks shape: type, timestamp, data."""
    data = {"account_id": account.id, "kind": alert.kind, "threshold": alert.threshold, "value": alert.value,
            "text": alert.text, "period_start": rfc3339(account.period_start),
            "period_end": rfc3339(account.period_end),
            "allowance_included_ms": measures.included_ms, "allowance_used_ms": measures.used_ms,
            "credit_balance_micros": measures.credit_micros, "today_spend_micros": measures.today_spend_micros}
    return json.dumps({"type": alert.event_type, "timestamp": rfc3339(now.astimezone(timezone.utc)), "data": data},
                      separators=(",", ":"))


def _email_body(account: Account, alert: Alert, now: datetime) -> str:
    return json.dumps({"subject": subject_line(alert), "body": (
        f"{alert.text}\n\nAccount: {account.id}\nBilling period: {rfc3339(account.period_start)} to "
        f"{rfc3339(account.period_end)}\nFired at: {rfc3339(now.astimezone(timezone.utc))}\n\n"
        "You receive this because of the usage alerts in your Tollgate settings; change them there.\n")})


def _fire(billing: Billing, account_id: str, now: datetime) -> tuple[int, int]:
    """Fire what is due for one account in one transaction; (alerts fired, notifications queued)."""
    with write_session(billing.engine) as session:
        account = session.get(Account, account_id)
        if account is None or account.period_end <= now:
            return 0, 0
        row = session.get(AccountSettings, account_id)
        today_spend = session.execute(select(func.sum(DailyRollup.cost_micros)).where(
            DailyRollup.account_id == account_id, DailyRollup.day == _today(now))).scalar()
        fired = frozenset((kind, threshold) for kind, threshold in session.execute(
            select(AlertFired.kind, AlertFired.threshold).where(
                AlertFired.account_id == account_id, AlertFired.period_start == account.period_start)))
        measures = _measures(account, today_spend)
        alerts = due_alerts(_thresholds(row), measures, fired)
        if not alerts:
            return 0, 0
        email = (row.alert_email if row is not None else None) or default_alert_email(session, account_id)
        webhook_url = row.webhook_url if row is not None else None
        journal = Journal(account_id, now)
        notifications: list[dict] = []
        inserted = 0
        for alert in alerts:
            if not _insert_once(session, dict(account_id=account_id, period_start=account.period_start,
                                              kind=alert.kind, threshold=alert.threshold, value=alert.value,
                                              fired_at=now)):
                continue  # another instance fired it first
            inserted += 1
            journal.activity("alert_fired", f"{alert.kind}:{alert.threshold}", alert.text)
            if email:
                notifications.append(new_notification(account_id=account_id, channel="email", destination=email,
                                                      event_type=alert.event_type,
                                                      payload=_email_body(account, alert, now), now=now))
            if webhook_url:
                notifications.append(new_notification(account_id=account_id, channel="webhook",
                                                      destination=webhook_url, event_type=alert.event_type,
                                                      payload=_webhook_body(account, alert, measures, now), now=now))
        journal.flush(session)
        if notifications:
            session.execute(Notification.__table__.insert(), notifications)
        return inserted, len(notifications)
