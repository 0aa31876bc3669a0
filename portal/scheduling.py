"""The scheduler's inputs from Settings, and its start and stop inside the app (a lifespan task).

Every app worker runs a LiveScheduler when TOLLGATE_SCHEDULER_ENABLED is true (the default), so `make run`
needs no separate process; the lease lets one of them act. `tollgate scheduler` runs the same thing alone.
The API-only server (portal.api.asgi) never starts it. See docs/scheduler.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from billing_core import notify
from billing_core.errors import Invalid
from billing_core.scheduler.jobs import Job, JobsConfig, PaymentsConfig, build_jobs
from billing_core.scheduler.live import LiveScheduler, SchedulerEvent
from billing_core.services.context import Billing
from billing_core.services.notifications import SmtpConfig
from billing_core.sync.config import SyncConfig, parse_target_names

from .payments import provider_for, sandbox_webhook_url
from .runtime import get_billing
from .settings import Settings, get_settings

log = logging.getLogger("portal.scheduling")

HTTP_TIMEOUT = httpx.Timeout(10.0, connect=5.0)  # every outbound call of a job (webhooks, dispatch, Cloudflare)
EDGE_FILE_NAME = "edge.sqlite"
EDGE_SYNC_JOB = "edge_sync"


def target_names(settings: Settings) -> tuple[str, ...]:
    """The edge targets named by TOLLGATE_SYNC_TARGETS, in order; an unknown or repeated name is a
    ValueError naming the variable."""
    return parse_target_names(settings.sync_targets)


def smtp_config(settings: Settings) -> SmtpConfig | None:
    """SMTP for alert emails; None while TOLLGATE_SMTP_HOST is unset."""
    if not settings.smtp_host:
        return None
    return SmtpConfig(host=settings.smtp_host, port=settings.smtp_port, username=settings.smtp_username,
                      password=settings.smtp_password, sender=settings.smtp_from, starttls=settings.smtp_starttls)


def sync_config(settings: Settings) -> SyncConfig | None:
    """The edge sync's targets and where they are; None when no target is configured."""
    names = target_names(settings)
    if not names:
        return None
    return SyncConfig(targets=names, file_path=settings.sync_file_path or settings.data_dir / EDGE_FILE_NAME,
                      redis_url=settings.sync_redis_url or settings.redis_url,
                      cloudflare_api_base=settings.cloudflare_api_base,
                      cloudflare_account_id=settings.cloudflare_account_id,
                      cloudflare_api_token=settings.cloudflare_api_token,
                      kv_namespace_id=settings.cloudflare_kv_namespace_id,
                      d1_database_id=settings.cloudflare_d1_database_id)


def new_http_client() -> httpx.Client:
    return httpx.Client(timeout=HTTP_TIMEOUT, follow_redirects=False,
                        headers={"User-Agent": "tollgate-scheduler"})


def payments_config(settings: Settings, billing: Billing) -> PaymentsConfig:
    sandbox = settings.payments_provider == "sandbox"
    return PaymentsConfig(provider=provider_for(billing, settings),
                          sandbox_webhook_url=sandbox_webhook_url(settings) if sandbox else None,
                          sandbox_webhook_secret=settings.sandbox_webhook_secret if sandbox else None,
                          sandbox_chaos=settings.sandbox_chaos)


def jobs_config(settings: Settings, http: httpx.Client | None, billing: Billing | None = None) -> JobsConfig:
    return JobsConfig(http=http, smtp=smtp_config(settings), dispatch_url=settings.dispatch_url,
                      sync=sync_config(settings), sync_interval_s=settings.sync_interval_s,
                      reconcile_cron=settings.reconcile_cron,
                      payments=payments_config(settings, billing) if billing is not None else None)


def registered_jobs(settings: Settings, billing: Billing, http: httpx.Client | None = None) -> list[Job]:
    """The jobs as configured; a bad TOLLGATE_RECONCILE_CRON is a ValueError naming the variable."""
    try:
        return build_jobs(billing, jobs_config(settings, http, billing))
    except Invalid as exc:
        raise ValueError(f"TOLLGATE_RECONCILE_CRON: {exc.message}") from None


@dataclass
class RunningScheduler:
    """A started LiveScheduler and the HTTP client its jobs share; `stop()` ends both."""

    live: LiveScheduler
    http: httpx.Client
    unsubscribe: Callable[[], None] = lambda: None

    def stop(self) -> None:
        try:
            self.unsubscribe()
            self.live.stop()
        finally:
            self.http.close()


def start_scheduler(settings: Settings, billing: Billing, *,
                    on_event: Callable[[SchedulerEvent], None] | None = None,
                    holder: str | None = None) -> RunningScheduler:
    http = new_http_client()
    try:
        live = LiveScheduler(billing, registered_jobs(settings, billing, http), lease_s=settings.scheduler_lease_s,
                             on_event=on_event, holder=holder)
        live.start()
    except BaseException:
        http.close()
        raise
    # Every change committed in this process (API, pages, jobs) wakes the edge sync at once; changes made by
    # other processes reach the edge at the sync's next tick (docs/edge-sync.md, "Staleness").
    unsubscribe = notify.subscribe(lambda _account_id: live.wake(EDGE_SYNC_JOB))
    return RunningScheduler(live, http, unsubscribe)


@contextlib.asynccontextmanager
async def scheduler_lifespan():
    """The app's lifespan task: the scheduler runs while the app serves (not at all when disabled)."""
    settings = get_settings()
    if not settings.scheduler_enabled:
        log.info("scheduler: off in this process (TOLLGATE_SCHEDULER_ENABLED=false)")
        yield
        return
    running = await asyncio.to_thread(start_scheduler, settings, get_billing())
    log.info("scheduler: started as %s", running.live.holder)
    try:
        yield
    finally:
        await asyncio.to_thread(running.stop)
