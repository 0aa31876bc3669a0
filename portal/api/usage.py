"""POST /api/v1/usage, POST /api/v1/check, GET /api/v1/usage/summary."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import fields
from datetime import date

import orjson
from fastapi import APIRouter, Depends, Query, Request
from pydantic import TypeAdapter, ValidationError

from billing_core.errors import InvalidKey, NotFound
from billing_core.services.auth import KeyRef, key_ref
from billing_core.services.gate import check
from billing_core.services.summary import usage_summary
from billing_core.services.views import AccountView, get_account
from billing_core.services.usage import MAX_BATCH, EventResult, UsageEventIn, record_usage_grouped

from billing_core.services.context import Billing
from billing_core.validate import parse_full_date

from . import offload
from .deps import (Caller, PendingCaller, account_for, authenticate, billing_of, invalid_key, pending_caller,
                   utcnow)
from .errors import ApiError
from .openapi_docs import body_doc
from .responses import FastJSON
from .schemas import CheckBody, UsageBatchBody, UsageEventBody

router = APIRouter(prefix="/api/v1", tags=["usage"])
_EVENT_LIST = TypeAdapter(list[UsageEventBody])
USAGE_WRITE = "usage:write"  # what POST /usage and POST /check need of a key (the edge token has no scopes)
MAX_BODY_BYTES = 4 * 1024 * 1024


def parse_json(raw: bytes) -> object:
    if len(raw) > MAX_BODY_BYTES:
        raise ApiError(413, "payload_too_large", f"The body may be at most {MAX_BODY_BYTES} bytes.")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ApiError(400, "malformed_json", "The body is not valid JSON.") from None


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"])
    message = err["msg"].removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


def _result_json(r: EventResult) -> dict:
    c = r.charged
    out = {"id": r.id, "status": r.status,
           "charged": {"allowance_ms": c.allowance_ms, "pool_ms": c.pool_ms, "credit_micros": c.credit_micros,
                       "overage_micros": c.overage_micros, "debt_micros": c.debt_micros},
           "late": r.late}
    if r.error_code:
        out["error"] = {"code": r.error_code, "message": r.error_message}
    return out


_ACCOUNT_FIELDS = tuple(f.name for f in fields(AccountView))


def _account_json(view: AccountView) -> dict:
    """What view.to_dict() gives, without asdict's deep copy: it is encoded at once and then dropped."""
    return {name: getattr(view, name) for name in _ACCOUNT_FIELDS}


def _rejected(event_id: str, code: str, message: str) -> dict:
    return _result_json(EventResult(event_id, "rejected", error_code=code, error_message=message))


def _parse_events(body: object) -> list:
    if not isinstance(body, dict) or not isinstance(body.get("events"), list):
        raise ApiError(422, "invalid_request", 'The body must be {"events": [...]}.')
    events = body["events"]
    if not events:
        raise ApiError(422, "invalid_request", "Send at least one event.")
    if len(events) > MAX_BATCH:
        raise ApiError(413, "too_many_events", f"A batch holds at most {MAX_BATCH} events; split it.")
    return events


@router.post("/usage", summary="Report a batch of 1 to 1000 usage events", openapi_extra=body_doc(UsageBatchBody))
async def post_usage(request: Request):
    pending = pending_caller(request)  # called here, not as a dependency: FastAPI's resolution costs CPU
    raw = await request.body()
    # The rest in one thread call (each hand-off costs CPU); the key is checked there before anything is
    # recorded, inside the batch's own transaction when it can be (_target).
    return await offload.in_thread(_post_usage, billing_of(request), pending, raw)


def _target(billing: Billing, pending: PendingCaller, raw_events: list) -> Caller | KeyRef:
    """Who the batch is recorded for. A key whose events name no account is looked up inside the batch's
    own write transaction (one read transaction fewer per request, docs/benchmarks.md); when an event
    names one, the key's account must be known first to screen it."""
    if pending.is_edge or any(isinstance(e, dict) and e.get("account_id") is not None for e in raw_events):
        return pending.resolve(billing, USAGE_WRITE)
    return key_ref(pending.secret)


