"""/api/v1/billing/*: the catalog, checkouts, payments, the saved method, auto top-up and plan changes.
Thin: each handler parses, calls one billing_core.payments service with `now`, and shapes the answer."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Header, Request
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from billing_core.payments import auto_top_up, checkout, plan_change, views
from billing_core.payments.rules import (PACKS_MAX, PACKS_MIN, TOP_UP_MAX_MICROS, TOP_UP_MIN_MICROS, AutoTopUp)
from billing_core.services.context import Billing

from ..payments import provider_for
from ..settings import Settings
from .deps import billing_of, utcnow
from .errors import ApiError
from .projects import owner, small_body

router = APIRouter(prefix="/api/v1", tags=["billing"], dependencies=[Depends(small_body)])


def settings_of(request: Request) -> Settings:
    return request.app.state.settings


def provider_of(request: Request):
    return provider_for(billing_of(request), settings_of(request))


class CheckoutBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    item: Literal["credit", "pool_pack", "plan", "invoice"]
    amount_micros: StrictInt | None = Field(None, description="credit: whole cents from 5000000 to 1000000000")
    quantity: StrictInt | None = Field(None, description="pool_pack: 1 to 20")
    plan: Literal["starter", "pro"] | None = None
    invoice_id: StrictStr | None = Field(None, max_length=40)
    return_url: StrictStr | None = Field(None, max_length=2000,
                                         description="where the customer comes back to; on this server only")


class AutoTopUpBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: StrictBool
    threshold_micros: StrictInt = Field(ge=0, le=TOP_UP_MAX_MICROS)
    amount_micros: StrictInt
    monthly_limit_micros: StrictInt = Field(ge=0, le=100 * TOP_UP_MAX_MICROS)


class PlanBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    plan: StrictStr = Field(max_length=32)


def _return_url(settings: Settings, asked: str | None, checkout_hint: str) -> str:
    """The customer's way back: a path or an address on this server, never elsewhere (no open redirect)."""
    base = settings.public_url.rstrip("/")
    if asked is None:
        return f"{base}/billing?{checkout_hint}"
    parts = urlsplit(asked)
    if asked.startswith("/") and not asked.startswith("//"):
        return base + asked
    if f"{parts.scheme}://{parts.netloc}" == base:
        return asked
    raise ApiError(422, "invalid_return_url", f"return_url must be a path or an address on {base}.")


@router.get("/billing/catalog", summary="What can be bought: plans, credit top-up bounds, the pool pack")
def catalog(request: Request) -> dict:
    cat = billing_of(request).catalog
    return {"currency": "usd",
            "plans": [{"name": plan.name, "price_micros": plan.price_micros, "included_ms": plan.included_ms,
                       "max_projects": plan.max_projects, "concurrent_runs": plan.concurrent_runs,
                       "overage": plan.overage, "spend_cap_micros": plan.spend_cap_micros}
                      for plan in cat.plans.values()],
            "credit": {"min_micros": TOP_UP_MIN_MICROS, "max_micros": TOP_UP_MAX_MICROS, "step_micros": 10_000},
            "pool_pack": {"size_ms": cat.pool_pack.size_ms, "price_micros": cat.pool_pack.price_micros,
                          "valid_days": cat.pool_pack.valid_days, "min_quantity": PACKS_MIN,
                          "max_quantity": PACKS_MAX},
            "compute_rate_micros_per_second": cat.compute_rate_micros_per_second}


@router.post("/billing/checkout", status_code=201, summary="Start a hosted checkout; pay at its `url`")
def start_checkout(request: Request, body: CheckoutBody, account_id: str = Depends(owner),
                   idempotency_key: str | None = Header(None, max_length=200)) -> dict:
    settings = settings_of(request)
    success = _return_url(settings, body.return_url, "checkout={CHECKOUT_ID}")
    cancel = _return_url(settings, None, "checkout={CHECKOUT_ID}&cancelled=1")
    started = checkout.start_checkout(billing_of(request), provider_of(request), account_id,
                                      body.model_dump(exclude={"return_url"}), success_url=success,
                                      cancel_url=cancel, now=utcnow(), idempotency_key=idempotency_key)
    return started.public()


@router.get("/billing/checkouts/{checkout_id}", summary="A checkout's status: open, complete, failed or expired")
def read_checkout(request: Request, checkout_id: str, account_id: str = Depends(owner)) -> dict:
    found = checkout.get_checkout(billing_of(request), account_id, checkout_id)
    return {**found.public(), "payment": views.get_payment(billing_of(request), account_id, found.payment_id)}


@router.get("/billing/payments", summary="The account's payments, newest first, with their receipts")
def list_payments(request: Request, account_id: str = Depends(owner)) -> dict:
    return {"data": views.list_payments(billing_of(request), account_id)}


@router.get("/billing/payments/{payment_id}", summary="One payment with its refunds")
def read_payment(request: Request, payment_id: str, account_id: str = Depends(owner)) -> dict:
    return views.get_payment(billing_of(request), account_id, payment_id)


@router.get("/billing/payment-method", summary="The saved payment method (brand and last 4), or null")
def read_payment_method(request: Request, account_id: str = Depends(owner)) -> dict:
    return {"payment_method": views.payment_method(billing_of(request), account_id),
            "past_due": views.past_due(billing_of(request), account_id)}


@router.get("/billing/auto-top-up", summary="Auto top-up settings")
def read_auto_top_up(request: Request, account_id: str = Depends(owner)) -> dict:
    return auto_top_up.get_auto_top_up(billing_of(request), account_id)


@router.put("/billing/auto-top-up", summary="Turn auto top-up on or off and set its threshold, amount and limit")
def write_auto_top_up(request: Request, body: AutoTopUpBody, account_id: str = Depends(owner)) -> dict:
    billing: Billing = billing_of(request)
    return auto_top_up.put_auto_top_up(billing, account_id, AutoTopUp(**body.model_dump()),
                                       provider_name=provider_of(request).name, now=utcnow())


@router.post("/billing/plan", summary="Change plan: an upgrade at once (charged to the saved card; without one, "
                                      "402 payment_method_required with a checkout to pay it), a downgrade at period end")
def change_plan(request: Request, body: PlanBody, account_id: str = Depends(owner)) -> dict:
    try:
        done = plan_change.change_plan(billing_of(request), provider_of(request), account_id, body.plan,
                                       now=utcnow())
    except plan_change.PaymentRequired as refused:
        settings = settings_of(request)
        started = checkout.start_checkout(billing_of(request), provider_of(request), account_id,
                                          refused.extra["checkout"],
                                          success_url=_return_url(settings, None, "checkout={CHECKOUT_ID}"),
                                          cancel_url=_return_url(settings, None, "checkout={CHECKOUT_ID}&cancelled=1"),
                                          now=utcnow())
        refused.extra = {**refused.extra, "checkout": started.public()}
        raise
    return {"plan": done.plan, "pending_plan": done.pending_plan, "effective_at": done.effective_at,
            "charged_micros": done.charged_micros, "payment_id": done.payment_id,
            "payment_status": done.payment_status}
