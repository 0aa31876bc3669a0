"""POST /webhooks/{provider}: a provider's event, verified on the raw body before anything is parsed, then
applied once (billing_core.payments.apply). Bad or stale signature: 400, nothing recorded. Duplicate,
ignored or unmatched: 200. A refund for a payment not matched yet: 409, so the provider sends it again."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request

from billing_core.payments.apply import apply_event
from billing_core.payments.provider import WebhookRejected

from .billing import provider_of
from .deps import billing_of, utcnow
from .errors import ApiError

log = logging.getLogger("tollgate.webhooks")
router = APIRouter(tags=["webhooks"])
MAX_WEBHOOK_BYTES = 256 * 1024


@router.post("/webhooks/{provider_name}", summary="A payment provider's signed event (the signature is the auth)")
async def receive(request: Request, provider_name: str) -> dict:
    provider = provider_of(request)
    if provider_name != provider.name:
        raise ApiError(404, "not_found", f"This server takes payments with {provider.name}, not {provider_name}.")
    body = await request.body()
    if len(body) > MAX_WEBHOOK_BYTES:
        raise ApiError(413, "payload_too_large", f"A webhook body may be at most {MAX_WEBHOOK_BYTES} bytes.")
    now = utcnow()
    try:
        event = provider.parse_webhook(request.headers, body, now)
    except WebhookRejected as exc:
        log.warning("webhook from %s refused: %s", provider.name, exc)
        raise ApiError(400, "invalid_signature", f"Webhook refused: {exc}.") from None
    # The ledger write blocks on the database: off the event loop, as the other handlers run.
    from starlette.concurrency import run_in_threadpool

    applied = await run_in_threadpool(apply_event, billing_of(request), event, now=now)
    return {"received": True, "outcome": applied.outcome}
