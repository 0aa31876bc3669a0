"""cronspec: validation naming the field, next fire times across daylight saving, descriptions."""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billing_core.cronspec import describe, next_fire_times, parse_cron, parse_timezone
from billing_core.errors import Invalid

UTC = timezone.utc


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def hours_minutes(times: list[datetime]) -> list[str]:
    return [t.strftime("%m-%d %H:%M") for t in times]


# -- daylight saving ------------------------------------------------------------------------------
def test_a_daily_run_at_half_past_two_in_new_york_moves_an_hour_earlier_in_utc_after_spring_forward():
    times = next_fire_times("30 2 * * *", "America/New_York", now=at(2026, 3, 6))
    # 02:30 EST is 07:30 UTC; on March 8 02:30 does not exist and the run comes at 03:30 EDT (07:30 UTC);
    # from then on 02:30 EDT is 06:30 UTC.
    assert hours_minutes(times) == ["03-06 07:30", "03-07 07:30", "03-08 07:30", "03-09 06:30", "03-10 06:30"]
    assert all(t.tzinfo is UTC for t in times)


def test_weekday_mornings_in_berlin_move_an_hour_later_in_utc_after_the_october_change():
    times = next_fire_times("0 9 * * 1-5", "Europe/Berlin", now=at(2026, 10, 22))
    # CEST (UTC+2) ends on Sunday October 25; 09:00 CET is 08:00 UTC. The weekend is skipped.
    assert hours_minutes(times) == ["10-22 07:00", "10-23 07:00", "10-26 08:00", "10-27 08:00", "10-28 08:00"]
    berlin = [t.astimezone(ZoneInfo("Europe/Berlin")) for t in times]
    assert [t.strftime("%a %H:%M") for t in berlin] == ["Thu 09:00", "Fri 09:00", "Mon 09:00", "Tue 09:00",
                                                         "Wed 09:00"]


def test_a_fixed_time_inside_the_repeated_autumn_hour_fires_once_that_day():
    times = next_fire_times("30 1 * * *", "America/New_York", now=at(2026, 10, 31))
    assert hours_minutes(times) == ["10-31 05:30", "11-01 05:30", "11-02 06:30", "11-03 06:30", "11-04 06:30"]


def test_an_every_twenty_minutes_schedule_keeps_firing_through_the_repeated_hour():
    times = next_fire_times("*/20 1 * * *", "America/New_York", now=at(2026, 11, 1, 5), count=6)
    assert hours_minutes(times) == ["11-01 05:00", "11-01 05:20", "11-01 05:40", "11-01 06:00", "11-01 06:20",
                                    "11-01 06:40"]


# -- crontab meaning --------------------------------------------------------------------------------
@pytest.mark.parametrize("weekday", ["0", "7", "sun", "SUN"])
def test_sunday_is_zero_or_seven_or_its_name_as_in_crontab(weekday):
    times = next_fire_times(f"0 12 * * {weekday}", "UTC", now=at(2026, 1, 1))
    assert {t.strftime("%A") for t in times} == {"Sunday"}


def test_a_weekday_step_counts_from_sunday():
    times = next_fire_times("0 0 * * */2", "UTC", now=at(2026, 1, 4), count=4)  # 2026-01-04 is a Sunday
    assert [t.strftime("%a") for t in times] == ["Sun", "Tue", "Thu", "Sat"]


def test_when_day_of_month_and_weekday_are_both_given_either_one_fires():
    times = next_fire_times("0 0 1 * mon", "UTC", now=at(2026, 1, 1), count=6)
    assert [t.strftime("%m-%d %a") for t in times] == ["01-01 Thu", "01-05 Mon", "01-12 Mon", "01-19 Mon",
                                                        "01-26 Mon", "02-01 Sun"]


def test_next_runs_start_at_now_and_keep_the_minutes_of_the_expression():
    times = next_fire_times("*/15 * * * *", "UTC", now=at(2026, 1, 1, 10, 15))
    assert hours_minutes(times) == ["01-01 10:15", "01-01 10:30", "01-01 10:45", "01-01 11:00", "01-01 11:15"]


def test_the_29th_of_february_fires_in_leap_years_only():
    times = next_fire_times("0 0 29 2 *", "UTC", now=at(2026, 1, 1), count=2)
    assert [t.date().isoformat() for t in times] == ["2028-02-29", "2032-02-29"]


NO_DST_ZONES = ["UTC", "Asia/Tokyo", "Asia/Kolkata", "America/Phoenix"]


