"""Five-field cron expressions in an IANA time zone: validation, next fire times and a description.

Fire times come from APScheduler's CronTrigger, which walks wall-clock time in the zone and so moves
with daylight saving. Two crontab rules APScheduler 3 does not follow are applied here:
- day-of-week numbers are crontab's (0 or 7 = Sunday), not APScheduler's (0 = Monday);
- when both day-of-month and day-of-week are restricted, a day matching either fires (Vixie cron).
"""

from __future__ import annotations

import heapq
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from itertools import islice
from typing import Iterator
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from apscheduler.triggers.cron import CronTrigger
from cron_descriptor import ExpressionDescriptor, Options

from .errors import Invalid

CRON_MAX_CHARS = 120  # the column's width
TIMEZONE_MAX_CHARS = 64
NEXT_RUNS = 5
FIELD_NAMES = "minute hour day-of-month month day-of-week"
MONTHS = {name: i for i, name in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split(), 1)}
DAYS = {name: i for i, name in enumerate("sun mon tue wed thu fri sat".split())}
APS_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")  # by crontab number; names mean the same to both
DAYS_IN_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)  # February's 29th exists in leap years
# Files in the zone database that are not zones a person would mean.
NOT_ZONES = frozenset({"localtime", "posixrules", "Factory"})
_ITEM = re.compile(r"^(\*|[a-z0-9]+(?:-[a-z0-9]+)?)(?:/([0-9]+))?$", re.IGNORECASE)


@dataclass(frozen=True)
class _Field:
    label: str
    low: int
    high: int
    names: dict[str, int] | None = None


_FIELDS = (_Field("minute", 0, 59), _Field("hour", 0, 23), _Field("day-of-month", 1, 31),
           _Field("month", 1, 12, MONTHS), _Field("day-of-week", 0, 7, DAYS))


@dataclass(frozen=True)
class CronSpec:
    """A checked expression: the text as stored (single spaces) and the value sets of its fields."""

    text: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    days_restricted: bool  # the field does not start with "*" (the Vixie rule for "either day matches")
    weekdays_restricted: bool
    fixed_time: bool  # neither minute nor hour starts with "*": a repeated wall-clock hour fires it once


def _bad(message: str) -> Invalid:
    return Invalid(f"cron: {message}", code="invalid_cron")


def _value(token: str, field: _Field) -> int:
    if token.isdigit():
        number = int(token)
    elif field.names and token.lower() in field.names:
        number = field.names[token.lower()]
    else:
        raise _bad(f"{token!r} is not a value of the {field.label} field.")
    if not field.low <= number <= field.high:
        raise _bad(f"{number} is outside the {field.label} range {field.low}-{field.high}.")
    return number


def _field_values(text: str, field: _Field) -> set[int]:
    values: set[int] = set()
    for item in text.split(","):
        match = _ITEM.match(item)
        if not match:
            raise _bad(f"{item!r} is not valid in the {field.label} field." if item
                       else f"the {field.label} field has an empty item.")
        span, step_text = match.groups()
        if span == "*":
            first, last = field.low, field.high
        elif "-" in span:
            first, last = (_value(part, field) for part in span.split("-"))
            if first > last:
                raise _bad(f"the {field.label} range {span} runs backwards.")
        else:
            first = _value(span, field)
            # "5/15" means from 5 to the end in steps of 15; a lone "5" is just 5.
            last = field.high if step_text else first
        step = int(step_text) if step_text else 1
        if step_text and not 1 <= step <= field.high - field.low + 1:
            raise _bad(f"the step in {item!r} must be between 1 and {field.high - field.low + 1}.")
        values.update(range(first, last + 1, step))
    return values


def parse_cron(expression: object) -> CronSpec:
    """The expression checked field by field; an Invalid naming `cron` says what is wrong."""
    if not isinstance(expression, str) or not expression.strip():
        raise _bad(f"give 5 fields ({FIELD_NAMES}), e.g. '30 2 * * *'.")
    if len(expression) > CRON_MAX_CHARS:
        raise _bad(f"at most {CRON_MAX_CHARS} characters.")
    if not expression.isascii():
        raise _bad("use digits, names such as 'mon' or 'jan', and the characters * , - / only.")
    parts = expression.split()
    if len(parts) != 5:
        raise _bad(f"expected 5 fields ({FIELD_NAMES}), got {len(parts)}.")
    minutes, hours, days, months, weekdays = (_field_values(p, f) for p, f in zip(parts, _FIELDS))
    weekdays = {d % 7 for d in weekdays}  # 7 is Sunday too
    spec = CronSpec(" ".join(parts), frozenset(minutes), frozenset(hours), frozenset(days), frozenset(months),
                    frozenset(weekdays), days_restricted=not parts[2].startswith("*"),
                    weekdays_restricted=not parts[4].startswith("*"),
                    fixed_time=not (parts[0].startswith("*") or parts[1].startswith("*")))
    either_day = spec.days_restricted and spec.weekdays_restricted
    if not either_day and not any(d <= DAYS_IN_MONTH[m - 1] for m in spec.months for d in spec.days):
        raise _bad("this schedule never fires: no chosen month has the chosen day of the month.")
    return spec