def _post_usage(billing: Billing, pending: PendingCaller, raw: bytes) -> FastJSON:
    try:
        raw_events = _parse_events(parse_json(raw))
    except ApiError:
        pending.resolve(billing, USAGE_WRITE)  # a bad key is answered (401) before a bad body, as on every endpoint
        raise
    caller = _target(billing, pending, raw_events)
    is_edge = isinstance(caller, Caller) and caller.is_edge
    own = caller if isinstance(caller, KeyRef) else caller.account_id
    results: list[dict | None] = [None] * len(raw_events)
    by_account: dict[str | KeyRef, list[tuple[int, UsageEventIn]]] = defaultdict(list)
    last_target: str | KeyRef | None = None
    items: list[tuple[int, UsageEventIn]] = []
    try:
        valid = _EVENT_LIST.validate_python(raw_events)  # the usual case, all valid: one call for the batch
    except ValidationError:
        valid = None  # then one by one, to say which were rejected and why
    for i, raw in enumerate(raw_events):
        if valid is not None:
            body = valid[i]
        else:
            raw_id = raw.get("id") if isinstance(raw, dict) else None
            event_id = raw_id if isinstance(raw_id, str) else ""
            try:
                body = UsageEventBody.model_validate(raw)
            except ValidationError as exc:
                results[i] = _rejected(event_id[:128], "invalid_event", _first_error(exc))
                continue
        if is_edge and not body.account_id:
            results[i] = _rejected(body.id, "invalid_event", "account_id: required with the edge token")
            continue
        if not is_edge and body.account_id not in (None, own):
            results[i] = _rejected(body.id, "invalid_event", "account_id: does not match the key's account")
            continue
        target = body.account_id or own
        if target is not last_target:  # a batch's events usually name one account: hashed once, not each time
            last_target, items = target, by_account[target]
        items.append((i, UsageEventIn(
            id=body.id, project_id=body.project_id, kind=body.kind, timestamp=body.timestamp,
            duration_ms=body.duration_ms or 0, model=body.model, provider=body.provider,
            input_tokens=body.input_tokens, output_tokens=body.output_tokens, key_source=body.key_source,
            agent=body.agent, run_id=body.run_id)))

    now = utcnow()
    accounts: dict[str, dict] = {}

    for target, items in by_account.items():
        try:
            batch = record_usage_grouped(billing, target, [e for _, e in items], now=now)
        except NotFound:
            for i, event in items:
                results[i] = _rejected(event.id, "unknown_account", "No such account.")
            continue
        except InvalidKey as exc:  # unknown, revoked or expired (which the message says)
            raise invalid_key(exc.message) from None
        for (i, _), result in zip(items, batch.results):
            results[i] = _result_json(result)
        accounts[batch.account.id] = _account_json(batch.account)
        if target is own:
            own = batch.account.id

    response: dict = {"results": results}
    if not is_edge:
        if isinstance(own, KeyRef):  # every event was rejected before the key was looked up
            own = pending.resolve(billing, USAGE_WRITE).account_id
        if own not in accounts:
            accounts[own] = _account_json(get_account(billing, own))
        response["account"] = accounts[own]
    else:
        response["account"] = next(iter(accounts.values())) if len(accounts) == 1 else None
        response["accounts"] = accounts
    # A Response, not a dict: FastAPI would first walk a dict through jsonable_encoder, which for a
    # 1000-event batch cost more than recording it. orjson writes the same JSON.
    return FastJSON(response)


@router.post("/check", summary="May this work start? Yes only when it can be covered in full",
             openapi_extra=body_doc(CheckBody))
async def post_check(request: Request):
    pending = pending_caller(request)
    raw = await request.body()
    return await offload.in_thread(_post_check, billing_of(request), pending, raw)


def _post_check(billing: Billing, pending: PendingCaller, raw: bytes) -> FastJSON:
    caller = pending.resolve(billing, USAGE_WRITE)
    try:
        body = CheckBody.model_validate(parse_json(raw))
    except ValidationError as exc:
        raise ApiError(422, "invalid_request", _first_error(exc) + ".") from None
    account_id = account_for(caller, body.account_id)
    answer = check(billing, account_id, kind=body.kind, now=utcnow(), duration_ms=body.duration_ms,
                   model=body.model, input_tokens=body.input_tokens, output_tokens=body.output_tokens)
    return FastJSON({"allowed": answer.result.allowed, "reason": answer.result.reason,
                     "account": _account_json(answer.account)})


@router.get("/usage/summary", summary="Usage totals per day, project, agent or model, from daily rollups")
def get_summary(request: Request, caller: Caller = Depends(authenticate),
                start: str = Query(..., alias="from", description="first day, YYYY-MM-DD (UTC)"),
                end: str = Query(..., alias="to", description="last day, inclusive"),
                group_by: str = Query("day", pattern="^(day|project|agent|model)$"),
                account_id: str | None = Query(None, max_length=40, description="edge token only")) -> dict:
    first, last = _full_date("from", start), _full_date("to", end)
    rows = usage_summary(billing_of(request), account_for(caller, account_id), start=first, end=last,
                         group_by=group_by)
    return FastJSON({"data": [{"key": r.key, "compute_ms": r.compute_ms, "input_tokens": r.input_tokens,
                               "output_tokens": r.output_tokens, "cost_micros": r.cost_micros,
                               "list_cost_micros": r.list_cost_micros} for r in rows]})


def _full_date(name: str, text: str) -> date:
    """RFC 3339 full-date only: no time, no week date, no number of seconds since 1970."""
    try:
        return parse_full_date(text)
    except ValueError as exc:
        raise ApiError(422, "invalid_request", f"{name}: {exc}.") from None
