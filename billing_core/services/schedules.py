"""Agent schedules: a cron expression in an IANA time zone, with the next fire times and a description."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from datetime import datetime

from sqlalchemy import delete, select
from sqlmodel import Session

from ..cronspec import NEXT_RUNS, describe, next_fire_times, parse_cron, parse_timezone
from ..db.engine import is_sqlite, read_session, write_session
from ..db.workloads import Schedule
from ..errors import Invalid, NotFound, ServiceError
from ..ids import new_id
from ..validate import MAX_JSON_DEPTH, PRINTABLE_RULE, is_printable, json_path, value_problem
from .context import Billing
from .paging import Page, paginate
from .runs import AGENT_MAX, checked_cursor, clean_text, is_issued_id, live_project
from .standing import refuse_if_suspended
from .views import rfc3339

PAYLOAD_MAX_BYTES = 16 * 1024
# The payload sits one level into a request body, whose depth the API limits to MAX_JSON_DEPTH.
PAYLOAD_MAX_DEPTH = MAX_JSON_DEPTH - 1
NO_SCHEDULE = "No such schedule."
EDITABLE = ("project_id", "agent", "cron", "timezone", "enabled", "payload")


@dataclass(frozen=True)
class ScheduleView:
    id: str
    project_id: str
    agent: str
    cron: str
    timezone: str
    enabled: bool
    payload: dict
    description: str
    next_runs: list[str]  # RFC 3339 UTC; empty while disabled
    last_run_at: str | None
    created_at: str
    updated_at: str

    def to_dict(self) -> dict:
        # Not asdict: its deep copy recurses once per level of the payload, which is the caller's to encode.
        return {f.name: getattr(self, f.name) for f in fields(self)}


def schedule_view(row: Schedule, *, now: datetime) -> ScheduleView:
    spec = parse_cron(row.cron)
    upcoming = next_fire_times(spec, row.timezone, now=now, count=NEXT_RUNS) if row.enabled else []
    return ScheduleView(id=row.id, project_id=row.project_id, agent=row.agent, cron=row.cron,
                        timezone=row.timezone, enabled=row.enabled, payload=json.loads(row.payload),
                        description=describe(spec), next_runs=[rfc3339(t) for t in upcoming],
                        last_run_at=rfc3339(row.last_run_at) if row.last_run_at else None,
                        created_at=rfc3339(row.created_at), updated_at=rfc3339(row.updated_at))


def payload_text(payload: object) -> str:
    """The payload as stored: a JSON object of at most 16 KiB once serialized."""
    if not isinstance(payload, dict):
        raise Invalid("payload: must be a JSON object.", code="invalid_payload")
    # Checked before anything is written: a payload stored deeper than the API reads, or with an integer
    # its encoder cannot write, would fail every later read of the account's schedules.
    problem = value_problem(payload, max_depth=PAYLOAD_MAX_DEPTH)
    if problem is not None:
        where = json_path(["payload", *problem[0]])
        if problem[1] == "too_deep":
            raise Invalid(f"payload is nested deeper than {PAYLOAD_MAX_DEPTH} levels.", code="too_deep")
        raise Invalid(f"{where}: integers must be between -2**63 and 2**64 - 1.", code="invalid_payload")
    try:
        text = json.dumps(payload, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        size = len(text.encode("utf-8"))
    except (TypeError, ValueError, RecursionError):
        # A lone surrogate cannot be encoded (UnicodeEncodeError is a ValueError); NaN is not JSON.
        raise Invalid("payload: must hold only JSON values.", code="invalid_payload") from None
    if size > PAYLOAD_MAX_BYTES:
        raise ServiceError(f"payload: at most {PAYLOAD_MAX_BYTES} bytes once serialized; this one is {size}.",
                           code="payload_too_large", status=413)
    return text


def _checked(changes: dict) -> dict:
    """The changes with every value validated and normalised; unknown names are a programming error."""
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise ValueError(f"not editable: {sorted(unknown)}")
    out: dict = {}
    for name, value in changes.items():
        if value is None:
            raise Invalid(f"{name}: may not be null.", code=f"invalid_{name}")
        if name == "agent":
            out[name] = clean_text(value, "agent", AGENT_MAX)
            if not is_printable(out[name]):
                raise Invalid(f"agent: {PRINTABLE_RULE}.", code="invalid_agent")
        elif name == "cron":
            out[name] = parse_cron(value).text
        elif name == "timezone":
            parse_timezone(value)
            out[name] = value
        elif name == "enabled":
            if not isinstance(value, bool):
                raise Invalid("enabled: true or false.", code="invalid_enabled")
            out[name] = value
        elif name == "payload":
            out[name] = payload_text(value)
        else:
            out[name] = value  # project_id: checked against the account inside the transaction
    return out


def _owned(session: Session, account_id: str, schedule_id: object, *, lock: bool = False) -> Schedule:
    if not (is_issued_id(schedule_id) and is_issued_id(account_id)):
        raise NotFound(NO_SCHEDULE)
    stmt = select(Schedule).where(Schedule.id == schedule_id, Schedule.account_id == account_id)
    if lock and not is_sqlite(session.get_bind()):
        stmt = stmt.with_for_update()
    row = session.execute(stmt).scalar_one_or_none()
    if row is None:
        raise NotFound(NO_SCHEDULE)
    return row


def create_schedule(billing: Billing, account_id: str, *, project_id: str, agent: str, cron: str,
                    timezone: str = "UTC", enabled: bool = True, payload: dict | None = None,
                    now: datetime) -> ScheduleView:
    values = _checked(dict(project_id=project_id, agent=agent, cron=cron, timezone=timezone, enabled=enabled,
                           payload={} if payload is None else payload))
    with write_session(billing.engine) as session:
        refuse_if_suspended(session, account_id)
        live_project(session, account_id, values["project_id"])
        row = Schedule(id=new_id("sch"), account_id=account_id, created_at=now, updated_at=now, **values)
        session.add(row)
        session.flush()
        return schedule_view(row, now=now)


def update_schedule(billing: Billing, account_id: str, schedule_id: str, changes: dict, *,
                    now: datetime) -> ScheduleView:
    """Apply the named changes (any of project_id, agent, cron, timezone, enabled, payload)."""
    values = _checked(changes)
    with write_session(billing.engine) as session:
        row = _owned(session, account_id, schedule_id, lock=True)
        refuse_if_suspended(session, account_id)
        if "project_id" in values and values["project_id"] != row.project_id:
            live_project(session, account_id, values["project_id"])
        changed = {k: v for k, v in values.items() if getattr(row, k) != v}
        if changed:
            for name, value in changed.items():
                setattr(row, name, value)
            row.updated_at = now
            session.flush()
        return schedule_view(row, now=now)


def delete_schedule(billing: Billing, account_id: str, schedule_id: str) -> None:
    with write_session(billing.engine) as session:
        row = _owned(session, account_id, schedule_id, lock=True)
        refuse_if_suspended(session, account_id)
        session.execute(delete(Schedule).where(Schedule.id == row.id))


def get_schedule(billing: Billing, account_id: str, schedule_id: str, *, now: datetime) -> ScheduleView:
    with read_session(billing.engine) as session:
        return schedule_view(_owned(session, account_id, schedule_id), now=now)


def list_schedules(billing: Billing, account_id: str, *, limit: int, now: datetime, cursor: str | None = None,
                   project_id: str | None = None, enabled: bool | None = None) -> Page[ScheduleView]:
    cursor = checked_cursor(cursor, is_issued_id)
    if not is_issued_id(account_id) or (project_id is not None and not is_issued_id(project_id)):
        return Page([], None)
    stmt = select(Schedule).where(Schedule.account_id == account_id)
    if project_id is not None:
        stmt = stmt.where(Schedule.project_id == project_id)
    if enabled is not None:
        stmt = stmt.where(Schedule.enabled == enabled)
    with read_session(billing.engine) as session:
        page = paginate(session, stmt, Schedule, limit=limit, cursor=cursor)
    return Page([schedule_view(row, now=now) for row in page.items], page.next_cursor)