@lru_cache(maxsize=1)
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones()) - NOT_ZONES


def parse_timezone(name: object) -> ZoneInfo:
    """The IANA zone of that exact name; an Invalid naming `timezone` otherwise."""
    if not isinstance(name, str) or not name or len(name) > TIMEZONE_MAX_CHARS:
        raise Invalid(f"timezone: give an IANA time zone name of at most {TIMEZONE_MAX_CHARS} characters, "
                      "e.g. 'Europe/Berlin'.", code="invalid_timezone")
    names = _zone_names()
    zone = _load_zone(name) if name in names or (not names and name not in NOT_ZONES) else None
    if zone is not None:
        return zone
    hint = next((n for n in names if n.lower() == name.lower()), None)
    message = f"timezone: {name[:TIMEZONE_MAX_CHARS]!r} is not an IANA time zone name"
    raise Invalid(message + (f"; did you mean {hint!r}?" if hint else ", e.g. 'America/New_York'."),
                  code="invalid_timezone")


def _load_zone(name: str) -> ZoneInfo | None:
    """The zone, or None when its data cannot be read (then it is answered like an unknown name)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def _listed(values: frozenset[int], field: _Field) -> str:
    if values == frozenset(range(field.low, field.high + 1)):
        return "*"
    return ",".join(str(v) for v in sorted(values))


def _triggers(spec: CronSpec, zone: ZoneInfo) -> list[CronTrigger]:
    minute, hour = _listed(spec.minutes, _FIELDS[0]), _listed(spec.hours, _FIELDS[1])
    days, months = _listed(spec.days, _FIELDS[2]), _listed(spec.months, _FIELDS[3])
    weekdays = "*" if len(spec.weekdays) == 7 else ",".join(APS_DAYS[d] for d in sorted(spec.weekdays))

    def trigger(day: str, day_of_week: str) -> CronTrigger:
        return CronTrigger.from_crontab(f"{minute} {hour} {day} {months} {day_of_week}", timezone=zone)

    if spec.days_restricted and spec.weekdays_restricted:
        return [trigger(days, "*"), trigger("*", weekdays)]  # either day fires: the union of two triggers
    return [trigger(days, weekdays)]


def _fire_times(trigger: CronTrigger, now: datetime) -> Iterator[datetime]:
    previous = None
    while True:
        fire = trigger.get_next_fire_time(previous, previous or now)
        if fire is None:
            return
        yield fire
        previous = fire


def _repeated_wall_time(moment: datetime) -> bool:
    """True for the second pass through a wall-clock time that the autumn change repeats."""
    return moment.fold == 1 and moment.replace(fold=0).utcoffset() != moment.utcoffset()


def iter_fire_times(cron: str | CronSpec, tz: str, *, now: datetime) -> Iterator[datetime]:
    """The fire times at or after `now`, as aware UTC datetimes, computed one at a time as they are taken."""
    spec = cron if isinstance(cron, CronSpec) else parse_cron(cron)
    zone = parse_timezone(tz)
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    start = now.astimezone(zone)
    last = None
    for fire in heapq.merge(*(_fire_times(t, start) for t in _triggers(spec, zone))):
        if fire == last:
            continue  # both triggers of an either-day expression chose the same moment
        last = fire
        # Like cron, a job at a fixed time runs once on the day the clock goes back.
        if spec.fixed_time and _repeated_wall_time(fire):
            continue
        yield fire.astimezone(timezone.utc)


def next_fire_times(cron: str | CronSpec, tz: str, *, now: datetime, count: int = NEXT_RUNS) -> list[datetime]:
    """The next `count` fire times at or after `now`, as aware UTC datetimes."""
    return list(islice(iter_fire_times(cron, tz, now=now), count))


_DESCRIBE = Options(locale_code="en_US", use_24hour_time_format=True)


def describe(cron: str | CronSpec) -> str:
    """A sentence for people ("At 09:00, Monday through Friday"), in the schedule's own time zone."""
    text = cron.text if isinstance(cron, CronSpec) else parse_cron(cron).text
    try:
        return ExpressionDescriptor(text, _DESCRIBE).get_description()
    except Exception:  # the describer is a nicety; an expression it cannot word is still valid
        return f"Cron '{text}'"
