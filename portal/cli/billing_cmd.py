"""`tollgate billing`: the account's money at a glance, read over HTTP with the key `tollgate login` stored
(Authorization: Bearer ak_live_...): balances, plan, saved card and past-due state, auto top-up, last payments."""

from __future__ import annotations

from typing import Optional

import typer

from billing_core.money import format_usd

from .customer import compute, show, when
from .customer_auth import URL_OPTION, one_line, signed_in

PAYMENTS_SHOWN = 5


def _plan(account: dict) -> str:
    pending = account.get("pending_plan")  # shown when the server says; GET /api/v1/account may not
    if pending and pending != account.get("plan"):
        start = (account.get("period") or {}).get("end")
        return f"{account.get('plan')} (changes to {pending} on {when(start)[:10]})"
    return str(account.get("plan"))


def _pools(pools: list) -> str:
    if not pools:
        return "none"
    left = sum(int(pool.get("remaining_ms") or 0) for pool in pools)
    return f"{compute(left)} left in {len(pools)} pool{'s' * (len(pools) != 1)}"


def _card(found: dict) -> str:
    method = found.get("payment_method")
    if not method:
        return "none saved (the first payment by checkout saves one)"
    return f"{method.get('brand') or 'card'} ending {method.get('last4')} ({method.get('provider')})"


def _auto_top_up(settings: dict) -> str:
    if not settings.get("enabled"):
        return "off"
    text = (f"on: {format_usd(int(settings['amount_micros']))} when credit falls below "
            f"{format_usd(int(settings['threshold_micros']))}, at most "
            f"{format_usd(int(settings['monthly_limit_micros']))} a month")
    failures = int(settings.get("consecutive_failures") or 0)
    if failures:
        text += f"; {failures} failed attempt{'s' * (failures != 1)} in a row"
    return text + ("; a top-up is under way" if settings.get("in_flight") else "")


@one_line
def billing(url: Optional[str] = URL_OPTION) -> None:
    """Credit, allowance and pools, the plan, the saved card, auto top-up and the last payments."""
    _, api = signed_in(url)
    account = api.get("/api/v1/account")
    method = api.get("/api/v1/billing/payment-method")
    top_up = api.get("/api/v1/billing/auto-top-up")
    found = (api.get("/api/v1/billing/payments").get("data") or [])[:PAYMENTS_SHOWN]
    allowance, period = account.get("allowance") or {}, account.get("period") or {}
    past_due = ("yes: an invoice is unpaid; pay it on the Billing page" if method.get("past_due") else "no")
    typer.echo(f"{account.get('email')} ({account.get('id')})  status {account.get('status')}\n"
               f"  plan         {_plan(account)}\n"
               f"  period       {when(period.get('start'))[:10]} to {when(period.get('end'))[:10]}\n"
               f"  credit       {format_usd(int((account.get('credit') or {}).get('balance_micros') or 0))}\n"
               f"  allowance    {compute(int(allowance.get('remaining_ms') or 0))} left of "
               f"{compute(int(allowance.get('included_ms') or 0))}\n"
               f"  pools        {_pools(account.get('pools') or [])}\n"
               f"  card         {_card(method)}\n"
               f"  past due     {past_due}\n"
               f"  auto top-up  {_auto_top_up(top_up)}")
    if not found:
        typer.echo("No payments yet.")
        return
    show(f"Last {len(found)} payment{'s' * (len(found) != 1)}", "When|What|Status|Amount|Refunded", [
        [when(row.get("created_at")), str(row.get("description") or row.get("item")), str(row.get("status")),
         format_usd(int(row.get("amount_micros") or 0)), format_usd(int(row.get("refunded_micros") or 0))]
        for row in found], right=2)
