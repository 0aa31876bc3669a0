"""The chain's bookkeeping (billing_core/services/chain.py): who is ahead of whom, and what a waiter gets."""

import threading

from billing_core.services.chain import Chain, State


def _state() -> State:
    return State({"id": "acc"}, (), frozenset({"p"}), {})


def test_each_batch_is_behind_the_newest_one_of_its_target_only():
    chain = Chain()
    first, ahead_of_first = chain.join("a")
    second, ahead_of_second = chain.join("a")
    other, ahead_of_other = chain.join("b")
    assert ahead_of_first is None and ahead_of_second is first and ahead_of_other is None
    chain.leave("a", first)  # not the newest any more: the second stays
    third, ahead_of_third = chain.join("a")
    assert ahead_of_third is second
    for target, link in (("a", second), ("a", third), ("b", other)):
        chain.leave(target, link)
    assert chain.join("a")[1] is None


def test_a_waiter_gets_what_was_published_or_nothing_when_the_batch_left_without():
    chain = Chain()
    published, _ = chain.join("a")
    got: list = []
    waiter = threading.Thread(target=lambda: got.append(published.wait()))
    waiter.start()
    state = _state()
    published.publish(state)
    waiter.join(5)
    assert got == [state]

    silent, _ = chain.join("b")
    chain.leave("b", silent)
    assert silent.wait() is None  # closed without a walk: the next batch walks over its own read
