"""`tollgate demo`: a demo account with 60 days of realistic history, made by the real services."""

from __future__ import annotations

import random
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

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
from billing_core.services.usage import UsageEventIn, record_usage

from ..settings import get_settings
from .common import one_line_errors, open_billing

DEMO_EMAIL = "demo@tollgate.dev"
DAYS = 60
BATCH_HOURS = 3


@dataclass(frozen=True)
class DemoProject:
    name: str
    agents: tuple[str, ...]
    models: tuple[str, ...]
    runs_per_hour: float


PROJECTS = (
    DemoProject("research", ("web-researcher", "summarizer"), ("claude-sonnet-4", "claude-haiku-4"), 0.8),
    DemoProject("support", ("triage", "reply-drafter"), ("gpt-4o-mini", "claude-haiku-4"), 1.2),
    DemoProject("data-pipeline", ("nightly-etl", "report-writer"), ("claude-sonnet-4", "gpt-4o"), 0.3),
)


def _daytime_weight(at: datetime) -> float:
    weekday = at.weekday() < 5
    return (1.0 if 8 <= at.hour < 20 else 0.25) * (1.0 if weekday else 0.45)


def _events(rng: random.Random, project_id: str, spec: DemoProject, start: datetime, hours: int,
            serial: list[int]) -> list[UsageEventIn]:
    events = []
    for h in range(hours):
        hour = start + timedelta(hours=h)
        runs = rng.random() * 2 * spec.runs_per_hour * _daytime_weight(hour)
        for _ in range(int(runs) + (rng.random() < runs % 1)):
            serial[0] += 1
            run_id, agent = f"run_demo_{serial[0]}", rng.choice(spec.agents)
            at = hour + timedelta(seconds=rng.randrange(3600))
            events.append(UsageEventIn(id=f"demo-{serial[0]}-c", project_id=project_id, kind="compute",
                                       timestamp=at, duration_ms=int(rng.lognormvariate(11.2, 0.8)),
                                       agent=agent, run_id=run_id))
            for step in range(rng.randint(1, 3)):
                model = rng.choice(spec.models)
                events.append(UsageEventIn(
                    id=f"demo-{serial[0]}-t{step}", project_id=project_id, kind="tokens", timestamp=at,
                    model=model, provider="anthropic" if model.startswith("claude") else "openai",
                    input_tokens=rng.randint(400, 6_000), output_tokens=rng.randint(60, 900),
                    key_source="byok" if spec.name == "data-pipeline" and model == "gpt-4o" else "platform",
                    agent=agent, run_id=run_id))
    return events


def build_demo(billing: Billing, *, now: datetime, seed: int = 7, progress: Progress | None = None) -> dict:
    """Create the demo account as if it had lived the last 60 days; returns its ids and key."""
    rng = random.Random(seed)
    start = (now - timedelta(days=DAYS)).replace(minute=0, second=0, microsecond=0)
    created = accounts.create_account(billing, email=DEMO_EMAIL, plan="starter", credit_micros=25_000_000,
                                      now=start, project_name=PROJECTS[0].name)
    project_ids = [created.project_id] + [
        create_project(billing, created.account_id, name=p.name, now=start + timedelta(minutes=5 + i)).id
        for i, p in enumerate(PROJECTS[1:])]
    milestones = {
        9 * 24: lambda t: accounts.add_pool(billing, created.account_id, size_ms=10 * 3_600_000, valid_days=365,
                                            now=t, price_micros=billing.catalog.pool_pack.price_micros),
        21 * 24: lambda t: accounts.grant_credit(billing, created.account_id, amount_micros=20_000_000, now=t,
                                                 kind="topup"),
        44 * 24: lambda t: accounts.grant_credit(billing, created.account_id, amount_micros=50_000_000, now=t,
                                                 kind="topup"),
    }
    serial = [0]
    total_hours = int((now - start).total_seconds() // 3600)
    task = progress.add_task("Simulating 60 days of usage", total=total_hours) if progress else None
    for offset in range(0, total_hours, BATCH_HOURS):
        hours = min(BATCH_HOURS, total_hours - offset)
        window = start + timedelta(hours=offset)
        tick_at = window + timedelta(hours=hours)
        for at_hour, action in milestones.items():
            if offset <= at_hour < offset + hours:
                action(window + timedelta(hours=at_hour - offset))
        run_due_work(billing, tick_at)
        for pid, spec in zip(project_ids, PROJECTS):
            events = _events(rng, pid, spec, window, hours, serial)
            if events:
                record_usage(billing, created.account_id, events, now=tick_at)
        if progress is not None:
            progress.advance(task, hours)
    run_due_work(billing, now)
    return {"account_id": created.account_id, "project_ids": project_ids, "api_key": created.api_key,
            "events": serial[0]}


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


@one_line_errors
def demo(if_missing: bool = typer.Option(False, "--if-missing", help="Do nothing when the demo exists.")) -> None:
    """Fill the database with a demo account and 60 days of history, then say how to use it."""
    billing = open_billing()
    key_file = get_settings().data_dir / "demo-key.txt"
    password_file = key_file.with_name("demo-password.txt")
    with read_session(billing.engine) as session:
        existing = session.execute(select(Account.id).where(Account.email == DEMO_EMAIL)).scalar_one_or_none()
    if existing:
        key = key_file.read_text().strip() if key_file.exists() else "(shown when the demo was created)"
        password = password_file.read_text().strip() if password_file.exists() else "(shown when the demo was created)"
        typer.echo(f"The demo account {existing} already exists.\n  key: {key}\n"
                   f"  sign in as {DEMO_EMAIL} with password: {password}")
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
        f"{result['events']} runs.\n"
        f"Sign in at {url}/sign-in as {DEMO_EMAIL} with password {password} (also in {password_file}).\n"
        f"The account key (also in {key_file}):\n"
        f"  export TOLLGATE_KEY={result['api_key']}\n"
        f"  curl -H \"Authorization: Bearer $TOLLGATE_KEY\" {url}/api/v1/account\n"
        f"Open {url}/ for the portal and {url}/api/docs for the API.")
