"""The words of the Billing page's payment parts: amounts typed by a person read as micros (exactly, no float),
and the services' plain results (payments, checkouts, plan quotes, auto top-up) turned into display text.

Plain functions over the services' dicts (money rules, document numbers, format.py): no Reflex, no I/O.
"""

from __future__ import annotations

import re
from datetime import datetime

from billing_core.money import usd_to_micros
from billing_core.payments.documents import document_number
from billing_core.payments.rules import TOP_UP_MAX_MICROS, TOP_UP_MIN_MICROS

from .format import duration, plural, short_date, timestamp, usd, usd_cents

CREDIT_PRESETS = ("10", "25", "50", "100")  # dollars
AUTO_LIMIT_MAX_MICROS = 100 * TOP_UP_MAX_MICROS  # the API's bound on a monthly limit
_DOLLARS = re.compile(r"(?:\d{1,9}(?:\.\d{0,2})?|\.\d{1,2})")
_TOO_PRECISE = re.compile(r"\d*\.\d{3,}")
PAYMENT_STATUS = {"pending": ("Pending", "amber"), "succeeded": ("Succeeded", "grass"), "failed": ("Failed", "red"),
                  "refunded": ("Refunded", "gray"), "partially_refunded": ("Partially refunded", "amber"),
                  "disputed": ("Disputed", "red")}
INVOICE_STATUS = {"open": ("Open", "blue"), "paid": ("Paid", "grass"), "past_due": ("Past due", "red"),
                  "void": ("Void", "gray")}


# -- amounts a person types ------------------------------------------------------------------------------
def dollars_to_micros(text: str) -> int:
    """ "25", "$1,000", "12.5", "12.50" as micros; ValueError with a sentence to show otherwise (whole cents
    only: a provider charges cents)."""
    typed = (text or "").strip().replace(",", "").removeprefix("$").strip()
    if _TOO_PRECISE.fullmatch(typed):
        raise ValueError("Use whole cents, such as 12.50.")
    if not _DOLLARS.fullmatch(typed):
        raise ValueError("Give an amount in dollars, such as 25 or 12.50.")
    return usd_to_micros(typed)


def amount_problem(text: str, *, minimum: int, maximum: int) -> str:
    """What is wrong with a typed amount that must lie in [minimum, maximum] micros; "" when it is fine."""
    try:
        micros = dollars_to_micros(text)
    except ValueError as exc:
        return str(exc)
    if not minimum <= micros <= maximum:
        return f"Choose an amount from {usd_cents(minimum)} to {usd_cents(maximum)}."
    return ""


def credit_problem(text: str) -> str:
    return amount_problem(text, minimum=TOP_UP_MIN_MICROS, maximum=TOP_UP_MAX_MICROS)


def auto_top_up_problem(threshold: str, amount: str, limit: str) -> str:
    """What is wrong with auto top-up's typed amounts (rules.check_auto_top_up's bounds), naming the field."""
    problems = (("Threshold", amount_problem(threshold, minimum=0, maximum=TOP_UP_MAX_MICROS)),
                ("Top-up amount", credit_problem(amount)),
                ("Monthly limit", amount_problem(limit, minimum=1, maximum=AUTO_LIMIT_MAX_MICROS)))
    for label, problem in problems:
        if problem:
            return f"{label}: {problem}"
    if dollars_to_micros(limit) < dollars_to_micros(amount):
        return "Monthly limit: it must allow at least one top-up of the amount."
    return ""


def dollars_text(micros: int) -> str:
    """An amount as a person would type it again: 25_000_000 -> "25.00"."""
    return usd_cents(micros).removeprefix("$").replace(",", "")


# -- payments and the saved method -----------------------------------------------------------------------
def _plan_name(description: str) -> str:
    return description.rsplit(" ", 1)[-1].capitalize()


def payment_description(p: dict) -> str:
    """What the payment bought, and how it was started when that was not a checkout."""
    item, text = p["item"], p["description"]
    if item == "plan":
        return f"Upgrade to {_plan_name(text)}" + (" (prorated)" if p["source"] == "upgrade" else "")
    if item == "invoice":
        return "Invoice" + (" (collected automatically)" if p["source"] == "invoice" else "")
    text = text[:1].upper() + text[1:]
    return f"Auto top-up: {text}" if p["source"] == "auto_top_up" else text


