"""`tollgate demo`: a demo account with 60 days of realistic history, made by the real services."""

from __future__ import annotations

import random
import secrets
import shlex
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

import httpx
import typer
from rich.progress import Progress
from sqlalchemy import select

from billing_core.db.engine import read_session
from billing_core.db.models import Account
from billing_core.passwords import check_password
from billing_core.services import accounts
from billing_core.services.context import Billing
from billing_core.services.identity import create_user
from billing_core.services.periods import run_due_work
from billing_core.services.projects import create_project
from billing_core.services.schedules import create_schedule, update_schedule
from billing_core.services.usage import record_usage

from ..settings import get_settings
from . import demo_payments
from .common import one_line_errors, open_billing
from .demo_history import (PROJECTS, SCHEDULES, DemoRun, DemoSchedule, fire_times, numbered, report_run,
                           runs_under_way, scheduled_runs, unscheduled_runs, usage_events)

DEMO_EMAIL = "demo@tollgate.dev"
DAYS = 60
BATCH_HOURS = 3


def _timeline(billing: Billing, account_id: str, project_ids: dict[str, str], start: datetime,
              schedule_ids: dict[int, str]) -> list[tuple[datetime, Callable[[], object]]]:
    """What happens to the account besides its runs, in time order: a pool, top-ups, schedules made and paused."""
    def at(days: float) -> datetime:
        return start + timedelta(days=days)

    def make(i: int, spec: DemoSchedule) -> Callable[[], object]:
        def create() -> None:
            schedule_ids[i] = create_schedule(
                billing, account_id, project_id=project_ids[spec.project], agent=spec.agent, cron=spec.cron,
                timezone=spec.timezone, payload=spec.payload, now=at(spec.from_day) + timedelta(minutes=7)).id
        return create

    def pause(i: int, spec: DemoSchedule) -> Callable[[], object]:
        return lambda: update_schedule(billing, account_id, schedule_ids[i], {"enabled": False},
                                       now=at(spec.paused_day))

    pack = billing.catalog.pool_pack.price_micros
    events = [
        (at(9), lambda: accounts.add_pool(billing, account_id, size_ms=10 * 3_600_000, valid_days=365, now=at(9),
                                          price_micros=pack)),
        (at(21), lambda: accounts.grant_credit(billing, account_id, amount_micros=20_000_000, now=at(21),
                                               kind="topup")),
        (at(44), lambda: accounts.grant_credit(billing, account_id, amount_micros=50_000_000, now=at(44),
                                               kind="topup")),
    ]
    for i, spec in enumerate(SCHEDULES):
        events.append((at(spec.from_day), make(i, spec)))
        if spec.paused_day is not None:
            events.append((at(spec.paused_day), pause(i, spec)))
    return sorted(events, key=lambda e: e[0])


