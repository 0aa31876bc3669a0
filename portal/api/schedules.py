"""GET|POST /api/v1/schedules, GET|PATCH|DELETE /api/v1/schedules/{schedule_id}."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr
from starlette.concurrency import run_in_threadpool

from billing_core.services.schedules import (create_schedule, delete_schedule, get_schedule, list_schedules,
                                             update_schedule)

from .deps import Caller, authenticate, billing_of, utcnow
from .pagination import ListParams, list_response
from .responses import FastJSON
from .runs import EDGE_ONLY, account_of, body_doc, parse_body
from .schemas import PrintableStr

router = APIRouter(prefix="/api/v1", tags=["schedules"])
# A bad value of these fields answers with the field's own code, so clients can point at the field.
FIELD_CODES = {"cron": "invalid_cron", "timezone": "invalid_timezone", "payload": "invalid_payload"}
CRON_DOC = "5 fields: minute hour day-of-month month day-of-week, e.g. '0 9 * * 1-5' (0 or 7 = Sunday)"


class ScheduleCreateBody(BaseModel):
    """A schedule; the account comes from the key (the edge names it with ?account_id=)."""

    model_config = ConfigDict(extra="forbid")

    project_id: StrictStr = Field(min_length=1, max_length=40)
    agent: PrintableStr = Field(min_length=1, max_length=100)
    cron: StrictStr = Field(description=CRON_DOC)
    timezone: StrictStr = Field("UTC", description="IANA name, e.g. 'Europe/Berlin'")
    enabled: StrictBool = True
    payload: dict[str, Any] = Field(default_factory=dict, description="JSON object, at most 16 KiB serialized")


class SchedulePatchBody(BaseModel):
    """Only the fields sent change."""

    model_config = ConfigDict(extra="forbid")

    project_id: StrictStr | None = Field(None, min_length=1, max_length=40)
    agent: PrintableStr | None = Field(None, min_length=1, max_length=100)
    cron: StrictStr | None = Field(None, description=CRON_DOC)
    timezone: StrictStr | None = None
    enabled: StrictBool | None = None
    payload: dict[str, Any] | None = None


EdgeAccount = Query(None, max_length=40, description=EDGE_ONLY)


@router.get("/schedules", summary="The account's schedules, newest first, with their next five runs")
def read_schedules(request: Request, caller: Caller = Depends(authenticate), page: ListParams = Depends(),
                   project_id: str | None = Query(None, max_length=40), enabled: bool | None = None,
                   account_id: str | None = EdgeAccount) -> dict:
    result = list_schedules(billing_of(request), account_of(caller, None, account_id), limit=page.limit,
                            now=utcnow(), cursor=page.cursor, project_id=project_id, enabled=enabled)
    return list_response(result, lambda row: row.to_dict())


@router.post("/schedules", status_code=201, openapi_extra=body_doc(ScheduleCreateBody),
             summary="Create a schedule; a bad cron or timezone is a 422 naming the field")
async def post_schedule(request: Request, caller: Caller = Depends(authenticate),
                        account_id: str | None = EdgeAccount) -> Response:
    body = await parse_body(request, ScheduleCreateBody, FIELD_CODES)
    account = account_of(caller, None, account_id)
    view = await run_in_threadpool(lambda: create_schedule(
        billing_of(request), account, project_id=body.project_id, agent=body.agent, cron=body.cron,
        timezone=body.timezone, enabled=body.enabled, payload=body.payload, now=utcnow()))
    return FastJSON(view.to_dict(), status_code=201)


@router.get("/schedules/{schedule_id}", summary="One schedule with its next five runs")
def read_schedule(schedule_id: str, request: Request, caller: Caller = Depends(authenticate),
                  account_id: str | None = EdgeAccount) -> dict:
    return get_schedule(billing_of(request), account_of(caller, None, account_id), schedule_id,
                        now=utcnow()).to_dict()


@router.patch("/schedules/{schedule_id}", openapi_extra=body_doc(SchedulePatchBody),
              summary="Change some of a schedule's fields")
async def patch_schedule(schedule_id: str, request: Request, caller: Caller = Depends(authenticate),
                         account_id: str | None = EdgeAccount) -> Response:
    body = await parse_body(request, SchedulePatchBody, FIELD_CODES)
    account = account_of(caller, None, account_id)
    changes = {name: getattr(body, name) for name in body.model_fields_set}
    view = await run_in_threadpool(lambda: update_schedule(billing_of(request), account, schedule_id, changes,
                                                           now=utcnow()))
    return FastJSON(view.to_dict())


@router.delete("/schedules/{schedule_id}", status_code=204, response_class=Response,
               summary="Delete a schedule (204)")
def remove_schedule(schedule_id: str, request: Request, caller: Caller = Depends(authenticate),
                    account_id: str | None = EdgeAccount) -> Response:
    delete_schedule(billing_of(request), account_of(caller, None, account_id), schedule_id)
    return Response(status_code=204)
