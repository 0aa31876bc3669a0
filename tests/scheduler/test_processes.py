"""The scheduler's commands as real processes: `tollgate admin tick --now` on a migrated SQLite file,
`tollgate admin make-operator`, and two `tollgate scheduler` processes on one PostgreSQL schema, one of
them killed with SIGKILL while it leads."""

from __future__ import annotations

import signal
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, select

from billing_core.db.engine import make_engine
from billing_core.db.identity import User
from billing_core.db.models import Invoice
from billing_core.db.operations import JobState
from billing_core.plans import load_catalog
from billing_core.scheduler.jobs import JOB_NAMES
from billing_core.scheduler.lease import leader
from billing_core.services import accounts
from billing_core.services.context import Billing
from billing_core.services.identity import create_user

from . import waiting
from ..live_server import (ROOT, TOLLGATE, copy_sqlite_template, create_account_cli, migrated_pg_schema, run_cli,
                           server_env)

WAIT_S = 15.0


def wait_for(condition, what: str, timeout: float = WAIT_S, logs: tuple[Path, ...] = ()):
    return waiting.wait_for(condition, what, timeout, poll_s=0.1, logs=logs)


def job_states(engine) -> dict[str, tuple]:
    with engine.connect() as conn:
        rows = conn.execute(select(JobState.name, JobState.runs, JobState.holder, JobState.last_started_at,
                                   JobState.last_error))
        return {r.name: r for r in rows}


@pytest.fixture
def sqlite_env(tmp_path, sqlite_template):
    url = copy_sqlite_template(sqlite_template, tmp_path)
    env = server_env(url, {"TOLLGATE_DATA_DIR": str(tmp_path)})
    engine = make_engine(url)
    yield env, engine
    engine.dispose()


def test_tick_runs_every_job_due_at_the_given_time_and_records_each_run(sqlite_env):
    env, engine = sqlite_env
    create_account_cli(env, "tick@example.com")
    at = (datetime.now(timezone.utc) + timedelta(days=40)).replace(hour=12, minute=0, second=0, microsecond=0)
    stamp = at.isoformat().replace("+00:00", "Z")
    done = run_cli(env, "admin", "tick", "--now", stamp)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "checked 1 accounts: closed 1 periods, expired 0 pools"
    assert [line.split(":")[0] for line in lines[1:]] == list(JOB_NAMES)
    assert all(": ok" in line for line in lines[1:]), done.stdout
    states = job_states(engine)
    assert sorted(states) == sorted(JOB_NAMES)
    assert all(s.runs == 1 and s.holder.startswith("tick:") and s.last_error is None for s in states.values())

    again = run_cli(env, "admin", "tick", "--now", stamp)
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[0] == "checked 0 accounts: closed 0 periods, expired 0 pools"
    next_3am = (at + timedelta(days=1)).replace(hour=3).isoformat().replace("+00:00", "Z")
    assert f"reconcile: not due (next {next_3am})" in again.stdout.splitlines()

    forced = run_cli(env, "admin", "tick", "--now", stamp, "--job", "reconcile")
    assert forced.returncode == 0 and forced.stdout.startswith("reconcile: ok"), forced.stderr
    assert job_states(engine)["reconcile"].runs == 2


def test_tick_refuses_an_unknown_job_in_one_line(sqlite_env):
    env, _ = sqlite_env
    done = run_cli(env, "admin", "tick", "--job", "nightly")
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [done.stderr.strip()]
    assert "no job named 'nightly'" in done.stderr and "periods" in done.stderr


def test_make_operator_flags_a_user_and_revoke_takes_the_flag_away(sqlite_env):
    env, engine = sqlite_env
    created = create_account_cli(env, "ops@example.com")
    billing = Billing(engine=engine, catalog=load_catalog())
    create_user(billing, account_id=created["account_id"], email="ops@example.com",
                password="correct horse battery staple 42", now=datetime.now(timezone.utc))

    def flag() -> bool:
        with engine.connect() as conn:
            return conn.execute(select(User.is_operator).where(User.email == "ops@example.com")).scalar_one()

    done = run_cli(env, "admin", "make-operator", "Ops@Example.com")
    assert done.returncode == 0 and "is now an operator" in done.stdout and flag() is True
    assert run_cli(env, "admin", "make-operator", "ops@example.com", "--revoke").returncode == 0
    assert flag() is False
    missing = run_cli(env, "admin", "make-operator", "nobody@example.com")
    assert missing.returncode != 0 and missing.stderr.strip() == "tollgate: No user with email nobody@example.com."


# -- several instances -------------------------------------------------------------------------------------
def _start(env: dict, log: Path) -> subprocess.Popen:
    with open(log, "wb") as out:
        return subprocess.Popen([str(TOLLGATE), "scheduler"], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT)


def _holder_pid(engine) -> int | None:
    holder = leader(engine).holder
    return int(holder.split(":")[-2]) if holder else None


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.kill()
        process.wait(timeout=10)


def test_two_scheduler_processes_run_each_due_job_once_and_the_survivor_takes_over(tmp_path):
    with migrated_pg_schema("tg_sched") as url:
        engine = make_engine(url)
        billing = Billing(engine=engine, catalog=load_catalog())
        # An account whose first period ended ten days ago: the periods job has exactly one invoice to make.
        created = accounts.create_account(billing, email="two@example.com", plan="hobby",
                                          now=datetime.now(timezone.utc) - timedelta(days=40))
        env = server_env(url, {"TOLLGATE_SCHEDULER_LEASE_S": "2", "TOLLGATE_DATA_DIR": str(tmp_path),
                               "TOLLGATE_SYNC_TARGETS": "file"})
        log_a, log_b = tmp_path / "a.log", tmp_path / "b.log"
        logs = (log_a, log_b)
        a = _start(env, log_a)
        b = None
        try:
            wait_for(lambda: _holder_pid(engine) == a.pid, "the first process to lead", logs=logs)
            b = _start(env, log_b)
            wait_for(lambda: "follower:" in log_b.read_text(), "the second process to follow", logs=logs)
            wait_for(lambda: "periods" in job_states(engine), "the periods job to run", logs=logs)

            def invoices() -> int:
                with engine.connect() as conn:
                    return conn.execute(select(func.count()).select_from(Invoice)
                                        .where(Invoice.account_id == created.account_id)).scalar_one()

            periods = job_states(engine)["periods"]
            assert invoices() == 1 and periods.runs == 1 and f":{a.pid}:" in periods.holder
            assert "leader:" in log_a.read_text() and "leader:" not in log_b.read_text()
            assert _holder_pid(engine) == a.pid

            a.send_signal(signal.SIGKILL)
            a.wait(timeout=10)
            wait_for(lambda: _holder_pid(engine) == b.pid, "the second process to take over", logs=logs)
            took_over = leader(engine).last_tick_at
            wait_for(lambda: leader(engine).last_tick_at > took_over, "the new leader to keep ticking", logs=logs)
            assert "leader:" in log_b.read_text()
            # The periods job ran a few seconds ago: the new leader does not run it again, nor invoice twice.
            assert job_states(engine)["periods"].runs == 1 and invoices() == 1
            wait_for(lambda: any(f":{b.pid}:" in s.holder for s in job_states(engine).values()),
                     "the new leader to run a job", logs=logs)

            b.send_signal(signal.SIGTERM)
            assert b.wait(timeout=15) == 0, log_b.read_text()[-2000:]
            assert log_b.read_text().rstrip().endswith("stopped")
            assert leader(engine).leader(datetime.now(timezone.utc)) is None  # released on the way out
        finally:
            _stop(a)
            if b is not None:
                _stop(b)
            engine.dispose()
