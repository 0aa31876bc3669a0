"""What the demo account lived through: agents' runs, made and moved along as the edge reports them
(create_run, update_run) or queued by the scheduler's dispatch of due schedules, and their usage events."""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import httpx

from billing_core.cronspec import next_fire_times
from billing_core.services.context import Billing
from billing_core.services.dispatch import dispatch_due_schedules, scheduled_run_id
from billing_core.services.runs import NewRun, create_run, update_run
from billing_core.services.usage import UsageEventIn


@dataclass(frozen=True)
class DemoProject:
    name: str
    agents: tuple[str, ...]
    models: tuple[str, ...]
    runs_per_hour: float  # unscheduled runs an hour at busy times on a weekday
    api_share: float  # of those, the part started through the API; the rest are started by hand


@dataclass(frozen=True)
class DemoSchedule:
    project: str
    agent: str
    cron: str
    timezone: str
    payload: dict
    from_day: int  # days into the demo when it was created
    paused_day: int | None = None  # when it was switched off (it stays off)
    compute: tuple[float, float] = (11.2, 0.5)  # lognormal mu and sigma of a run's compute, in ms


PROJECTS = (
    DemoProject("research", ("web-researcher", "summarizer"), ("claude-sonnet-4", "claude-haiku-4"), 0.4, 0.4),
    DemoProject("support", ("triage", "reply-drafter"), ("gpt-4o-mini", "claude-haiku-4"), 0.6, 0.85),
    DemoProject("data-pipeline", ("report-writer", "nightly-etl"), ("claude-sonnet-4", "gpt-4o"), 0.1, 0.3),
)
SCHEDULES = (
    DemoSchedule("data-pipeline", "nightly-etl", "30 2 * * *", "Europe/Berlin",
                 {"source": "warehouse", "mode": "incremental"}, 0, compute=(12.4, 0.3)),
    DemoSchedule("data-pipeline", "report-writer", "0 7 * * 1", "UTC", {"report": "weekly-usage"}, 0,
                 compute=(12.0, 0.3)),
    DemoSchedule("research", "web-researcher", "0 9 * * 1-5", "America/New_York",
                 {"topic": "competitor pricing"}, 12, paused_day=41, compute=(11.8, 0.4)),
    DemoSchedule("support", "inbox-sync", "0 * * * *", "UTC", {"mailbox": "support@example.com"}, 58,
                 compute=(10.0, 0.4)),
)
ERRORS = (
    "The tool call timed out after 120 s.",
    "The model provider answered 429 (rate limited) three times; gave up.",
    "The agent used its step budget (50 steps) without finishing.",
    "A tool answered HTTP 503 three times in a row; gave up.",
    "The output did not match the expected schema: missing field 'summary'.",
)
FAIL_RATE, CANCEL_RATE = 0.05, 0.01


@dataclass(frozen=True)
class DemoRun:
    project_id: str
    agent: str
    trigger: str
    queued_at: datetime
    started_at: datetime
    compute_ms: int  # 0: no compute reported yet
    models: tuple[str, ...]
    status: str = "succeeded"  # what it has become by the demo's `now`
    error: str | None = None
    schedule_id: str | None = None
    token_steps: int = 1
    byok_model: str | None = None  # tokens of this model go through the project's own key
    id: str = ""  # given in the order the runs were queued, once a batch is sorted (numbered)
    dispatched: bool = False  # queued by the scheduler's dispatch job rather than reported by the edge

    @property
    def finished_at(self) -> datetime:
        # A run ends a little after its compute: start-up and reporting are not metered.
        return self.started_at + timedelta(milliseconds=self.compute_ms, seconds=2)


def _settled(rng: random.Random, run: DemoRun, now: datetime) -> DemoRun:
    """The run as it stands at `now`: most succeed, some fail (with less compute) or are cancelled."""
    if run.started_at > now:
        return replace(run, status="queued", compute_ms=0)
    draw = rng.random()
    if draw < FAIL_RATE:
        run = replace(run, status="failed", error=rng.choice(ERRORS),
                      compute_ms=int(run.compute_ms * rng.uniform(0.1, 0.6)))
    elif draw < FAIL_RATE + CANCEL_RATE:
        run = replace(run, status="cancelled", compute_ms=int(run.compute_ms * rng.uniform(0.05, 0.3)))
    return replace(run, status="running") if run.finished_at > now else run


def _daytime_weight(at: datetime) -> float:
    weekday = at.weekday() < 5
    return (1.0 if 8 <= at.hour < 20 else 0.25) * (1.0 if weekday else 0.45)


def unscheduled_runs(rng: random.Random, project_id: str, spec: DemoProject, start: datetime, hours: int,
                     now: datetime) -> list[DemoRun]:
    """Runs started by hand or through the API, more of them in working hours."""
    runs = []
    byok = "gpt-4o" if spec.name == "data-pipeline" else None
    for h in range(hours):
        hour = start + timedelta(hours=h)
        expected = rng.random() * 2 * spec.runs_per_hour * _daytime_weight(hour)
        for _ in range(int(expected) + (rng.random() < expected % 1)):
            at = hour + timedelta(seconds=rng.randrange(3600))
            run = DemoRun(project_id=project_id, agent=rng.choice(spec.agents),
                          trigger="api" if rng.random() < spec.api_share else "manual",
                          queued_at=at - timedelta(seconds=rng.randint(1, 15)), started_at=at,
                          compute_ms=int(rng.lognormvariate(11.6, 0.8)), models=spec.models,
                          token_steps=rng.randint(2, 5), byok_model=byok)
            runs.append(_settled(rng, run, now))
    return runs