def build_demo(billing: Billing, *, now: datetime, seed: int = 7, progress: Progress | None = None) -> dict:
    """Create the demo account as if it had lived the last 60 days; returns its ids, key and counts."""
    rng = random.Random(seed)
    start = (now - timedelta(days=DAYS)).replace(minute=0, second=0, microsecond=0)
    created = accounts.create_account(billing, email=DEMO_EMAIL, plan="starter", credit_micros=25_000_000,
                                      now=start, project_name=PROJECTS[0].name)
    account_id = created.account_id
    project_ids = {PROJECTS[0].name: created.project_id} | {
        p.name: create_project(billing, account_id, name=p.name, now=start + timedelta(minutes=5 + i)).id
        for i, p in enumerate(PROJECTS[1:])}
    schedule_ids: dict[int, str] = {}
    timeline = _timeline(billing, account_id, project_ids, start, schedule_ids)
    timeline = demo_payments.with_payments(timeline, billing, account_id, start=start, now=now, progress=progress)
    serial, reported = [0], [0]
    total_hours = int((now - start).total_seconds() // 3600)
    task = progress.add_task("Simulating 60 days of runs and usage", total=total_hours) if progress else None

    def report(runs: list[DemoRun], tick_at: datetime) -> None:
        runs = numbered(runs, serial)
        for run in runs:
            report_run(billing, account_id, run, http)
        reported[0] += len(runs)
        events = [e for run in runs for e in usage_events(rng, run)]
        if events:
            record_usage(billing, account_id, events, now=tick_at)

    def scheduled(begin: datetime, end: datetime) -> list[DemoRun]:
        runs = []
        for i, spec in enumerate(SCHEDULES):
            due = [t for t in fired[i] if begin <= t < end]
            if due:
                project = next(p for p in PROJECTS if p.name == spec.project)
                latest = fired[i][-1] if spec.paused_day is None else None
                runs += scheduled_runs(rng, spec, schedule_ids[i], project, project_ids[spec.project], due, now,
                                       dispatch_at=latest)
        return runs

    fired = [fire_times(spec, start + timedelta(days=spec.from_day, minutes=7),
                        now if spec.paused_day is None else start + timedelta(days=spec.paused_day))
             for spec in SCHEDULES]
    # The dispatch job's HTTP client; never used here, since the demo has no dispatch URL.
    with httpx.Client() as http:
        for offset in range(0, total_hours, BATCH_HOURS):
            hours = min(BATCH_HOURS, total_hours - offset)
            window = start + timedelta(hours=offset)
            tick_at = window + timedelta(hours=hours)
            while timeline and timeline[0][0] < tick_at:
                timeline.pop(0)[1]()
            run_due_work(billing, tick_at)
            runs = [run for spec in PROJECTS
                    for run in unscheduled_runs(rng, project_ids[spec.name], spec, window, hours, now)]
            report(runs + scheduled(window, tick_at), tick_at)
            if progress is not None:
                progress.advance(task, hours)
        for _, action in timeline:
            action()
        run_due_work(billing, now)
        last_tick = start + timedelta(hours=total_hours)
        report(scheduled(last_tick, now + timedelta(seconds=1)) + runs_under_way(rng, project_ids, now), now)
    return {"account_id": account_id, "project_ids": list(project_ids.values()), "api_key": created.api_key,
            "runs": reported[0], "schedules": len(schedule_ids)}


def _demo_password() -> str:
    """A fresh random password that meets the sign-up rules (random text rarely fails them; retry if so)."""
    while True:
        password = secrets.token_urlsafe(15)
        if check_password(password, email=DEMO_EMAIL) is None:
            return password


def _write_key(path: Path, key: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(key + "\n")


def _kept_in(path: Path) -> str:
    """Where a demo secret is kept; the secret itself is never printed, since `make run` logs this output."""
    if not path.exists():
        return f"{path} (missing: it was written when the demo was made)"
    try:
        path.chmod(0o600)  # a copy restored with looser permissions is tightened again
    except OSError:
        pass  # not ours to change; saying where it is still helps
    return str(path)


@one_line_errors
def demo(if_missing: bool = typer.Option(False, "--if-missing", help="Do nothing when the demo exists.")) -> None:
    """Fill the database with a demo account and 60 days of history, then say how to use it."""
    billing = open_billing()
    key_file = get_settings().data_dir / "demo-key.txt"
    password_file = key_file.with_name("demo-password.txt")
    with read_session(billing.engine) as session:
        existing = session.execute(select(Account.id).where(Account.email == DEMO_EMAIL)).scalar_one_or_none()
    if existing:
        typer.echo(f"The demo account {existing} already exists. Sign in as {DEMO_EMAIL} with the password in "
                   f"{_kept_in(password_file)}; its account key is in {_kept_in(key_file)}.")
        if not if_missing:
            typer.echo("Use a fresh database (TOLLGATE_DATABASE_URL) for a new demo.")
        return
    with Progress() as progress:
        result = build_demo(billing, now=datetime.now(timezone.utc), progress=progress)
    _write_key(key_file, result["api_key"])
    password = _demo_password()
    create_user(billing, account_id=result["account_id"], email=DEMO_EMAIL, password=password, name="Demo",
                now=datetime.now(timezone.utc))
    _write_key(password_file, password)
    url = get_settings().public_url
    typer.echo(
        f"\nDemo account {DEMO_EMAIL} ({result['account_id']}) is ready: 60 days, 3 projects, "
        f"{result['runs']} runs, {result['schedules']} schedules.\n"
        f"Sign in at {url}/sign-in as {DEMO_EMAIL} with the password in {password_file}.\n"
        f"The account key is in {key_file}:\n"
        f"  export TOLLGATE_KEY=$(cat {shlex.quote(str(key_file))})\n"
        f"  curl -H \"Authorization: Bearer $TOLLGATE_KEY\" {url}/api/v1/account\n"
        f"Open {url}/ for the portal and {url}/api/docs for the API.")
