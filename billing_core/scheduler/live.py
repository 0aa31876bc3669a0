"""The live scheduler: APScheduler ticks, the lease decides which instance acts on them.

Every instance (each app worker, each `tollgate scheduler`) runs one of these. A `lease` tick takes or
renews the lease each `tick_s`; one tick per job checks, while this instance leads, whether the job is due
and runs it (runner.run_due). The job ticks are separate APScheduler jobs, each in its own pool thread, so
a long run (the nightly reconciliation) neither delays the edge sync nor stops the lease being renewed.
When the leader dies, its lease runs out after `lease_s` and another instance's next lease tick takes it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from ..services.context import Billing
from . import lease
from .jobs import Job
from .runner import JobRun, run_due

log = logging.getLogger("billing_core.scheduler")

TICK_S = 1.0
EXECUTOR = "tollgate_ticks"
# APScheduler logs every run at INFO under its executor's name: one line per tick per job is noise, so only
# this executor's warnings and errors pass (what the ticks do is recorded in job_states and our own log).
logging.getLogger(f"apscheduler.executors.{EXECUTOR}").setLevel(logging.WARNING)
JOB_TICK_DELAY_S = 0.2
# Wake-up runs start at least this far apart, so a stream of commits (ingest at hundreds of requests a
# second) costs the sync's CPU ten times a second at most, not once per request.
WAKE_MIN_GAP_S = 0.1  # job ticks come just after lease ticks, so a fresh leader acts in the same second


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class SchedulerEvent:
    """What an instance saw: it began to lead ("leading"), another leads or nobody does ("following",
    with that leader's name), or one of its job runs ended ("run")."""

    kind: str
    holder: str | None = None
    run: JobRun | None = None


class LiveScheduler:
    """Lease and job ticks on an APScheduler BackgroundScheduler; `start()` returns at once, `stop()` waits for
    running jobs, then ends this instance's lease so another one takes over at its next tick."""

    def __init__(self, billing: Billing, jobs: Sequence[Job], *, lease_s: float = 15.0, tick_s: float = TICK_S,
                 holder: str | None = None, on_event: Callable[[SchedulerEvent], None] | None = None,
                 clock: Callable[[], datetime] = utcnow) -> None:
        if lease_s < 2 * tick_s:
            raise ValueError(f"the lease ({lease_s:g} s) must last at least two ticks ({tick_s:g} s each)")
        self.billing, self.jobs, self.lease_s, self.tick_s = billing, list(jobs), lease_s, tick_s
        self.holder = holder or lease.new_holder()
        self.on_event, self.clock = on_event, clock
        self._leading_until = 0.0  # time.monotonic() until which this instance may act as leader
        self._state: tuple[str, str | None] | None = None  # the last event told: (kind, leader)
        self._locks = {job.name: threading.Lock() for job in self.jobs}
        self._by_name = {job.name: job for job in self.jobs}
        self._wakes: set[str] = set()  # jobs with a wake-up queued and not yet started
        self._last_wake: dict[str, float] = {}  # time.monotonic() of each job's last wake-up run
        self._lease_turn = threading.Lock()
        self._scheduler: BackgroundScheduler | None = None
        self._led = False
        self._troubled: set[str] = set()  # ticks whose last database call failed: warned once, not every tick

    def _trouble(self, tick: str, what: str) -> None:
        if tick in self._troubled:
            log.debug("scheduler: %s, again", what, exc_info=True)
        else:
            self._troubled.add(tick)
            log.warning("scheduler: %s; retrying every tick", what, exc_info=True)

    def _fine(self, tick: str) -> None:
        if tick in self._troubled:
            self._troubled.discard(tick)
            log.info("scheduler: %s works again", tick)

    # -- ticks ---------------------------------------------------------------------------------------------
    @property
    def leading(self) -> bool:
        return time.monotonic() < self._leading_until

    def lease_tick(self) -> None:
        """Take or renew the lease; tell when leadership changed."""
        if not self._lease_turn.acquire(blocking=False):
            return  # the previous tick is still waiting for the database
        try:
            self._lease_tick()
        finally:
            self._lease_turn.release()

    def _lease_tick(self) -> None:
        started = time.monotonic()
        now = self.clock()
        try:
            won = lease.try_acquire(self.billing.engine, self.holder, now, self.lease_s, tick=True)
            current = self.holder if won else lease.leader(self.billing.engine).leader(now)
        except Exception:
            # The database did not answer: keep acting only until the lease we last wrote runs out.
            self._trouble("lease", "could not take or renew the lease")
            return
        self._fine("lease")
        if won:
            # Stop acting a tick before the lease runs out: by then another instance may take it.
            self._leading_until, self._led = started + self.lease_s - self.tick_s, True
            self._tell("leading", self.holder)
        else:
            self._leading_until = 0.0
            self._tell("following", current)

    def job_tick(self, job: Job) -> None:
        """Run the job if this instance leads and the job is due; one run of a job at a time."""
        if not self.leading:
            return
        turn = self._locks[job.name]
        if not turn.acquire(blocking=False):
            return  # its previous run is still going
        try:
            runs = run_due(self.billing, [job], self.clock(), self.holder, slack_s=self.tick_s / 2,
                           clock=self.clock)
        except Exception:  # the database, not the job (run_due records the job's own failures)
            self._trouble(f"job {job.name}", f"could not check job {job.name}")
            return
        finally:
            turn.release()
        self._fine(f"job {job.name}")
        for run in runs:
            self._emit(SchedulerEvent("run", self.holder, run))

    def wake(self, job_name: str) -> None:
        """Run this job as soon as possible, outside its schedule: a change it carries was just committed in
        this process (the edge sync: staleness becomes one delivery instead of up to one interval). Calls
        made before the wake-up starts share it; only the leader acts; it never blocks the caller."""
        scheduler, job = self._scheduler, self._by_name.get(job_name)
        if scheduler is None or job is None or not self.leading or job_name in self._wakes:
            return
        self._wakes.add(job_name)
        try:
            scheduler.add_job(self._woken, args=[job], executor=EXECUTOR)
        except Exception:  # shutting down: the job's own ticks carry the change
            self._wakes.discard(job_name)

    def _woken(self, job: Job) -> None:
        wait = self._last_wake.get(job.name, float("-inf")) + WAKE_MIN_GAP_S - time.monotonic()
        if wait > 0:
            time.sleep(wait)  # commits arriving meanwhile join this wake-up
        # Cleared before the run, so a change committed during it queues another wake-up.
        self._wakes.discard(job.name)
        self._last_wake[job.name] = time.monotonic()
        with self._locks[job.name]:  # after a tick's run of the same job, never beside it
            if not self.leading:
                return
            try:
                job.run(self.clock())
            except Exception:
                log.warning("scheduler: a wake-up run of %s failed; its next tick retries", job.name, exc_info=True)

    def _tell(self, kind: str, leader: str | None) -> None:
        if self._state == (kind, leader):
            return
        self._state = (kind, leader)
        if kind == "leading":
            log.info("scheduler: %s leads", self.holder)
        else:
            log.info("scheduler: %s follows %s", self.holder, leader or "nobody (the lease is free)")
        self._emit(SchedulerEvent(kind, leader))

    def _emit(self, event: SchedulerEvent) -> None:
        if self.on_event is None:
            return
        try:
            self.on_event(event)
        except Exception:
            log.warning("scheduler: the event listener failed", exc_info=True)

    # -- life ----------------------------------------------------------------------------------------------
    def start(self) -> None:
        if self._scheduler is not None:
            raise RuntimeError("the scheduler is already running")
        scheduler = BackgroundScheduler(
            timezone=timezone.utc, executors={EXECUTOR: ThreadPoolExecutor(len(self.jobs) + 2)},
            # A late tick still runs (no misfire limit) but never twice in a row (coalesce). Two instances
            # are allowed so that a tick arriving during a long run returns at once (job_tick's lock)
            # instead of APScheduler logging a skipped run every second.
            job_defaults={"coalesce": True, "max_instances": 2, "misfire_grace_time": None})
        first = utcnow()
        scheduler.add_job(self.lease_tick, "interval", seconds=self.tick_s, id="lease", executor=EXECUTOR,
                          next_run_time=first)
        for job in self.jobs:
            scheduler.add_job(self.job_tick, "interval", seconds=self.tick_s, args=[job], id=f"job:{job.name}",
                              executor=EXECUTOR, next_run_time=first + timedelta(seconds=JOB_TICK_DELAY_S))
        scheduler.start()
        self._scheduler = scheduler

    def stop(self) -> None:
        """Wait for the jobs that are running, then hand the lease back. Safe to call twice."""
        scheduler, self._scheduler = self._scheduler, None
        if scheduler is None:
            return
        scheduler.shutdown(wait=True)
        self._leading_until = 0.0
        if self._led:
            try:
                lease.release(self.billing.engine, self.holder, self.clock())
            except Exception:  # the lease then simply runs out
                log.warning("scheduler: could not release the lease", exc_info=True)
