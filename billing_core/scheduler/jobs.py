"""The registry of scheduled jobs: what runs, how often, and with which inputs.

Every job is `run(now) -> summary` around an idempotent service function of `now`; the services are
imported when a job first runs, so the scheduler loads (and the other jobs run) even when one of them
cannot be imported. Interval jobs are polls: each run finds for itself the work that is due at `now`
(periods that ended, notifications whose retry time came, outbox rows not yet delivered), so the interval
only paces how often the live scheduler asks. Cron jobs (the nightly reconciliation) are due at their
fire times, in UTC.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Callable

from ..cronspec import next_fire_times, parse_cron
from ..services.context import Billing

if TYPE_CHECKING:  # the services that define these are imported lazily (see the module docstring)
    import httpx

    from ..payments.provider import Provider
    from ..services.notifications import SmtpConfig
    from ..sync.config import SyncConfig

CRON_ZONE = "UTC"
PERIODS_EVERY_S = 60.0
ALERTS_EVERY_S = 60.0
NOTIFICATIONS_EVERY_S = 10.0
DISPATCH_EVERY_S = 15.0
DEFAULT_SYNC_EVERY_S = 1.0
DEFAULT_RECONCILE_CRON = "0 3 * * *"
DEFAULT_PAYMENTS_RECONCILE_CRON = "30 3 * * *"
PAYMENTS_EVERY_S = 60.0
SANDBOX_DELIVERY_EVERY_S = 1.0
JOB_NAMES = ("periods", "payments", "payments_reconcile", "alerts", "notifications", "dispatch",
             "sandbox_deliveries", "edge_sync", "reconcile")


@dataclass(frozen=True)
class PaymentsConfig:
    """The provider the payment jobs use; for the sandbox, where and how it delivers its events."""

    provider: "Provider"
    sandbox_webhook_url: str | None = None
    sandbox_webhook_secret: str | None = None
    sandbox_chaos: float = 0.0
    reconcile_cron: str = DEFAULT_PAYMENTS_RECONCILE_CRON


@dataclass(frozen=True)
class JobsConfig:
    """What the jobs need from outside billing_core, built by the portal from its Settings."""

    http: "httpx.Client | None" = None  # with timeouts; its owner closes it
    smtp: "SmtpConfig | None" = None  # None: alerts are not emailed
    dispatch_url: str | None = None  # None: due schedules queue runs without dispatching them
    sync: "SyncConfig | None" = None  # None: no edge sync, no reconciliation
    sync_interval_s: float = DEFAULT_SYNC_EVERY_S
    reconcile_cron: str = DEFAULT_RECONCILE_CRON
    payments: PaymentsConfig | None = None  # None: no invoice collection, auto top-up or reconciliation


@dataclass(frozen=True)
class Job:
    """A named, idempotent function of `now`, due every `every_s` seconds or at the fire times of `cron`."""

    name: str
    run: Callable[[datetime], dict] = field(repr=False, compare=False)
    every_s: float | None = None
    cron: str | None = None  # five fields, UTC

    def __post_init__(self) -> None:
        if (self.every_s is None) == (self.cron is None):
            raise ValueError(f"job {self.name}: give exactly one of every_s and cron")
        if self.every_s is not None and self.every_s <= 0:
            raise ValueError(f"job {self.name}: every_s must be positive")
        if self.cron is not None:
            parse_cron(self.cron)  # an Invalid naming the cron field when it is malformed

    @property
    def schedule(self) -> str:
        """For people: "every 60 s" or "cron 0 3 * * * (UTC)"."""
        return f"every {self.every_s:g} s" if self.every_s is not None else f"cron {self.cron} ({CRON_ZONE})"

    def next_fire_after(self, moment: datetime) -> datetime | None:
        """A cron job's first fire time strictly after `moment` (None for interval jobs)."""
        if self.cron is None:
            return None
        fires = next_fire_times(self.cron, CRON_ZONE, now=moment + timedelta(microseconds=1), count=1)
        return fires[0] if fires else None

    def is_due(self, last_started_at: datetime | None, now: datetime, *, slack_s: float = 0.0) -> bool:
        """Due when it never ran; when its last start lies after `now` (a clock or a `tick --now` ahead of
        this one: waiting for it would stall the job); an interval job once `every_s` has passed since its
        last start (less `slack_s`, the live ticker's jitter); a cron job when a fire time lies in
        (last start, now]."""
        if last_started_at is None or last_started_at > now:
            return True
        if self.every_s is not None:
            return last_started_at + timedelta(seconds=max(self.every_s - slack_s, 0.0)) <= now
        fire = self.next_fire_after(last_started_at)
        return fire is not None and fire <= now


