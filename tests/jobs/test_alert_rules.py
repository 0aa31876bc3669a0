"""The pure alert rules: which thresholds are due, given the numbers and what already fired."""

from __future__ import annotations

import dataclasses

import pytest

from billing_core.alerts import ALLOWANCE, DAILY_SPEND, LOW_CREDIT, Measures, Thresholds, due_alerts, subject_line

HOUR_MS = 3_600_000
NOTHING = frozenset()


def measures(used_ms: int = 0, *, included_ms: int = HOUR_MS, credit: int = 10_000_000, today: int = 0) -> Measures:
    return Measures(included_ms=included_ms, used_ms=used_ms, credit_micros=credit, today_spend_micros=today)


def keys(alerts) -> list[tuple[str, int]]:
    return [a.key for a in alerts]


@pytest.mark.parametrize("used_ms, due", [
    (0, []), (HOUR_MS // 2 - 1, []), (HOUR_MS // 2, [50]), (HOUR_MS * 8 // 10 - 1, [50]),
    (HOUR_MS * 8 // 10, [50, 80]), (HOUR_MS - 1, [50, 80]), (HOUR_MS, [50, 80, 100]), (2 * HOUR_MS, [50, 80, 100])])
def test_an_allowance_step_is_due_once_use_reaches_its_percent_exactly(used_ms, due):
    assert keys(due_alerts(Thresholds(), measures(used_ms), NOTHING)) == [(ALLOWANCE, p) for p in due]


def test_a_jump_past_several_steps_fires_each_step_in_ascending_order():
    alerts = due_alerts(Thresholds((100, 50, 80)), measures(HOUR_MS), NOTHING)
    assert keys(alerts) == [(ALLOWANCE, 50), (ALLOWANCE, 80), (ALLOWANCE, 100)]
    assert all(a.value == HOUR_MS for a in alerts)
    assert alerts[-1].text == "100 % of this period's included compute used (60 min of 60 min)."


def test_a_step_that_already_fired_this_period_is_not_due_again():
    fired = frozenset({(ALLOWANCE, 50), (ALLOWANCE, 80)})
    assert keys(due_alerts(Thresholds(), measures(HOUR_MS), fired)) == [(ALLOWANCE, 100)]
    assert due_alerts(Thresholds(), measures(HOUR_MS), fired | {(ALLOWANCE, 100)}) == ()


def test_switched_off_steps_and_a_period_without_allowance_never_fire():
    assert due_alerts(Thresholds(()), measures(HOUR_MS), NOTHING) == ()
    assert keys(due_alerts(Thresholds((100,)), measures(HOUR_MS), NOTHING)) == [(ALLOWANCE, 100)]
    assert due_alerts(Thresholds(), measures(5, included_ms=0), NOTHING) == ()


def test_daily_spend_is_due_when_todays_spend_reaches_the_threshold():
    rules = Thresholds((), daily_spend_micros=5_000_000)
    assert due_alerts(rules, measures(today=4_999_999), NOTHING) == ()
    (alert,) = due_alerts(rules, measures(today=5_000_000), NOTHING)
    assert (alert.kind, alert.threshold, alert.value) == (DAILY_SPEND, 5_000_000, 5_000_000)
    assert alert.text == "Today's spend reached $5.00 (alert at $5.00)."
    assert due_alerts(rules, measures(today=9_000_000), frozenset({(DAILY_SPEND, 5_000_000)})) == ()


def test_low_credit_is_due_when_credit_falls_strictly_below_the_threshold():
    rules = Thresholds((), low_credit_micros=2_000_000)
    assert due_alerts(rules, measures(credit=2_000_000), NOTHING) == ()
    (alert,) = due_alerts(rules, measures(credit=1_999_999), NOTHING)
    assert (alert.kind, alert.threshold, alert.value) == (LOW_CREDIT, 2_000_000, 1_999_999)
    (in_debt,) = due_alerts(rules, measures(credit=-360_000), NOTHING)
    assert in_debt.text == "Credit balance is -$0.36, below $2.00."


def test_a_changed_threshold_is_a_new_threshold_that_may_fire_in_the_same_period():
    fired = frozenset({(LOW_CREDIT, 2_000_000)})
    assert keys(due_alerts(Thresholds((), low_credit_micros=3_000_000), measures(credit=0), fired)) \
        == [(LOW_CREDIT, 3_000_000)]


def test_off_thresholds_are_never_due():
    assert due_alerts(Thresholds((), None, None), measures(HOUR_MS, credit=-10**9, today=10**12), NOTHING) == ()


def test_all_three_kinds_come_out_in_a_stable_order_with_their_event_types():
    alerts = due_alerts(Thresholds((50,), 1, 100), measures(HOUR_MS, credit=0, today=1), NOTHING)
    assert [a.event_type for a in alerts] == ["alert.allowance", "alert.daily_spend", "alert.low_credit"]
    assert [subject_line(a) for a in alerts] == ["Tollgate: 50 % of your included compute used",
                                                "Tollgate: today's spend reached $0.000001",
                                                "Tollgate: credit balance below $0.0001"]


def test_the_results_are_frozen():
    (alert,) = due_alerts(Thresholds((50,)), measures(HOUR_MS), NOTHING)
    with pytest.raises(dataclasses.FrozenInstanceError):
        alert.threshold = 80  # type: ignore[misc]
