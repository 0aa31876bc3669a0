"""Operator commands on payments (`tollgate admin refund|payments|dispute`), on the configured database with
the configured provider: a refund is asked of the provider and applied at once through the exactly-once path;
a dispute is simulated on the sandbox only (a real provider's dispute reaches Tollgate as its webhook)."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from decimal import Decimal
from typing import Optional

import typer
from sqlalchemy import select

from billing_core.db.engine import read_session
from billing_core.db.payments import SandboxDelivery
from billing_core.errors import NotFound
from billing_core.money import MICROS_PER_USD, format_usd
from billing_core.payments import provider as p
from billing_core.payments import refunds, views
from billing_core.payments.apply import APPLIED, Applied, apply_event
from billing_core.services.context import Billing
from billing_core.services.notifications import webhook_headers
from billing_core.services.views import get_account, rfc3339

from ..payments import provider_for
from ..settings import get_settings
from .common import fail, one_line_errors, open_billing, parse_now
from .customer import show

DOLLARS = re.compile(r"\$?([0-9]{1,9})(?:\.([0-9]{1,2}))?")  # 12, 12.5, 12.50, $12.50: whole cents
OUTCOMES = ("opened", "won", "lost")


def dollars_to_micros(value: str, option: str = "--usd") -> int:
    """Dollars with at most two decimals (10, 12.50) as micros, read with Decimal (never float); > 0."""
    if not DOLLARS.fullmatch(value.strip()):
        raise ValueError(f"{option} must be dollars with at most 2 decimals, such as 10 or 12.50; got {value!r}")
    micros = int(Decimal(value.strip().lstrip("$")) * MICROS_PER_USD)
    if micros <= 0:
        raise ValueError(f"{option} must be more than 0, got {value!r}")
    return micros


def payment_line(payment: dict) -> str:
    """One line of a payment's state: id, what it bought, status (and dispute), what of it was refunded."""
    dispute = f", dispute {payment['dispute']}" if payment.get("dispute") else ""
    return (f"{payment['id']}  {payment['description']}  {payment['status']}{dispute}  "
            f"{format_usd(payment['refunded_micros'])} of {format_usd(payment['amount_micros'])} refunded")


def deliver_sandbox_event(billing: Billing, provider, *, contains: str, event_type: str, now: datetime) -> Applied:
    """Apply now the sandbox's newest pending delivery of `event_type` whose body holds `contains`, on the
    real path: signed with the sandbox's secret, verified and parsed by its parse_webhook, then apply_event.
    The delivery stays queued; when the sandbox's job sends it, it is the same webhook-id: a duplicate."""
    with read_session(billing.engine) as session:
        rows = session.execute(select(SandboxDelivery).where(SandboxDelivery.payload.contains(contains))
                               .order_by(SandboxDelivery.created_at.desc(), SandboxDelivery.id.desc())).scalars()
        row = next((r for r in rows if json.loads(r.payload).get("type") == event_type), None)
    if row is None:
        raise ValueError(f"the sandbox queued no {event_type} event holding {contains}")
    event = provider.parse_webhook(webhook_headers(row.id, provider.secret, row.payload, now), row.payload.encode(),
                                   now)
    return apply_event(billing, event, now=now)


def _note(applied: Applied) -> str:
    return "" if applied.outcome == APPLIED else f" (nothing changed: {applied.detail or applied.outcome})"


