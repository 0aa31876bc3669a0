"""The demo account's payments, made by the real services with the sandbox provider at their moments in the
demo's history: a $25 credit checkout paid with the 4242 test card (which saves the card), a pool pack bought
the same way, a partial refund of the credit, and the closed period's invoice paid from the saved card. Each
payment's sandbox event is verified and applied as /webhooks/sandbox would; the sandbox's own delivery of it,
still queued, is a duplicate when the app's job sends it."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Callable

from rich.progress import Progress

from billing_core.payments import views
from billing_core.payments.checkout import start_checkout
from billing_core.payments.collect import collect_invoices
from billing_core.payments.refunds import refund_payment
from billing_core.payments.sandbox import CARD_SUCCEEDS, SandboxProvider
from billing_core.services.context import Billing

from ..local_secrets import local_sandbox_webhook_secret
from ..payments import provider_for
from ..settings import Settings, get_settings
from .payments_admin import deliver_sandbox_event

CREDIT_MICROS = 25_000_000
REFUND_MICROS = 10_000_000
PAY_AFTER = timedelta(seconds=50)  # on the hosted page, typing the card
DELIVERED_AFTER = timedelta(seconds=2)  # the sandbox's event reaching /webhooks/sandbox
Timeline = list[tuple[datetime, Callable[[], object]]]


def sandbox_provider(billing: Billing, settings: Settings) -> SandboxProvider:
    """The server's sandbox; the demo's payments are sandbox payments even when the server uses another provider."""
    provider = provider_for(billing, settings)
    if isinstance(provider, SandboxProvider):
        return provider
    secret = settings.sandbox_webhook_secret or local_sandbox_webhook_secret(settings.data_dir)
    return SandboxProvider(billing, webhook_secret=secret, public_url=settings.public_url)


def pay_invoices(billing: Billing, provider: SandboxProvider, account_id: str, *, at: datetime,
                 settings: Settings) -> None:
    """The account's unpaid invoices paid from the saved card. On a sandbox server that is the payments job's
    own collection (every account's due invoices, as the job would at its first run); with another provider
    that job must not see the sandbox, so the demo pays its own invoices by checkout ("Pay now")."""
    if settings.payments_provider == "sandbox":
        collect_invoices(billing, provider, at)
        return
    for invoice in views.list_invoices(billing, account_id):
        if invoice["status"] in ("open", "past_due") and invoice["amount_due_micros"] > 0:
            buy_by_checkout(billing, provider, account_id, {"item": "invoice", "invoice_id": invoice["id"]}, at=at,
                            public_url=settings.public_url)


def buy_by_checkout(billing: Billing, provider: SandboxProvider, account_id: str, body: dict, *, at: datetime,
                    public_url: str) -> str:
    """A hosted checkout for `body`, paid with 4242 on the sandbox's page, and the sandbox's event about it
    verified and applied as /webhooks/sandbox would (the card is saved then); the payment's id."""
    back = f"{public_url.rstrip('/')}/billing?checkout={{CHECKOUT_ID}}"
    started = start_checkout(billing, provider, account_id, body, success_url=back, cancel_url=back + "&cancelled=1",
                             now=at)
    paid = provider.pay(started.id, CARD_SUCCEEDS, at + PAY_AFTER)
    if paid.status != "succeeded":
        raise ValueError(f"the sandbox did not take the demo's payment: {paid.message}")
    deliver_sandbox_event(billing, provider, contains=f'"payment_id":"{paid.charge_id}"',
                          event_type="payment.succeeded", now=at + PAY_AFTER + DELIVERED_AFTER)
    return started.payment_id


def with_payments(timeline: Timeline, billing: Billing, account_id: str, *, start: datetime, now: datetime,
                  progress: Progress | None = None) -> Timeline:
    """The demo's timeline with the payments added, all in time order. The invoice is collected as the payments
    job would on the app's first start (the history runs no payments job), just before `now`: the sandbox
    stamps an off-session charge with the wall clock, so a charge back in the history would look, to the
    reconciliation, like a payment the provider has no record of."""
    settings = get_settings()
    provider = sandbox_provider(billing, settings)
    made: dict[str, str] = {}
    task: list = []

    def step(action: Callable[[], object]) -> Callable[[], None]:
        def run() -> None:
            if progress is not None and not task:
                task.append(progress.add_task("Payments with the sandbox card", total=4))
            action()
            if progress is not None:
                progress.advance(task[0])
        return run

    def buy(key: str, body: dict, at: datetime) -> Callable[[], object]:
        return lambda: made.setdefault(key, buy_by_checkout(billing, provider, account_id, body, at=at,
                                                            public_url=settings.public_url))

    credit_at, pack_at = start + timedelta(days=2, hours=3, minutes=12), start + timedelta(days=36, hours=5)
    refund_at, collect_at = start + timedelta(days=40, hours=2, minutes=40), now - timedelta(minutes=2)
    events = [
        (credit_at, step(buy("credit", {"item": "credit", "amount_micros": CREDIT_MICROS}, credit_at))),
        (pack_at, step(buy("pack", {"item": "pool_pack", "quantity": 1}, pack_at))),
        (refund_at, step(lambda: refund_payment(billing, provider, made["credit"], amount_micros=REFUND_MICROS,
                                                now=refund_at, reason="requested_by_customer"))),
        (collect_at, step(lambda: pay_invoices(billing, provider, account_id, at=collect_at, settings=settings))),
    ]
    return sorted(timeline + events, key=lambda event: event[0])