def _field(low: int, high: int):
    value = st.integers(low, high)
    single = value.map(str)
    span = st.tuples(value, value).map(lambda p: f"{min(p)}-{max(p)}")
    step = st.tuples(st.sampled_from(["*", f"{low}"]), st.integers(1, high - low + 1)).map(lambda p: f"{p[0]}/{p[1]}")
    return st.one_of(st.just("*"), single, span, step, st.lists(single, min_size=1, max_size=3).map(",".join))


@settings(max_examples=150, deadline=None)
@given(minute=_field(0, 59), hour=_field(0, 23), day=_field(1, 28), month=_field(1, 12), weekday=_field(0, 7),
       zone=st.sampled_from(NO_DST_ZONES))
def test_every_fire_time_matches_the_fields_on_the_local_clock(minute, hour, day, month, weekday, zone):
    spec = parse_cron(f"{minute} {hour} {day} {month} {weekday}")
    times = next_fire_times(spec, zone, now=at(2026, 5, 17, 13, 7))
    assert times == sorted(set(times)) and len(times) == 5
    for t in times:
        local = t.astimezone(ZoneInfo(zone))
        assert (local.minute in spec.minutes and local.hour in spec.hours and local.month in spec.months
                and local.second == 0)
        day_ok, weekday_ok = local.day in spec.days, (local.isoweekday() % 7) in spec.weekdays
        either = spec.days_restricted and spec.weekdays_restricted
        assert (day_ok or weekday_ok) if either else (day_ok and weekday_ok)


# -- validation ---------------------------------------------------------------------------------
@pytest.mark.parametrize("expression, words", [
    ("", "give 5 fields"),
    ("* * * *", "expected 5 fields"),
    ("* * * * * *", "got 6"),
    ("61 * * * *", "61 is outside the minute range 0-59"),
    ("0 24 * * *", "24 is outside the hour range 0-23"),
    ("0 0 0 * *", "0 is outside the day-of-month range 1-31"),
    ("0 0 * 13 *", "13 is outside the month range 1-12"),
    ("0 0 * * 8", "8 is outside the day-of-week range 0-7"),
    ("*/0 * * * *", "step"),
    ("30-10 * * * *", "runs backwards"),
    ("0 0 ? * *", "'?' is not valid in the day-of-month field"),
    ("0 0 L * *", "'L' is not a value of the day-of-month field"),
    ("0 0 * * mon#2", "not valid in the day-of-week field"),
    ("1,,2 * * * *", "empty item"),
    ("0 0 30 2 *", "never fires"),
    ("@daily", "expected 5 fields"),
    ("0 0 * * ｍｏｎ", "use digits"),
    ("0 " * 100, "at most 120 characters"),
])
def test_a_bad_cron_is_refused_with_a_message_naming_the_cron_field(expression, words):
    with pytest.raises(Invalid) as caught:
        parse_cron(expression)
    assert caught.value.code == "invalid_cron" and caught.value.status == 422
    assert caught.value.message.startswith("cron: ") and words in caught.value.message


def test_a_cron_is_stored_with_single_spaces():
    assert parse_cron("  0   9 *\t* 1-5 ").text == "0 9 * * 1-5"


@pytest.mark.parametrize("name, words", [
    ("Mars/Olympus", "is not an IANA time zone name"),
    ("america/new_york", "did you mean 'America/New_York'"),
    ("localtime", "is not an IANA time zone name"),
    ("../../etc/passwd", "is not an IANA time zone name"),
    ("/usr/share/zoneinfo/UTC", "is not an IANA time zone name"),
    ("UTC\x00", "is not an IANA time zone name"),
    ("", "give an IANA time zone name"),
    ("A" * 65, "at most 64 characters"),
    (5, "give an IANA time zone name"),
])
def test_a_bad_timezone_is_refused_with_a_message_naming_the_timezone_field(name, words):
    with pytest.raises(Invalid) as caught:
        parse_timezone(name)
    assert caught.value.code == "invalid_timezone"
    assert caught.value.message.startswith("timezone: ") and words in caught.value.message


def test_an_iana_zone_is_accepted():
    assert parse_timezone("America/New_York").key == "America/New_York"


# -- descriptions ---------------------------------------------------------------------------------
@pytest.mark.parametrize("expression, text", [
    ("0 9 * * 1-5", "At 09:00, Monday through Friday"),
    ("30 2 * * *", "At 02:30"),
    ("*/15 * * * *", "Every 15 minutes"),
    ("0 0 1 * mon", "At 00:00, on day 1 of the month, or on Monday"),
])
def test_a_schedule_is_described_in_words(expression, text):
    assert describe(expression) == text
