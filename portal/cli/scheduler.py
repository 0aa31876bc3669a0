"""`tollgate scheduler`: the scheduled jobs alone, in the foreground, until SIGTERM or Ctrl-C.

Run one beside app processes started with TOLLGATE_SCHEDULER_ENABLED=false, or several for failover: the
lease makes one of them act (docs/scheduler.md). It prints a line when leadership changes, when a job run
did something (the same summary again only once a minute), and when a job fails (once per distinct error).
"""

from __future__ import annotations

import json
import signal
import threading
import time
from datetime import datetime, timezone

import typer

from billing_core.scheduler.lease import new_holder
from billing_core.scheduler.live import SchedulerEvent

from ..scheduling import start_scheduler
from ..settings import get_settings
from .common import one_line_errors, open_billing

WAKE_S = 0.5  # how often the main thread looks at the stop flag (signals also wake it)
REPEAT_S = 60.0  # a job's unchanged summary (a target backing off, say) is printed again after this long


def format_summary(summary: dict) -> str:
    """key=value pairs, nested values as compact JSON."""
    return " ".join(f"{key}={value if isinstance(value, (int, float, str)) else json.dumps(value, default=str)}"
                    for key, value in summary.items())


def _quiet(value: object) -> bool:
    """Nothing happened: every number zero, every collection empty (recursively)."""
    if isinstance(value, dict):
        return all(_quiet(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return all(_quiet(v) for v in value)
    return not value


class EventPrinter:
    """Turns scheduler events into lines on stdout; called from the scheduler's threads."""

    def __init__(self, holder: str) -> None:
        self.holder = holder
        self._lock = threading.Lock()
        self._errors: dict[str, str] = {}  # job -> the failure last printed
        self._printed: dict[str, tuple[dict, float]] = {}  # job -> the summary last printed, and when

    def line(self, event: SchedulerEvent) -> str | None:
        if event.kind == "leading":
            return f"leader: this instance ({self.holder}) leads"
        if event.kind == "following":
            return f"follower: {event.holder} leads" if event.holder else "follower: nobody leads; waiting for the lease"
        run = event.run
        if run is None:
            return None
        name = run.job.name
        if not run.ok:
            if self._errors.get(name) == run.error:
                return None
            self._errors[name] = run.error
            return f"job {name} failed: {run.error}"
        recovered = self._errors.pop(name, None) is not None
        if _quiet(run.summary):
            return f"job {name}: ok again" if recovered else None
        last = self._printed.get(name)
        if last is not None and last[0] == run.summary and time.monotonic() - last[1] < REPEAT_S and not recovered:
            return None
        self._printed[name] = (run.summary, time.monotonic())
        return f"job {name}: {format_summary(run.summary)}"

    def __call__(self, event: SchedulerEvent) -> None:
        with self._lock:
            text = self.line(event)
            if text:
                stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
                print(f"{stamp} {text}", flush=True)


@one_line_errors
def scheduler() -> None:
    """Run the scheduled jobs in the foreground until SIGTERM or Ctrl-C; with several instances, one leads."""
    settings = get_settings()
    billing = open_billing()
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    printer = EventPrinter(new_holder())
    running = start_scheduler(settings, billing, on_event=printer, holder=printer.holder)
    jobs = ", ".join(f"{job.name} ({job.schedule})" for job in running.live.jobs)
    typer.echo(f"scheduler {running.live.holder}: lease {settings.scheduler_lease_s} s; jobs: {jobs}")
    try:
        # Short waits rather than one long one, so SIGINT/SIGTERM are handled promptly in the main thread.
        while not stop.wait(WAKE_S):
            continue
    finally:
        typer.echo("stopping: waiting for running jobs, then releasing the lease")
        running.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    typer.echo("stopped")
