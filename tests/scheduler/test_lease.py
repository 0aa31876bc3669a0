"""The leader lease on SQLite and PostgreSQL, with explicit times: first take, renewal, refusal while it
runs, takeover once it lapses, release, and a race that exactly one instance wins."""

from __future__ import annotations

import threading
from datetime import timedelta

from billing_core.scheduler import lease
from billing_core.scheduler.lease import LeaseView, leader, release, renew, try_acquire

from ..conftest import T0

LEASE_S = 15


def test_nobody_leads_before_any_instance_took_the_lease(billing):
    assert leader(billing.engine) == LeaseView(None, None, None)
    assert leader(billing.engine).leader(T0) is None


def test_the_first_instance_takes_the_lease_and_another_is_refused_while_it_runs(billing):
    assert try_acquire(billing.engine, "a", T0, LEASE_S)
    assert not try_acquire(billing.engine, "b", T0 + timedelta(seconds=14), LEASE_S)
    view = leader(billing.engine)
    assert view.holder == "a" and view.expires_at == T0 + timedelta(seconds=LEASE_S)
    assert view.leader(T0 + timedelta(seconds=14)) == "a"


def test_the_holder_renews_and_keeps_its_acquisition_time(billing):
    assert try_acquire(billing.engine, "a", T0, LEASE_S)
    assert try_acquire(billing.engine, "a", T0 + timedelta(seconds=10), LEASE_S, tick=True)
    assert renew(billing.engine, "a", T0 + timedelta(seconds=20), LEASE_S)
    view = leader(billing.engine)
    assert view.acquired_at == T0 and view.expires_at == T0 + timedelta(seconds=35)
    assert view.last_tick_at == T0 + timedelta(seconds=10)  # renew without tick leaves it
    assert not try_acquire(billing.engine, "b", T0 + timedelta(seconds=34), LEASE_S)


def test_another_instance_takes_over_once_the_lease_has_run_out(billing):
    assert try_acquire(billing.engine, "a", T0, LEASE_S)
    later = T0 + timedelta(seconds=LEASE_S, microseconds=1)
    assert try_acquire(billing.engine, "b", later, LEASE_S, tick=True)
    view = leader(billing.engine)
    assert (view.holder, view.acquired_at, view.last_tick_at) == ("b", later, later)
    # The old leader, back from a pause, can neither renew nor take it back while b's lease runs.
    assert not renew(billing.engine, "a", later, LEASE_S)
    assert not try_acquire(billing.engine, "a", later + timedelta(seconds=1), LEASE_S)


def test_a_lease_that_ends_exactly_now_is_still_held(billing):
    assert try_acquire(billing.engine, "a", T0, LEASE_S)
    assert not try_acquire(billing.engine, "b", T0 + timedelta(seconds=LEASE_S), LEASE_S)


def test_release_lets_the_next_instance_take_over_at_once_and_keeps_the_last_tick(billing):
    assert try_acquire(billing.engine, "a", T0, LEASE_S, tick=True)
    assert not release(billing.engine, "b", T0 + timedelta(seconds=1))  # only the holder releases
    assert release(billing.engine, "a", T0 + timedelta(seconds=1))
    view = leader(billing.engine)
    assert view.leader(T0 + timedelta(seconds=1)) is None and view.last_tick_at == T0
    assert try_acquire(billing.engine, "b", T0 + timedelta(seconds=2), LEASE_S)


def test_of_instances_racing_for_a_free_lease_exactly_one_wins(billing):
    """The first take is an INSERT: the primary key settles the race."""
    start, results = threading.Barrier(6), []

    def contend(name: str) -> None:
        start.wait()
        results.append((name, try_acquire(billing.engine, name, T0, LEASE_S)))

    threads = [threading.Thread(target=contend, args=(f"i{n}",)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    winners = [name for name, won in results if won]
    assert len(results) == 6 and len(winners) == 1
    assert leader(billing.engine).holder == winners[0]


def test_of_instances_racing_to_take_over_an_expired_lease_exactly_one_wins(billing):
    """A takeover is one conditional UPDATE: PostgreSQL re-checks the condition on the winner's row."""
    assert try_acquire(billing.engine, "old", T0, LEASE_S)
    later = T0 + timedelta(seconds=LEASE_S + 1)
    start, results = threading.Barrier(6), []

    def contend(name: str) -> None:
        start.wait()
        results.append(try_acquire(billing.engine, name, later, LEASE_S))

    threads = [threading.Thread(target=contend, args=(f"i{n}",)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert sorted(results) == [False] * 5 + [True]


def test_holder_names_are_unique_and_name_the_process():
    import os

    a, b = lease.new_holder(), lease.new_holder("tick:")
    assert a != b and f":{os.getpid()}:" in a and b.startswith("tick:")
