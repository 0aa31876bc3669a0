"""The payment provider this server uses (TOLLGATE_PAYMENTS_PROVIDER), built once from Settings, and the
trigger that starts an auto top-up within moments of the usage that crossed its threshold."""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from datetime import datetime, timezone
from functools import lru_cache

from billing_core import notify
from billing_core.payments.provider import Provider
from billing_core.services.context import Billing

from .settings import Settings

log = logging.getLogger("portal.payments")

WEBHOOK_PATH = "/webhooks/{provider}"


def build_provider(billing: Billing, settings: Settings) -> Provider:
    """The configured provider; its keys were checked when the settings loaded."""
    if settings.payments_provider == "stripe":
        from billing_core.payments.stripe_adapter import StripeProvider

        return StripeProvider(settings.stripe_secret_key, settings.stripe_webhook_secret,
                              base_url=settings.stripe_api_base)
    if settings.payments_provider == "dodo":
        from billing_core.payments.dodo_adapter import DodoProvider

        return DodoProvider(settings.dodo_api_key, settings.dodo_webhook_secret, product_id=settings.dodo_product_id,
                            on_demand_product_id=settings.dodo_on_demand_product_id, base_url=settings.dodo_api_base)
    from billing_core.payments.sandbox import SandboxProvider

    return SandboxProvider(billing, webhook_secret=settings.sandbox_webhook_secret, public_url=settings.public_url)


_providers: dict[int, Provider] = {}
_guard = threading.RLock()  # start_top_up_trigger takes it, then provider_for again


def provider_for(billing: Billing, settings: Settings) -> Provider:
    """One provider per (billing, settings) pair in this process: SDK clients keep their connections."""
    key = id(billing), id(settings)
    with _guard:
        if key not in _providers:
            _providers[key] = build_provider(billing, settings)
        return _providers[key]


def sandbox_webhook_url(settings: Settings) -> str:
    """Where the sandbox delivers: this server's own address (the scheduler may run in another process, so
    the public URL, not a loopback guess)."""
    return settings.public_url.rstrip("/") + WEBHOOK_PATH.format(provider="sandbox")


class TopUpTrigger:
    """Hears every committed change of an account in this process (billing_core.notify) and, on a worker
    thread, asks auto top-up whether to charge: the usage batch that crosses the threshold starts the
    top-up at once, never waiting for the job's next run. The check is one primary-key read."""

    def __init__(self, billing: Billing, provider: Provider) -> None:
        self.billing, self.provider = billing, provider
        self.pending: "queue.SimpleQueue[str | None]" = queue.SimpleQueue()
        self.unsubscribe = notify.subscribe(self.pending.put)
        self.thread = threading.Thread(target=self._work, name="auto-top-up", daemon=True)
        self.thread.start()

    def _work(self) -> None:
        from billing_core.payments.auto_top_up import accounts_below_threshold, maybe_top_up

        while True:
            account_id = self.pending.get()
            if account_id is None:
                return
            batch = {account_id}
            while not self.pending.empty():  # many changes of one account make one check
                more = self.pending.get()
                if more is None:
                    return
                batch.add(more)
            try:
                due = set(accounts_below_threshold(self.billing, only=batch))
                for each in sorted(due):
                    maybe_top_up(self.billing, self.provider, each, now=datetime.now(timezone.utc))
            except Exception:
                log.exception("auto top-up check failed; the payments job will try again")

    def stop(self) -> None:
        self.unsubscribe()
        self.pending.put(None)
        self.thread.join(timeout=5)


@contextlib.asynccontextmanager
async def top_up_lifespan():
    """A lifespan task of both servers (Reflex's and the API alone): the auto top-up trigger runs while the
    app serves. Not at import: a process that only imports the app (a test, a CLI) starts no thread."""
    from .runtime import get_billing
    from .settings import get_settings

    trigger = TopUpTrigger(get_billing(), provider_for(get_billing(), get_settings()))
    try:
        yield
    finally:
        trigger.stop()