@one_line_errors
def refund(payment_id: str,
           usd: Optional[str] = typer.Option(None, "--usd", help="Dollars with cents, e.g. 10 or 12.50 "
                                                                  "(default: all that is not refunded yet).")
           ) -> None:
    """Refund a payment with its provider (in full, or --usd of it) and take back what it paid for."""
    amount = None if usd is None else dollars_to_micros(usd)
    billing, now = open_billing(), parse_now(None)
    payment = views.get_payment(billing, None, payment_id)
    left = payment["amount_micros"] - payment["refunded_micros"]
    if payment["granted_at"] is not None and left <= 0:
        fail(f"payment {payment_id} is refunded in full already: nothing is left to refund")
    if amount is not None and payment["granted_at"] is not None and amount > left:
        fail(f"--usd {format_usd(amount)} is more than the {format_usd(left)} left to refund of payment "
             f"{payment_id} ({format_usd(payment['amount_micros'])}, {format_usd(payment['refunded_micros'])} "
             "refunded)")
    provider = provider_for(billing, get_settings())
    try:
        applied = refunds.refund_payment(billing, provider, payment_id, amount_micros=amount, now=now,
                                         reason="requested_by_operator")
    except p.ProviderError as exc:
        fail(f"{provider.name} refused the refund of {payment_id}: {exc}")
    after = views.get_payment(billing, None, payment_id)
    typer.echo(f"refunded {format_usd(after['refunded_micros'] - payment['refunded_micros'])} of {payment_id} "
               f"({payment['email']}){_note(applied)}\n{payment_line(after)}")


def _json_value(value: object) -> object:
    return rfc3339(value.astimezone(timezone.utc)) if isinstance(value, datetime) else value


@one_line_errors
def payments(account_id: str, as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """An account's payments, newest first: when, what, amount, status and what was refunded."""
    billing = open_billing()
    try:
        account = get_account(billing, account_id)
    except NotFound:
        fail(f"No account with id {account_id}.")
    found = views.list_payments(billing, account_id)
    if as_json:
        typer.echo(json.dumps({"account_id": account_id,
                               "data": [{k: _json_value(v) for k, v in row.items()} for row in found]}))
        return
    if not found:
        typer.echo(f"No payments for {account.email} ({account_id}).")
        return
    show(f"Payments of {account.email} ({account_id})", "Payment|When|What|Status|Amount|Refunded", [
        [row["id"], row["created_at"].astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M"), row["description"],
         row["status"] + (f" (dispute {row['dispute']})" if row["dispute"] else ""),
         format_usd(row["amount_micros"]), format_usd(row["refunded_micros"])] for row in found], right=2)


@one_line_errors
def dispute(payment_id: str,
            outcome: str = typer.Option(..., "--outcome", help="opened, won or lost.", show_default=False)) -> None:
    """Sandbox only: the card holder's bank opens a dispute of a payment, or it is won or lost.

    With Stripe or Dodo a dispute is not made here: the card holder's bank opens it, and the provider's
    webhook (/webhooks/stripe, /webhooks/dodo) tells Tollgate, which applies it the same way."""
    if outcome not in OUTCOMES:
        fail(f"--outcome must be opened, won or lost, got {outcome!r}")
    billing, now = open_billing(), parse_now(None)
    provider = provider_for(billing, get_settings())
    if provider.name != "sandbox":
        fail(f"disputes are simulated on the sandbox only; with {provider.name} the card holder's bank opens "
             f"them and {provider.name}'s webhook (/webhooks/{provider.name}) brings them to Tollgate")
    payment = views.get_payment(billing, None, payment_id)
    if payment["provider"] != "sandbox" or not payment["provider_payment_id"]:
        fail(f"payment {payment_id} is {payment['status']} with {payment['provider']}: only a paid sandbox "
             "payment can be disputed")
    try:
        dispute_id = provider.dispute(payment["provider_payment_id"], outcome, now)
    except p.ProviderError as exc:
        fail(str(exc))
    applied = deliver_sandbox_event(billing, provider, contains=f'"dispute_id":"{dispute_id}"',
                                    event_type=f"dispute.{outcome}", now=now)
    after = views.get_payment(billing, None, payment_id)
    typer.echo(f"dispute {dispute_id} {outcome} on {payment_id} ({after['email']}){_note(applied)}\n"
               f"{payment_line(after)}")
    if outcome == "opened":
        typer.echo(f"account {after['account_id']} is suspended until an operator resumes it: "
                   f"tollgate admin resume {after['account_id']}")


def register(admin: typer.Typer) -> None:
    for command in (refund, payments, dispute):
        admin.command(command.__name__)(command)