def fire_times(schedule: DemoSchedule, start: datetime, end: datetime) -> list[datetime]:
    """When the schedule fired in [start, end), by the same cron rules the portal shows."""
    times: list[datetime] = []
    at = start
    while True:
        batch = next_fire_times(schedule.cron, schedule.timezone, now=at, count=64)
        times += [t for t in batch if t < end]
        if not batch or batch[-1] >= end:
            return times
        at = batch[-1] + timedelta(seconds=1)


def scheduled_runs(rng: random.Random, schedule: DemoSchedule, schedule_id: str, project: DemoProject,
                   project_id: str, fired: list[datetime], now: datetime,
                   dispatch_at: datetime | None = None) -> list[DemoRun]:
    """One run per fire time, named as the dispatcher names it, started seconds after it was queued; the
    one at `dispatch_at` (the schedule's latest) is left to the dispatch job itself."""
    runs = []
    for at in fired:
        run = DemoRun(id=scheduled_run_id(schedule_id, at), project_id=project_id, agent=schedule.agent,
                      trigger="schedule", schedule_id=schedule_id, queued_at=at, dispatched=at == dispatch_at,
                      started_at=at + timedelta(seconds=rng.randint(2, 30)),
                      compute_ms=int(rng.lognormvariate(*schedule.compute)), models=project.models[:1],
                      token_steps=rng.randint(1, 2))
        runs.append(_settled(rng, run, now))
    return runs


def runs_under_way(rng: random.Random, project_ids: dict[str, str], now: datetime) -> list[DemoRun]:
    """What is going on as the demo ends: two runs still running, one waiting in the queue."""
    made = []
    for project, agent, trigger, queued_s_ago, status in (
            ("research", "web-researcher", "manual", 260, "running"), ("support", "triage", "api", 50, "running"),
            ("data-pipeline", "report-writer", "api", 15, "queued")):
        spec = next(p for p in PROJECTS if p.name == project)
        queued = now - timedelta(seconds=queued_s_ago)
        made.append(DemoRun(project_id=project_ids[project], agent=agent,
                            trigger=trigger, queued_at=queued, started_at=queued + timedelta(seconds=10),
                            compute_ms=0, models=spec.models, status=status, token_steps=rng.randint(1, 2)))
    return made


def numbered(runs: list[DemoRun], serial: list[int]) -> list[DemoRun]:
    """The runs in the order they were queued; those started by hand or through the API get ids that count up
    in that order (a scheduled run's id is the dispatcher's: schedule and fire time)."""
    out = []
    for run in sorted(runs, key=lambda r: r.queued_at):
        if not run.id:
            serial[0] += 1
            run = replace(run, id=f"run_demo_{serial[0]}")
        out.append(run)
    return out


def usage_events(rng: random.Random, run: DemoRun) -> list[UsageEventIn]:
    """What the edge reports for the run: its compute (once known) and a token event per model call."""
    if run.status == "queued":
        return []
    n = run.id.removeprefix("run_demo_")
    events = []
    if run.compute_ms:
        events.append(UsageEventIn(id=f"demo-{n}-c", project_id=run.project_id, kind="compute",
                                   timestamp=run.started_at, duration_ms=run.compute_ms, agent=run.agent,
                                   run_id=run.id))
    for step in range(run.token_steps):
        model = rng.choice(run.models)
        events.append(UsageEventIn(
            id=f"demo-{n}-t{step}", project_id=run.project_id, kind="tokens", timestamp=run.started_at,
            model=model, provider="anthropic" if model.startswith("claude") else "openai",
            input_tokens=rng.randint(400, 6_000), output_tokens=rng.randint(60, 900),
            key_source="byok" if model == run.byok_model else "platform", agent=run.agent, run_id=run.id))
    return events


def report_run(billing: Billing, account_id: str, run: DemoRun, http: httpx.Client) -> None:
    """Create the run and move it along to where it stands, each step at its own time.

    A schedule's latest run is queued by the scheduler's dispatch job at its fire time (no dispatch URL:
    queued only), which moves the schedule's last run, so the app's scheduler finds nothing to catch up when
    it starts. Its earlier runs are created like the edge's, under the ids the dispatcher gives (the job is
    slow to call once per fire time, and an id it finds taken it leaves alone)."""
    if run.dispatched:
        dispatch_due_schedules(billing, run.queued_at, dispatch_url=None, http=http)
    create_run(billing, account_id, NewRun(project_id=run.project_id, agent=run.agent, id=run.id,
                                           trigger=run.trigger, schedule_id=run.schedule_id), now=run.queued_at)
    if run.status == "queued":
        return
    update_run(billing, account_id, run.id, status="running", now=run.started_at)
    if run.status != "running":
        update_run(billing, account_id, run.id, status=run.status, error=run.error, now=run.finished_at)