def summary_of(result: Any) -> dict:
    """A service result as a small JSON-able dict: its `.summary()`, or the fields of a dataclass."""
    if result is None:
        return {}
    if hasattr(result, "summary"):
        return dict(result.summary())
    if dataclasses.is_dataclass(result) and not isinstance(result, type):
        return dataclasses.asdict(result)
    if isinstance(result, dict):
        return result
    return {"result": str(result)}


def build_jobs(billing: Billing, config: JobsConfig) -> list[Job]:
    """The six jobs, in the order a tick runs them: period work first (invoices, pool expiry), then alerts
    on the fresh balances, their delivery, schedule dispatch, and the edge sync of everything before."""
    # Each job builds its targets on its first run and keeps them (they may hold connections). The sync and
    # the reconciliation get a set each: the live scheduler may run them at once, in two threads.
    built: dict[str, list] = {}

    def edge_targets(job: str) -> list:
        if job not in built:
            from ..sync.targets import build_targets

            built[job] = list(build_targets(config.sync, http=config.http))
        return built[job]

    def periods(now: datetime) -> dict:
        from ..services.periods import run_due_work

        return summary_of(run_due_work(billing, now))

    def alerts(now: datetime) -> dict:
        from ..services.alerts import evaluate_alerts

        return summary_of(evaluate_alerts(billing, now))

    def notifications(now: datetime) -> dict:
        from ..services.notifications import deliver_notifications

        return summary_of(deliver_notifications(billing, now, smtp=config.smtp, http=_http(config)))

    def dispatch(now: datetime) -> dict:
        from ..services.dispatch import dispatch_due_schedules

        return summary_of(dispatch_due_schedules(billing, now, dispatch_url=config.dispatch_url,
                                                 http=_http(config)))

    def edge_sync(now: datetime) -> dict:
        from ..sync.deliver import sync_once

        return summary_of(sync_once(billing, edge_targets("edge_sync"), now))

    def reconcile(now: datetime) -> dict:
        from ..sync.deliver import reconcile as reconcile_targets

        return summary_of(reconcile_targets(billing, edge_targets("reconcile"), now))

    jobs = [Job("periods", periods, every_s=PERIODS_EVERY_S)]
    if config.payments is not None:
        jobs += _payment_jobs(billing, config.payments, config)
    jobs += [Job("alerts", alerts, every_s=ALERTS_EVERY_S),
             Job("notifications", notifications, every_s=NOTIFICATIONS_EVERY_S),
             Job("dispatch", dispatch, every_s=DISPATCH_EVERY_S)]
    if config.payments is not None and config.payments.sandbox_webhook_url:
        jobs.append(_sandbox_job(billing, config.payments, config))
    if config.sync is not None and config.sync.targets:
        jobs += [Job("edge_sync", edge_sync, every_s=config.sync_interval_s),
                 Job("reconcile", reconcile, cron=config.reconcile_cron)]
    return jobs


def _payment_jobs(billing: Billing, payments: PaymentsConfig, config: JobsConfig) -> list[Job]:
    """Invoice collection and dunning, then the auto top-up safety net, right after period close; and the
    nightly comparison with the provider's records."""

    def collect(now: datetime) -> dict:
        from ..payments.auto_top_up import run_auto_top_ups
        from ..payments.checkout import expire_checkouts
        from ..payments.collect import collect_invoices

        return {**summary_of(collect_invoices(billing, payments.provider, now)),
                "auto_top_ups": run_auto_top_ups(billing, payments.provider, now),
                "checkouts_expired": expire_checkouts(billing, now)}

    def reconcile(now: datetime) -> dict:
        from ..payments.reconcile import reconcile_payments

        return summary_of(reconcile_payments(billing, payments.provider, now))

    return [Job("payments", collect, every_s=PAYMENTS_EVERY_S),
            Job("payments_reconcile", reconcile, cron=payments.reconcile_cron)]


def _sandbox_job(billing: Billing, payments: PaymentsConfig, config: JobsConfig) -> Job:
    def deliver(now: datetime) -> dict:
        from ..payments.sandbox_delivery import deliver_sandbox_events

        return summary_of(deliver_sandbox_events(billing, url=payments.sandbox_webhook_url,
                                                 secret=payments.sandbox_webhook_secret or "", http=_http(config),
                                                 now=now, chaos=payments.sandbox_chaos))

    return Job("sandbox_deliveries", deliver, every_s=SANDBOX_DELIVERY_EVERY_S)


def _http(config: JobsConfig) -> "httpx.Client":
    if config.http is None:
        raise RuntimeError("this job sends HTTP requests: give JobsConfig an httpx.Client")
    return config.http