def payment_rows(payments: list[dict]) -> list[dict[str, str]]:
    rows = []
    for p in payments:
        label, color = PAYMENT_STATUS.get(p["status"], (p["status"].replace("_", " ").capitalize(), "gray"))
        at = p["created_at"]
        refunded = p.get("refunded_micros") or 0
        rows.append({"id": p["id"], "date": short_date(at), "day": f"{at:%b} {at.day}", "time": f"{at:%H:%M}",
                     "exact": timestamp(at),
                     "description": payment_description(p), "amount": usd(p["amount_micros"]),
                     "amount_micros": str(p["amount_micros"]), "status": p["status"], "status_text": label,
                     "status_color": color,
                     "failure": (p.get("failure_message") or "") if p["status"] == "failed" else "",
                     "refunded": f"{usd(refunded)} refunded" if refunded else "",
                     "receipt_url": p.get("receipt_url") or "",
                     "receipt_number": document_number("receipt", p["receipt_number"]) if p.get("receipt_number")
                     else ""})
    return rows


def method_text(method: dict | None) -> str:
    if not method:
        return ""
    return f"{(method.get('brand') or 'Card').capitalize()} •••• {method.get('last4') or '????'}"


def pack_texts(pack: dict, quantity: int, total_micros: int) -> dict[str, str]:
    """The pool pack card: one pack, the compute `quantity` packs give, and their price (rules.pool_purchase)."""
    if not pack:
        return {}
    return {"each": f"{duration(pack['size_ms'])} of compute for {usd_cents(pack['price_micros'])}, valid "
                    f"{pack['valid_days']} days", "size": duration(pack["size_ms"] * quantity),
            "total": usd(total_micros), "button": f"Buy pool pack · {usd(total_micros)}"}


# -- the way back from a checkout ------------------------------------------------------------------------
def _received(payment: dict) -> str:
    item, description = payment["item"], payment["description"]
    if item == "credit":
        return f"Payment received: {usd(payment['amount_micros'])} credit added"
    if item == "pool_pack":
        return f"Payment received: {description} added"
    if item == "plan":
        return f"Payment received: you are on {_plan_name(description)} now"
    return "Payment received: the invoice is paid"


def checkout_banner(checkout: dict | None, payment: dict | None, *, cancelled: bool) -> dict[str, str]:
    """The banner for a customer back from a checkout: kind (pending | received | declined | expired |
    cancelled), a title and a line; {} without a checkout."""
    if not checkout or not payment:
        return {}
    status, paid = checkout["status"], payment["status"]
    what = payment_description(payment)
    if status == "complete" or payment.get("receipt_number"):
        return {"kind": "received", "title": _received(payment), "color": "grass",
                "text": f"You paid {usd(payment['amount_micros'])}; the receipt is in Payments below."}
    if status == "expired":  # before "failed": an expired checkout's payment is marked failed too
        return {"kind": "expired", "title": "The checkout expired", "color": "gray",
                "text": "It was not paid in time, so nothing was charged."}
    if status == "failed" or paid == "failed":
        reason = payment.get("failure_message") or "The payment did not go through."
        return {"kind": "declined", "title": "The card was declined", "color": "red",
                "text": f"{reason} Nothing was charged; you can try again with another card."}
    if cancelled:
        return {"kind": "cancelled", "title": "Checkout cancelled, nothing was charged.", "color": "gray",
                "text": f"{what} was not bought. You can start again at any time."}
    return {"kind": "pending", "title": "Payment pending…", "color": "blue",
            "text": f"Waiting for the payment provider to confirm {usd(payment['amount_micros'])} for "
                    f"{what[:1].lower() + what[1:]}. This page updates by itself."}


# -- plans --------------------------------------------------------------------------------------------
def plan_rows(choices: list[dict]) -> list[dict[str, str]]:
    """One card's text per plan; `change` says which button it gets (upgrade | downgrade | current)."""
    rows = []
    for c in choices:
        ends = short_date(c["period_end"])
        if c["change"] == "current":
            note = "Your plan"
        elif c["pending"]:
            note = f"Starts on {ends}"
        elif c["change"] == "upgrade":
            note = f"{usd(c['due_now_micros'])} now, prorated" if c["due_now_micros"] else "Nothing to pay now"
        else:
            note = f"Takes effect on {ends}"
        rows.append({
            "name": c["name"], "title": c["name"].capitalize(),
            "price": "Free" if not c["price_micros"] else f"{usd_cents(c['price_micros'])} / month",
            "included": f"{duration(c['included_ms'])} of compute a period",
            "projects": "Unlimited projects" if c["max_projects"] is None else plural(c["max_projects"], "project"),
            "runs": plural(c["concurrent_runs"], "concurrent run"),
            "beyond": (f"Overage billed monthly, capped at {usd_cents(c['spend_cap_micros'])}"
                       if c["overage"] and c["spend_cap_micros"] else
                       "Overage billed monthly" if c["overage"] else "Beyond that: credit, then debt"),
            "change": "pending" if c["pending"] else c["change"], "note": note})
    return rows


