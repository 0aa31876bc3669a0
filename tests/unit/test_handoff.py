"""The switch interval is short while big batches are recorded, and back to what it was after the last one."""

import sys
import threading

from billing_core.services.handoff import QUICK_SWITCH_S, quick_handoff


def test_the_short_interval_lasts_while_any_block_runs_and_the_usual_one_comes_back():
    usual = sys.getswitchinterval()
    assert usual != QUICK_SWITCH_S
    first_in, second_done, seen = threading.Event(), threading.Event(), []

    def first():
        with quick_handoff():
            first_in.set()
            second_done.wait(5)
            seen.append(sys.getswitchinterval())  # the other block has ended; this one still runs

    thread = threading.Thread(target=first)
    thread.start()
    first_in.wait(5)
    with quick_handoff():
        seen.append(sys.getswitchinterval())
    second_done.set()
    thread.join(5)
    assert seen == [QUICK_SWITCH_S, QUICK_SWITCH_S]
    assert sys.getswitchinterval() == usual


def test_an_error_in_the_block_still_restores_the_usual_interval():
    usual = sys.getswitchinterval()
    try:
        with quick_handoff():
            raise ValueError("recording failed")
    except ValueError:
        pass
    assert sys.getswitchinterval() == usual
