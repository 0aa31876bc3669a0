"""The sandbox provider's hosted checkout page: GET /checkout/sandbox/{id} shows what is bought and a card
form; POST /checkout/sandbox/{id}/pay takes the card and sends the customer back to the portal. Served only
when the sandbox is the provider. Plain HTML with no script, as a provider's page would be."""

from __future__ import annotations

import html
from datetime import datetime

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from billing_core.db.engine import read_session
from billing_core.db.payments import Checkout, Payment
from billing_core.money import format_usd
from billing_core.payments.grants import describe
from billing_core.payments.sandbox import CARD_SUCCEEDS

from .billing import provider_of
from .deps import billing_of, utcnow
from .errors import ApiError

router = APIRouter(tags=["sandbox"], include_in_schema=False)

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;background:#f4f5f7;color:#1c2024;margin:0}
main{max-width:26rem;margin:3rem auto;background:#fff;border-radius:12px;padding:2rem;
box-shadow:0 1px 3px rgba(0,0,0,.12)}
h1{font-size:1.1rem;margin:0 0 .25rem}.amount{font-size:2rem;font-weight:600;margin:.5rem 0 1.5rem}
label{display:block;font-size:.85rem;margin-bottom:.35rem}
input{width:100%;box-sizing:border-box;font-size:1rem;padding:.6rem;border:1px solid #c4c8cc;border-radius:6px}
button{margin-top:1rem;width:100%;padding:.7rem;font-size:1rem;border:0;border-radius:6px;background:#3e63dd;
color:#fff;cursor:pointer}.error{background:#ffefef;color:#a1161d;padding:.6rem;border-radius:6px}
.note{background:#eef3ff;padding:.6rem;border-radius:6px}.cards{font-size:.8rem;color:#60646c}
.badge{display:inline-block;font-size:.7rem;background:#ffe7b3;color:#5c3d00;border-radius:4px;padding:.1rem .4rem;
margin-bottom:.5rem}
a{color:#3e63dd}
@media (prefers-color-scheme: dark){body{background:#111113;color:#edeef0}main{background:#18191b}
input{background:#212225;color:#edeef0;border-color:#43484e}.note{background:#1d2e62}.error{background:#500f1c;
color:#ffd1d9}.cards{color:#b0b4ba}.badge{background:#4a3000;color:#ffd98a}}
"""


def _page(title: str, content: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}"
                        "</title><meta name='viewport' content='width=device-width, initial-scale=1'>"
                        f"<style>{_STYLE}</style></head><body><main>{content}</main></body></html>",
                        status_code=status)


def _load(request: Request, checkout_id: str) -> tuple[Checkout, Payment]:
    if provider_of(request).name != "sandbox":
        raise ApiError(404, "not_found", "The sandbox provider is not in use on this server.")
    with read_session(billing_of(request).engine) as session:
        checkout = session.get(Checkout, checkout_id)
        if checkout is None or checkout.provider != "sandbox":
            raise ApiError(404, "not_found", f"No sandbox checkout {checkout_id}.")
        return checkout, session.get(Payment, checkout.payment_id)


def _form(checkout: Checkout, payment: Payment, *, error: str | None = None, now: datetime) -> str:
    what = html.escape(describe(payment))
    back = html.escape(checkout.return_url or "/billing", quote=True)
    if checkout.status == "complete" or checkout.expires_at <= now:
        state = "paid" if checkout.status == "complete" else "expired"
        return (f"<h1>Tollgate</h1><p class='note'>This checkout is {state}.</p>"
                f"<p><a href='{back}'>Back to Tollgate</a></p>")
    alert = f"<p class='error' role='alert'>{html.escape(error)}</p>" if error else ""
    return (f"<span class='badge'>SANDBOX</span><h1>Pay Tollgate</h1><p>{what}</p>"
            f"<p class='amount'>{format_usd(payment.amount_micros)}</p>{alert}"
            f"<form method='post' action='/checkout/sandbox/{html.escape(checkout.id)}/pay'>"
            "<label for='card_number'>Card number</label>"
            "<input id='card_number' name='card_number' inputmode='numeric' autocomplete='cc-number' "
            f"placeholder='{CARD_SUCCEEDS[:4]} {CARD_SUCCEEDS[4:8]} {CARD_SUCCEEDS[8:12]} {CARD_SUCCEEDS[12:]}' "
            "required maxlength='23'>"
            f"<button type='submit'>Pay {format_usd(payment.amount_micros)}</button></form>"
            "<p class='cards'>Test cards: 4242 4242 4242 4242 succeeds; 4000 0000 0000 0002 is declined; "
            "4000 0000 0000 3220 succeeds after a few seconds; 4000 0000 0000 0341 succeeds now and declines "
            f"later charges.</p><p><a href='{back.replace('checkout=', 'cancelled=1&amp;checkout=')}'>"
            "Cancel and go back</a></p>")


@router.get("/checkout/sandbox/{checkout_id}", response_class=HTMLResponse)
def hosted_page(request: Request, checkout_id: str) -> HTMLResponse:
    checkout, payment = _load(request, checkout_id)
    return _page("Pay Tollgate (sandbox)", _form(checkout, payment, now=utcnow()))


@router.post("/checkout/sandbox/{checkout_id}/pay", response_model=None)
def pay(request: Request, checkout_id: str, card_number: str = Form("", max_length=32)):
    checkout, payment = _load(request, checkout_id)
    outcome = provider_of(request).pay(checkout_id, card_number, utcnow())
    if outcome.status == "failed":
        return _page("Pay Tollgate (sandbox)", _form(checkout, payment, error=outcome.message, now=utcnow()),
                     status=402)
    return RedirectResponse(checkout.return_url or "/billing", status_code=303)


