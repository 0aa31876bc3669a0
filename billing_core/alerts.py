"""Usage alert rules: which of an account's thresholds are crossed now and have not fired this period.

Pure: plain values in, frozen dataclasses out. The job (services/alerts.py) reads the numbers, asks
`due_alerts`, and records each answer once per period under a unique constraint.
"""

from __future__ import annotations

from dataclasses import dataclass

from .money import format_usd

ALLOWANCE, DAILY_SPEND, LOW_CREDIT = "allowance", "daily_spend", "low_credit"
KINDS = (ALLOWANCE, DAILY_SPEND, LOW_CREDIT)
EVENT_TYPES = {kind: f"alert.{kind}" for kind in KINDS}


@dataclass(frozen=True)
class Thresholds:
    """What the account asked to be told about (account settings; no row means the defaults)."""

    allowance_percents: tuple[int, ...] = (50, 80, 100)  # percent of the period's included compute
    daily_spend_micros: int | None = None  # a UTC day's charges reaching this; None: off
    low_credit_micros: int | None = None  # the credit balance falling below this; None: off


@dataclass(frozen=True)
class Measures:
    """The account's numbers now: allowance of the current period, credit, and today's (UTC) spend."""

    included_ms: int
    used_ms: int
    credit_micros: int
    today_spend_micros: int  # credit + overage + debt charged for today's usage (the daily rollups' cost)


@dataclass(frozen=True)
class Alert:
    kind: str  # allowance | daily_spend | low_credit
    threshold: int  # percent for allowance, micros for the others
    value: int  # what was measured: used_ms, today's spend or the credit balance
    text: str  # one line for the activity feed, the email and the webhook

    @property
    def key(self) -> tuple[str, int]:
        return (self.kind, self.threshold)

    @property
    def event_type(self) -> str:
        return EVENT_TYPES[self.kind]


def _minutes(ms: int) -> str:
    return f"{ms // 60_000:,} min"


def allowance_crossed(percent: int, measures: Measures) -> bool:
    """used >= percent % of included, in integers; a period without allowance has nothing to cross."""
    return measures.included_ms > 0 and measures.used_ms * 100 >= percent * measures.included_ms


def due_alerts(thresholds: Thresholds, measures: Measures, fired: frozenset[tuple[str, int]]) -> tuple[Alert, ...]:
    """Every threshold crossed now whose (kind, threshold) is not in `fired` (this period's), in a stable order:
    allowance ascending, then daily spend, then low credit. Each crossed allowance step fires on its own, so
    usage that jumps from 40 % to 100 % in one batch fires 50, 80 and 100 together."""
    due: list[Alert] = []
    for percent in sorted(set(thresholds.allowance_percents)):
        if (ALLOWANCE, percent) not in fired and allowance_crossed(percent, measures):
            due.append(Alert(ALLOWANCE, percent, measures.used_ms,
                             f"{percent} % of this period's included compute used "
                             f"({_minutes(measures.used_ms)} of {_minutes(measures.included_ms)})."))
    daily = thresholds.daily_spend_micros
    if daily is not None and (DAILY_SPEND, daily) not in fired and measures.today_spend_micros >= daily:
        due.append(Alert(DAILY_SPEND, daily, measures.today_spend_micros,
                         f"Today's spend reached {format_usd(measures.today_spend_micros)} "
                         f"(alert at {format_usd(daily)})."))
    low = thresholds.low_credit_micros
    if low is not None and (LOW_CREDIT, low) not in fired and measures.credit_micros < low:
        due.append(Alert(LOW_CREDIT, low, measures.credit_micros,
                         f"Credit balance is {format_usd(measures.credit_micros)}, below {format_usd(low)}."))
    return tuple(due)


def subject_line(alert: Alert) -> str:
    """An email subject that says which alert it is without opening it."""
    if alert.kind == ALLOWANCE:
        return f"Tollgate: {alert.threshold} % of your included compute used"
    if alert.kind == DAILY_SPEND:
        return f"Tollgate: today's spend reached {format_usd(alert.value)}"
    return f"Tollgate: credit balance below {format_usd(alert.threshold)}"