def _days_left(quote: dict, now: datetime) -> str:
    seconds = (quote["period_end"] - now).total_seconds()
    return plural(max(1, round(seconds / 86400)), "day")


def quote_texts(quote: dict, method: str, now: datetime) -> dict[str, str]:
    """The confirmation of a plan change: title, what happens to money and when, and the confirm button."""
    if not quote:
        return {}
    new, old = quote["plan"].capitalize(), quote["current_plan"].capitalize()
    ends, price = short_date(quote["period_end"]), usd_cents(quote["price_micros"])
    if quote["change"] == "current":
        pending = (quote["pending_plan"] or "").capitalize()
        return {"change": "current", "title": f"Keep {new}?", "amount": "",
                "text": f"This cancels the change to {pending} planned for {ends}; you stay on {new} at {price} a "
                        "month.", "payer": "Nothing is charged now.", "confirm": f"Keep {new}"}
    if quote["change"] == "downgrade":
        return {"change": "downgrade", "title": f"Downgrade to {new}?", "amount": "",
                "text": f"The change takes effect at the end of this period, on {ends} (effective date). Until "
                        f"then you keep {old}'s allowance and limits; from then on the plan costs {price} a month.",
                "payer": "Nothing is charged now.", "confirm": f"Downgrade on {ends}"}
    amount = quote["amount_micros"]
    if not amount:
        return {"change": "upgrade", "title": f"Upgrade to {new}", "amount": usd(0),
                "text": f"Nothing is owed for the rest of this period; {new} then costs {price} a month.",
                "payer": "", "confirm": f"Upgrade to {new}"}
    payer = (f"Charged now to {method}." if method else
             "No card is saved yet: you pay at checkout, and the card is kept for later payments.")
    return {"change": "upgrade", "title": f"Upgrade to {new}", "amount": usd(amount),
            "text": f"The difference between {old} and {new} for the {_days_left(quote, now)} left of this period "
                    f"(until {ends}); then {price} a month. The new allowance applies at once.",
            "payer": payer, "confirm": f"Pay {usd(amount)} and upgrade" if method else "Continue to checkout"}


def plan_changed_text(done: dict, plan: str, method: str) -> str:
    """What a plan change did (plan_change.PlanChange as a dict): scheduled, charged, or being confirmed."""
    if done["pending_plan"]:
        return f"Your plan changes to {done['pending_plan'].capitalize()} on {short_date(done['effective_at'])}."
    if done["payment_status"] == "pending":
        return (f"{usd(done['charged_micros'])} is being confirmed; the upgrade to {plan.capitalize()} applies when "
                "it succeeds.")
    paid = f": {usd(done['charged_micros'])} charged to {method}" if done["charged_micros"] else ""
    return f"You are on {done['plan'].capitalize()} now{paid}."


# -- auto top-up -----------------------------------------------------------------------------------------
def auto_top_up_status(auto: dict) -> dict[str, str]:
    """The card's state line, and a warning while a charge is in flight or after failures."""
    if not auto:
        return {}
    state = (f"On: {usd_cents(auto['amount_micros'])} when credit falls below {usd_cents(auto['threshold_micros'])},"
             f" at most {usd_cents(auto['monthly_limit_micros'])} a month." if auto["enabled"] else "Off.")
    failures = auto.get("consecutive_failures") or 0
    warning = ""
    if auto.get("in_flight"):
        warning = "A top-up is being charged now."
    elif failures:
        warning = (f"The last {plural(failures, 'charge')} failed. After 3 failures in a row auto top-up turns "
                   "itself off; check the saved card.")
    return {"state": state, "warning": warning, "failures": str(failures),
            "in_flight": "1" if auto.get("in_flight") else ""}
