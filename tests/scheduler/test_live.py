"""The live scheduler in this process: APScheduler ticks, the lease picks one acting instance, and the
other takes over when the leader stops (cleanly, or without a word). Fast ticks, bounded waits."""

from __future__ import annotations

import threading
import time

import pytest

from billing_core.scheduler.jobs import Job
from billing_core.scheduler.lease import leader
from billing_core.scheduler.live import LiveScheduler

from . import waiting

TICK_S, LEASE_S = 0.2, 1.0
WAIT_S = 10.0


def wait_for(condition, timeout: float = WAIT_S, what: str = "the condition"):
    return waiting.wait_for(condition, what, timeout)


class Recorder:
    def __init__(self) -> None:
        self.events, self.runs, self.lock = [], [], threading.Lock()

    def job(self, name: str):
        def body(now):
            with self.lock:
                self.runs.append((name, now))
            return {"ran": 1}
        return body

    def on_event(self, instance: str):
        def record(event):
            with self.lock:
                self.events.append((instance, event.kind, event.holder))
        return record


def make(billing, recorder: Recorder, name: str, every_s: float = 60.0) -> LiveScheduler:
    return LiveScheduler(billing, [Job("work", recorder.job(name), every_s=every_s)], lease_s=LEASE_S,
                         tick_s=TICK_S, holder=name, on_event=recorder.on_event(name))


def lead_and_follow(billing, recorder: Recorder, a: LiveScheduler, b: LiveScheduler) -> None:
    """Start a first (so it leads), then b, which follows it; return once the job's first run is done."""
    a.start()
    wait_for(lambda: leader(billing.engine).holder == "a", what="a to lead")
    b.start()
    wait_for(lambda: ("b", "following", "a") in recorder.events, what="b to follow a")
    wait_for(lambda: recorder.runs, what="the job to run")


def test_of_two_instances_one_leads_and_a_due_job_runs_once_then_the_other_takes_over(billing):
    recorder = Recorder()
    a, b = make(billing, recorder, "a"), make(billing, recorder, "b")
    try:
        lead_and_follow(billing, recorder, a, b)
        time.sleep(5 * TICK_S)  # several more ticks of both: the 60 s job is not due again
        assert [name for name, _ in recorder.runs] == ["a"]
        assert a.leading and not b.leading

        a.stop()  # a clean stop hands the lease back: b takes over at its next tick
        wait_for(lambda: leader(billing.engine).holder == "b", what="b to take over")
        assert ("b", "leading", "b") in recorder.events
        first_tick = leader(billing.engine).last_tick_at
        wait_for(lambda: leader(billing.engine).last_tick_at > first_tick, what="b to keep ticking")
        assert [name for name, _ in recorder.runs] == ["a"]  # still not due
    finally:
        a.stop()
        b.stop()


def test_when_the_leader_stops_without_releasing_the_other_takes_over_after_the_lease(billing):
    recorder = Recorder()
    a, b = make(billing, recorder, "a", every_s=0.1), make(billing, recorder, "b", every_s=0.1)
    a.start()
    try:
        wait_for(lambda: leader(billing.engine).holder == "a", what="a to lead")
        b.start()
        wait_for(lambda: ("b", "following", "a") in recorder.events, what="b to follow a")
        a._scheduler.shutdown(wait=True)  # a "dies": no more ticks, no release
        a._scheduler = None
        died = time.monotonic()
        wait_for(lambda: leader(billing.engine).holder == "b", what="b to take over")
        assert time.monotonic() - died >= LEASE_S - 2 * TICK_S  # not before a's lease had run out
        wait_for(lambda: any(name == "b" for name, _ in recorder.runs), what="b to run the job")
    finally:
        a.stop()
        b.stop()


def test_a_lease_shorter_than_two_ticks_is_refused(sqlite_billing):
    with pytest.raises(ValueError, match="at least two ticks"):
        LiveScheduler(sqlite_billing, [], lease_s=1.0, tick_s=1.0)


def test_a_wake_runs_the_job_at_once_on_the_leader_only_and_a_burst_shares_runs(billing):
    recorder = Recorder()
    a, b = make(billing, recorder, "a"), make(billing, recorder, "b")
    try:
        lead_and_follow(billing, recorder, a, b)
        b.wake("work")  # a follower does not act
        a.wake("no-such-job")  # nor does a name no job has
        time.sleep(3 * TICK_S)
        assert len(recorder.runs) == 1

        for _ in range(200):  # a burst of commits: the 60 s job runs again at once, a few times at most
            a.wake("work")
        wait_for(lambda: len(recorder.runs) >= 2, what="the wake-up run")
        time.sleep(0.5)
        assert 2 <= len(recorder.runs) <= 3, recorder.runs
        assert {name for name, _ in recorder.runs} == {"a"}
    finally:
        a.stop()
        b.stop()
