"""GET|POST /api/v1/runs, GET|PATCH /api/v1/runs/{run_id}."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationError
from starlette.concurrency import run_in_threadpool

from billing_core.services.runs import NewRun, create_run, get_run, list_runs, update_run
from billing_core.validate import json_path, locate_json_problem, may_hold_wide_integer

from .deps import Caller, account_for, authenticate, billing_of, utcnow
from .errors import ApiError
from .pagination import ListParams, list_response
from .projects import MAX_BODY_BYTES as SMALL_BODY_BYTES
from .responses import FastJSON
from .schemas import PrintableStr
from .usage import parse_json

router = APIRouter(prefix="/api/v1", tags=["runs"])
EDGE_ONLY = "edge token only: the account acted for"


class RunCreateBody(BaseModel):
    """A new run, always queued; the edge names the account and may bring its own id."""

    model_config = ConfigDict(extra="forbid")

    id: StrictStr | None = Field(None, min_length=1, max_length=128,
                                 description="the edge's run id, which its usage events carry as run_id")
    project_id: StrictStr = Field(min_length=1, max_length=40)
    agent: PrintableStr = Field(min_length=1, max_length=100)
    trigger: Literal["manual", "schedule", "api"] = Field("api", description="schedule: edge token only")
    schedule_id: StrictStr | None = Field(None, max_length=40, description="with trigger schedule")
    account_id: StrictStr | None = Field(None, max_length=40, description=EDGE_ONLY)


class RunPatchBody(BaseModel):
    """A step of the run's life: running, then succeeded, failed or cancelled."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    error: StrictStr | None = Field(None, max_length=500, description="why a failed run failed")
    account_id: StrictStr | None = Field(None, max_length=40, description=EDGE_ONLY)


def first_error(exc: ValidationError) -> tuple[str, str]:
    """The first problem as (field, message), worded for a person."""
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"])
    if err["type"] == "extra_forbidden":
        message = "is not a field you can set here"
    else:
        message = err["msg"].removeprefix("Value error, ")
    return where, (f"{where}: {message}." if where else f"{message}.")


async def parse_body(request: Request, model: type[BaseModel], codes: dict[str, str] | None = None):
    """The JSON body validated by `model`; a problem with a field in `codes` answers with that field's code."""
    body = await request.body()
    if len(body) > SMALL_BODY_BYTES:  # these bodies are a few fields and a payload of at most 16 KiB
        raise ApiError(413, "payload_too_large", f"The body may be at most {SMALL_BODY_BYTES} bytes.")
    raw = parse_json(body)
    codes = codes or {}
    # The parser reads an integer past 64 bits as a float: refused, naming it, rather than stored changed.
    if may_hold_wide_integer(body):
        found = locate_json_problem(body)
        if found is not None and found[1] == "wide_integer":
            path = found[0]
            code = codes.get(str(path[0]), "invalid_request") if path else "invalid_request"
            raise ApiError(422, code, f"{json_path(path) or 'body'}: integers must be between -2**63 and 2**64 - 1.")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        field, message = first_error(exc)
        raise ApiError(422, codes.get(field.split(".")[0], "invalid_request"), message) from None


def account_of(caller: Caller, in_body: str | None, in_query: str | None = None) -> str:
    """The account acted on: the edge names it (body or query); a key acts only for its own."""
    if in_body and in_query and in_body != in_query:
        raise ApiError(422, "invalid_request", "account_id: the body and the query name different accounts.")
    requested = in_body or in_query
    if requested and not caller.is_edge and requested != caller.account_id:
        raise ApiError(422, "invalid_request", "account_id: only the edge token names another account.")
    return account_for(caller, requested)


def body_doc(model: type[BaseModel]) -> dict:
    return {"requestBody": {"required": True, "content": {"application/json": {
        "schema": model.model_json_schema(ref_template="#/components/schemas/{model}")}}}}


@router.get("/runs", summary="The account's runs, newest first, with cost and duration from their usage")
def read_runs(request: Request, caller: Caller = Depends(authenticate), page: ListParams = Depends(),
              project_id: str | None = Query(None, max_length=40),
              status: Literal["queued", "running", "succeeded", "failed", "cancelled"] | None = None,
              agent: str | None = Query(None, max_length=100),
              account_id: str | None = Query(None, max_length=40, description=EDGE_ONLY)) -> dict:
    result = list_runs(billing_of(request), account_of(caller, None, account_id), limit=page.limit,
                       cursor=page.cursor, project_id=project_id, status=status, agent=agent)
    return list_response(result, lambda run: run.to_dict())


@router.post("/runs", status_code=201, openapi_extra=body_doc(RunCreateBody),
             summary="Report or create a run (201; the same id and details again: 200, unchanged)")
async def post_run(request: Request, caller: Caller = Depends(authenticate)):
    body = await parse_body(request, RunCreateBody)
    account_id = account_of(caller, body.account_id)
    if body.trigger == "schedule" and not caller.is_edge:
        raise ApiError(422, "invalid_trigger", "trigger: an account key starts runs with trigger api or manual.")
    new = NewRun(project_id=body.project_id, agent=body.agent, id=body.id, trigger=body.trigger,
                 schedule_id=body.schedule_id)
    view, created = await run_in_threadpool(create_run, billing_of(request), account_id, new, now=utcnow())
    return FastJSON(view.to_dict(), status_code=201 if created else 200)


@router.get("/runs/{run_id}", summary="One run, with the drawdown its usage took")
def read_run(run_id: str, request: Request, caller: Caller = Depends(authenticate),
             account_id: str | None = Query(None, max_length=40, description=EDGE_ONLY)) -> dict:
    return get_run(billing_of(request), account_of(caller, None, account_id), run_id).to_dict()


@router.patch("/runs/{run_id}", openapi_extra=body_doc(RunPatchBody),
              summary="Move a run along queued -> running -> succeeded | failed | cancelled")
async def patch_run(run_id: str, request: Request, caller: Caller = Depends(authenticate),
                    account_id: str | None = Query(None, max_length=40, description=EDGE_ONLY)) -> Response:
    body = await parse_body(request, RunPatchBody)
    account = account_of(caller, body.account_id, account_id)
    view = await run_in_threadpool(lambda: update_run(
        billing_of(request), account, run_id, status=body.status, error=body.error, now=utcnow(),
        actor="edge" if caller.is_edge else "api"))
    return FastJSON(view.to_dict())
