"""Which jobs are due, what a run records in job_states, and that a failing job never stops the others;
with fake jobs and explicit times, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import select
from sqlmodel import Session

from billing_core.db.models import Invoice
from billing_core.db.operations import JobState
from billing_core.scheduler.jobs import Job, JobsConfig, build_jobs
from billing_core.scheduler.runner import SUMMARY_MAX_CHARS, run_due, short_json

from ..conftest import T0
from ..factories import make_account


class Counter:
    """A fake job body: counts its runs and returns what it is told to."""

    def __init__(self, summary: dict | None = None, error: Exception | None = None) -> None:
        self.calls: list = []
        self.summary, self.error = summary or {}, error
        self.lock = threading.Lock()

    def __call__(self, now):
        with self.lock:
            self.calls.append(now)
        if self.error:
            raise self.error
        return self.summary


def state(billing, name: str) -> JobState | None:
    with Session(billing.engine) as session:
        return session.get(JobState, name)


def test_a_job_that_never_ran_is_due_and_its_run_is_recorded(billing):
    body = Counter({"delivered": 3})
    runs = run_due(billing, [Job("sync", body, every_s=60)], T0, "host:1:aa")
    assert [(r.job.name, r.summary, r.ok) for r in runs] == [("sync", {"delivered": 3}, True)]
    row = state(billing, "sync")
    assert (row.last_started_at, row.last_finished_at, row.last_ok_at) == (T0, T0, T0)
    assert (row.runs, row.holder, row.last_error, json.loads(row.last_summary)) == (1, "host:1:aa", None,
                                                                                    {"delivered": 3})


def test_an_interval_job_is_due_again_only_once_its_interval_has_passed(billing):
    body = Counter()
    job = Job("alerts", body, every_s=60)
    run_due(billing, [job], T0, "h")
    assert run_due(billing, [job], T0 + timedelta(seconds=59), "h") == []
    assert len(run_due(billing, [job], T0 + timedelta(seconds=60), "h")) == 1
    # The live ticker's jitter: with slack, a run a little early counts as due.
    assert run_due(billing, [job], T0 + timedelta(seconds=119.6), "h") == []
    assert len(run_due(billing, [job], T0 + timedelta(seconds=119.6), "h", slack_s=0.5)) == 1
    assert len(body.calls) == 3 and state(billing, "alerts").runs == 3


def test_a_cron_job_is_due_when_a_fire_time_has_passed_since_its_last_start(billing):
    body = Counter()
    job = Job("reconcile", body, cron="0 3 * * *")
    two_am = T0.replace(hour=2)
    assert len(run_due(billing, [job], two_am, "h")) == 1  # never ran: due
    assert run_due(billing, [job], two_am.replace(hour=2, minute=59, second=59), "h") == []
    assert len(run_due(billing, [job], two_am.replace(hour=3), "h")) == 1
    assert run_due(billing, [job], two_am.replace(hour=23), "h") == []
    assert len(run_due(billing, [job], two_am + timedelta(days=1, hours=2), "h")) == 1


def test_a_job_last_started_after_now_is_due_so_a_clock_ahead_never_stalls_it(billing):
    body = Counter()
    job = Job("periods", body, every_s=60)
    run_due(billing, [job], T0 + timedelta(days=365), "tick")  # `tollgate admin tick --now` a year ahead
    assert len(run_due(billing, [job], T0, "live")) == 1
    assert run_due(billing, [job], T0 + timedelta(seconds=30), "live") == []


def test_a_failing_job_is_recorded_and_the_next_jobs_still_run(billing, caplog):
    caplog.errors_expected = True
    ok_before, ok_after = Counter({"n": 1}), Counter({"n": 2})
    broken = Counter(error=RuntimeError("target unreachable"))
    jobs = [Job("first", ok_before, every_s=10), Job("broken", broken, every_s=10), Job("last", ok_after, every_s=10)]
    runs = run_due(billing, jobs, T0, "h")
    assert [(r.job.name, r.ok) for r in runs] == [("first", True), ("broken", False), ("last", True)]
    assert runs[1].error == "RuntimeError: target unreachable"
    row = state(billing, "broken")
    assert (row.last_error, row.last_ok_at, row.last_finished_at, row.runs) == \
        ("RuntimeError: target unreachable", None, T0, 1)
    assert [r.levelname for r in caplog.records if r.name == "billing_core.scheduler"] == ["ERROR"]

    # The same failure again is recorded but not logged as a new error; a success clears it.
    caplog.clear()
    run_due(billing, jobs, T0 + timedelta(seconds=10), "h")
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
    broken.error = None
    run_due(billing, jobs, T0 + timedelta(seconds=20), "h")
    row = state(billing, "broken")
    assert (row.last_error, row.last_ok_at, row.runs) == (None, T0 + timedelta(seconds=20), 3)


def test_of_instances_finding_the_same_job_due_only_one_runs_it(billing):
    """The claim is a compare-and-set on last_started_at: a leader whose lease lapsed mid-run and its
    successor cannot both start the same run."""
    body = Counter()
    job = Job("dispatch", body, every_s=15)
    run_due(billing, [job], T0, "first")
    start = threading.Barrier(5)

    def contend(n: int) -> None:
        start.wait()
        run_due(billing, [job], T0 + timedelta(seconds=15), f"i{n}")

    threads = [threading.Thread(target=contend, args=(n,)) for n in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert len(body.calls) == 2 and state(billing, "dispatch").runs == 2


def test_a_manual_tick_runs_every_interval_job_and_only_due_cron_jobs_unless_forced(billing):
    poll, nightly = Counter(), Counter()
    jobs = [Job("poll", poll, every_s=3600), Job("nightly", nightly, cron="0 3 * * *")]
    noon = T0.replace(hour=12)
    assert [r.job.name for r in run_due(billing, jobs, noon, "tick", manual=True)] == ["poll", "nightly"]
    assert [r.job.name for r in run_due(billing, jobs, noon, "tick", manual=True)] == ["poll"]
    forced = run_due(billing, jobs, noon, "tick", manual=True, forced={"nightly"})
    assert [r.job.name for r in forced] == ["poll", "nightly"]
    assert state(billing, "poll").runs == 3 and state(billing, "nightly").runs == 2


def test_the_finish_time_comes_from_the_clock_when_one_is_given(billing):
    finished = T0 + timedelta(seconds=2)
    run_due(billing, [Job("slow", Counter(), every_s=5)], T0, "h", clock=lambda: finished)
    row = state(billing, "slow")
    assert (row.last_started_at, row.last_finished_at, row.last_ok_at) == (T0, finished, finished)


def test_a_long_summary_is_cut_to_whole_entries_and_stays_valid_json():
    summary = {f"target_{n}": {"delivered": n, "error": "x" * 40} for n in range(30)}
    text = short_json(summary)
    assert len(text) <= SUMMARY_MAX_CHARS
    parsed = json.loads(text)
    assert parsed["more"] is True and parsed["target_0"] == summary["target_0"]
    assert short_json({"a": 1}) == '{"a":1}'


def test_jobs_need_exactly_one_schedule_and_a_valid_cron():
    from billing_core.errors import Invalid

    with pytest.raises(ValueError):
        Job("x", Counter())
    with pytest.raises(ValueError):
        Job("x", Counter(), every_s=5, cron="* * * * *")
    with pytest.raises(Invalid):
        Job("x", Counter(), cron="61 * * * *")
    assert Job("x", Counter(), every_s=60).schedule == "every 60 s"
    assert Job("x", Counter(), cron="0 3 * * *").schedule == "cron 0 3 * * * (UTC)"


def test_the_registry_has_the_sync_jobs_only_when_targets_are_configured(sqlite_billing):
    names = [j.name for j in build_jobs(sqlite_billing, JobsConfig())]
    assert names == ["periods", "alerts", "notifications", "dispatch"]
    config = JobsConfig(sync=SimpleNamespace(targets=("file",)), sync_interval_s=2.5, reconcile_cron="30 4 * * *")
    jobs = {j.name: j for j in build_jobs(sqlite_billing, config)}
    assert list(jobs) == ["periods", "alerts", "notifications", "dispatch", "edge_sync", "reconcile"]
    assert (jobs["edge_sync"].every_s, jobs["reconcile"].cron, jobs["periods"].every_s) == (2.5, "30 4 * * *", 60)


def test_the_periods_job_closes_a_period_that_has_ended_exactly_once(billing):
    created = make_account(billing, now=T0 - timedelta(days=40))
    periods = next(j for j in build_jobs(billing, JobsConfig()) if j.name == "periods")
    first = run_due(billing, [periods], T0, "a")
    assert first[0].summary == {"accounts_checked": 1, "periods_closed": 1, "pools_expired": 0}
    assert run_due(billing, [periods], T0 + timedelta(seconds=1), "b", manual=True)[0].summary["periods_closed"] == 0
    with Session(billing.engine) as session:
        invoices = session.execute(select(Invoice).where(Invoice.account_id == created.account_id)).all()
    assert len(invoices) == 1
