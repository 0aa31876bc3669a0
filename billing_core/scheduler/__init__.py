"""Scheduled work: the jobs (jobs.py), the leader lease (lease.py), the runner that records each run
(runner.py), the live APScheduler ticks (live.py), what operators see of them (view.py) and who is an
operator (operators.py). See docs/scheduler.md."""
