"""Display helpers: integer units (ms, micros, counts) and times as short human text.

Pure functions over plain values, shared by every page; no Reflex, no I/O.
"""

from __future__ import annotations

from datetime import date, datetime, timezone

from billing_core.money import format_usd

MICROS_PER_USD = 1_000_000
_MS_PER_SECOND = 1000
_MS_PER_MINUTE = 60 * _MS_PER_SECOND
_MS_PER_HOUR = 60 * _MS_PER_MINUTE


def duration(ms: int | None) -> str:
    """Show milliseconds of compute as "0 s", "850 ms", "42 s", "12 min 5 s", "1 h 23 min"."""
    if ms is None:
        return "—"
    ms = int(ms)
    sign = "-" if ms < 0 else ""
    ms = abs(ms)
    if ms == 0:
        return "0 s"
    if ms < _MS_PER_SECOND:
        return f"{sign}{ms} ms"
    if ms < _MS_PER_MINUTE:
        seconds = ms / _MS_PER_SECOND
        text = f"{seconds:.1f}".rstrip("0").rstrip(".") if seconds < 10 else f"{ms // _MS_PER_SECOND}"
        return f"{sign}{text} s"
    if ms < _MS_PER_HOUR:
        minutes, rest = divmod(ms, _MS_PER_MINUTE)
        seconds = rest // _MS_PER_SECOND
        return f"{sign}{minutes} min {seconds} s" if seconds else f"{sign}{minutes} min"
    hours, rest = divmod(ms, _MS_PER_HOUR)
    minutes = rest // _MS_PER_MINUTE
    return f"{sign}{hours:,} h {minutes} min" if minutes else f"{sign}{hours:,} h"


def hours(ms: int | None, digits: int = 1) -> str:
    """Show milliseconds as decimal hours, e.g. "12.5 h" (for allowances and charts)."""
    if ms is None:
        return "—"
    return f"{ms / _MS_PER_HOUR:,.{digits}f} h"


def usd(micros: int | None) -> str:
    """Show micros as dollars: 12_340_000 -> "$12.34"; sub-cent digits are kept ("$0.0042")."""
    if micros is None:
        return "—"
    return format_usd(int(micros))


def usd_cents(micros: int | None) -> str:
    """Show micros rounded to whole cents for compact display: 12_345_678 -> "$12.35"."""
    if micros is None:
        return "—"
    micros = int(micros)
    sign = "-" if micros < 0 else ""
    cents = (abs(micros) + 5_000) // 10_000  # display only: round half up to a cent
    return f"{sign}${cents // 100:,}.{cents % 100:02d}"


def number(n: int | float | None) -> str:
    """Show a count with thousands separators; large counts compact: 1234 -> "1,234", 2_500_000 -> "2.5M"."""
    if n is None:
        return "—"
    value = abs(n)
    sign = "-" if n < 0 else ""
    for limit, suffix in ((1_000_000_000, "B"), (1_000_000, "M")):
        if value >= limit:
            text = f"{value / limit:.1f}".rstrip("0").rstrip(".")
            return f"{sign}{text}{suffix}"
    if isinstance(n, float) and not n.is_integer():
        return f"{n:,.1f}"
    return f"{int(n):,}"


def plural(n: int, word: str, words: str | None = None) -> str:
    """ "1 run", "3 runs"."""
    return f"{number(n)} {word if n == 1 else (words or word + 's')}"


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=timezone.utc)


def relative_time(dt: datetime | None, now: datetime) -> str:
    """Show how long ago (or until) `dt` is from `now`: "just now", "5 min ago", "in 3 days"."""
    if dt is None:
        return "—"
    seconds = int((_aware(now) - _aware(dt)).total_seconds())
    future = seconds < 0
    seconds = abs(seconds)
    if seconds < 45:
        return "just now" if not future else "in a moment"
    if seconds < 3600:
        text = f"{max(1, round(seconds / 60))} min"
    elif seconds < 86400:
        text = plural(round(seconds / 3600), "hour")
    elif seconds < 86400 * 45:
        text = plural(round(seconds / 86400), "day")
    elif seconds < 86400 * 365:
        text = plural(round(seconds / (86400 * 30)), "month")
    else:
        text = plural(round(seconds / (86400 * 365)), "year")
    return f"in {text}" if future else f"{text} ago"


def short_date(value: date | datetime | None) -> str:
    """Show a date as "Mar 5, 2025"."""
    if value is None:
        return "—"
    return f"{value:%b} {value.day}, {value.year}"


def timestamp(dt: datetime | None) -> str:
    """Show an exact UTC time as "2025-03-05 14:02 UTC" (for tooltips beside relative times)."""
    if dt is None:
        return "—"
    return _aware(dt).astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def percent(part: int, whole: int) -> int:
    """Whole percent of `part` in `whole`, clamped to 0..100 (for progress bars)."""
    if whole <= 0:
        return 100 if part > 0 else 0
    return max(0, min(100, (part * 100) // whole))
