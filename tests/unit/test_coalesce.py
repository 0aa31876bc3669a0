"""Group commit: batches that queue behind a running one for the same target go in one call, each caller
gets its own results back, failures reach exactly the callers of the failed group."""

import threading
import time
from datetime import timedelta

import pytest

from billing_core.services.coalesce import Coalescer
from billing_core.services.usage_events import MAX_BATCH, BatchResult, EventResult, UsageEventIn

from ..conftest import T0


def _events(tag: str, n: int) -> list[UsageEventIn]:
    return [UsageEventIn(id=f"{tag}-{i}", project_id="p", kind="compute", duration_ms=1000) for i in range(n)]


class Recorder:
    """Stands in for record_usage: notes every group it is given; the first call waits until released."""

    def __init__(self, fail_on: set[int] = frozenset(), hold_all: bool = False) -> None:
        self.calls: list[tuple[list[str], object]] = []
        self.first_started, self.release = threading.Event(), threading.Event()
        self.fail_on, self.hold_all = fail_on, hold_all

    def __call__(self, events, now):
        n = len(self.calls)
        self.calls.append(([e.id for e in events], now))
        if n == 0:
            self.first_started.set()
        if n == 0 or self.hold_all:
            assert self.release.wait(10)
        if n in self.fail_on:
            raise RuntimeError(f"group {n} failed")
        return BatchResult([EventResult(e.id, "accepted") for e in events], account=f"account after group {n}")


def _run_callers(coalescer, recorder, batches, target="acct", started=None):
    """The first batch alone, then the others once it is running; returns {tag: result or exception}."""
    outcomes = {}

    def call(tag, events, now):
        try:
            outcomes[tag] = coalescer.record(target, events, now, recorder)
        except Exception as exc:  # noqa: BLE001 - the outcome under test
            outcomes[tag] = exc

    tags = list(batches)
    first = threading.Thread(target=call, args=(tags[0], *batches[tags[0]]))
    first.start()
    assert recorder.first_started.wait(10)
    others = [threading.Thread(target=call, args=(tag, *batches[tag])) for tag in tags[1:]]
    for t in others:
        t.start()
        time.sleep(0.05)  # queued in this order
    recorder.release.set()
    for t in [first, *others]:
        t.join(10)
        assert not t.is_alive()
    return outcomes


def test_batches_queued_behind_a_running_one_are_recorded_together_in_order():
    coalescer, recorder = Coalescer(running=1), Recorder()
    batches = {"a": (_events("a", 2), T0), "b": (_events("b", 3), T0 + timedelta(seconds=2)),
               "c": (_events("c", 1), T0 + timedelta(seconds=1))}
    outcomes = _run_callers(coalescer, recorder, batches)

    assert [ids for ids, _ in recorder.calls] == [["a-0", "a-1"], ["b-0", "b-1", "b-2", "c-0"]]
    assert recorder.calls[1][1] == T0 + timedelta(seconds=2)  # the latest arrival's clock
    assert [r.id for r in outcomes["b"].results] == ["b-0", "b-1", "b-2"]
    assert [r.id for r in outcomes["c"].results] == ["c-0"]
    assert outcomes["b"].account == outcomes["c"].account == "account after group 1"
    assert outcomes["a"].account == "account after group 0"
    assert coalescer._targets == {}  # nothing left behind once idle


def test_a_failed_group_fails_its_callers_only():
    coalescer, recorder = Coalescer(running=1), Recorder(fail_on={1})
    batches = {"a": (_events("a", 1), T0), "b": (_events("b", 1), T0), "c": (_events("c", 1), T0)}
    outcomes = _run_callers(coalescer, recorder, batches)

    assert isinstance(outcomes["a"], BatchResult)
    assert isinstance(outcomes["b"], RuntimeError) and isinstance(outcomes["c"], RuntimeError)
    assert str(outcomes["b"]) == "group 1 failed"
    # The target is free again: the next caller runs at once.
    assert coalescer.record("acct", _events("d", 1), T0, recorder).account == "account after group 2"


def test_a_group_never_holds_more_than_one_batch_may():
    coalescer, recorder = Coalescer(running=1), Recorder()
    batches = {"a": (_events("a", 1), T0), "b": (_events("b", MAX_BATCH - 1), T0),
               "c": (_events("c", 2), T0), "d": (_events("d", 1), T0)}
    _run_callers(coalescer, recorder, batches)

    sizes = [len(ids) for ids, _ in recorder.calls]
    assert sizes == [1, MAX_BATCH - 1, 3]
    assert all(size <= MAX_BATCH for size in sizes)


def test_by_default_a_second_batch_runs_beside_the_first_and_the_third_queues():
    coalescer, recorder = Coalescer(), Recorder(hold_all=True)
    calls_before_release = []

    def release_when_three_arrived():
        time.sleep(0.3)
        calls_before_release.extend(ids for ids, _ in recorder.calls)
        recorder.release.set()

    batches = {"a": (_events("a", 1), T0), "b": (_events("b", 1), T0), "c": (_events("c", 1), T0),
               "d": (_events("d", 1), T0)}
    releaser = threading.Thread(target=release_when_three_arrived)
    outcomes = {}

    def call(tag):
        outcomes[tag] = coalescer.record("acct", *batches[tag], recorder)

    first = threading.Thread(target=call, args=("a",))
    first.start()
    assert recorder.first_started.wait(10)
    others = []
    for tag in "bcd":
        others.append(threading.Thread(target=call, args=(tag,)))
        others[-1].start()
        time.sleep(0.05)
    releaser.start()
    for t in [first, *others, releaser]:
        t.join(10)
    # b went straight in beside a (its call came before a was released); c and d waited and went together.
    assert calls_before_release == [["a-0"], ["b-0"]]
    assert [ids for ids, _ in recorder.calls] == [["a-0"], ["b-0"], ["c-0", "d-0"]]
    assert all([r.id for r in outcomes[t].results] == [f"{t}-0"] for t in "abcd")


def test_different_targets_do_not_wait_for_each_other():
    coalescer, recorder = Coalescer(), Recorder()
    blocked = threading.Thread(target=coalescer.record, args=("one", _events("a", 1), T0, recorder))
    blocked.start()
    assert recorder.first_started.wait(10)
    # "one" is held inside its first call; "two" is recorded at once all the same.
    result = coalescer.record("two", _events("b", 1), T0, recorder)
    assert [r.id for r in result.results] == ["b-0"]
    recorder.release.set()
    blocked.join(10)


@pytest.mark.parametrize("callers", [2, 16])
def test_many_callers_each_get_exactly_their_own_results(callers):
    coalescer = Coalescer(running=2)
    seen: list[list[str]] = []
    lock = threading.Lock()

    def record(events, now):
        time.sleep(0.002)
        with lock:
            seen.append([e.id for e in events])
        return BatchResult([EventResult(e.id, "accepted") for e in events], account=None)

    results = {}

    def call(k):
        for j in range(20):
            batch = _events(f"t{k}-{j}", 1 + (k + j) % 3)
            results[(k, j)] = ([e.id for e in batch], coalescer.record("acct", batch, T0, record))

    threads = [threading.Thread(target=call, args=(k,)) for k in range(callers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for sent, result in results.values():
        assert [r.id for r in result.results] == sent
    recorded = [i for group in seen for i in group]
    assert sorted(recorded) == sorted(i for sent, _ in results.values() for i in sent)  # each exactly once
