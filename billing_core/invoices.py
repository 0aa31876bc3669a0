"""Invoices at period close and the proration of an upgrade."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from .money import round_micros
from .periods import Period

_US = timedelta(microseconds=1)


@dataclass(frozen=True)
class InvoiceLine:
    kind: str  # plan_fee | overage | proration
    description: str
    amount_micros: int


@dataclass(frozen=True)
class InvoiceDraft:
    period: Period
    plan: str
    lines: tuple[InvoiceLine, ...]

    @property
    def total_micros(self) -> int:
        return sum(line.amount_micros for line in self.lines)


def draft_invoice(*, period: Period, plan: str, plan_fee_micros: int, overage_micros: int,
                  proration_due_micros: int) -> InvoiceDraft:
    """The invoice for a closed period: plan fee, overage and any upgrade proration left unpaid."""
    lines = [InvoiceLine("plan_fee", f"{plan} plan", plan_fee_micros)]
    if overage_micros:
        lines.append(InvoiceLine("overage", "compute and tokens beyond allowance and credit", overage_micros))
    if proration_due_micros:
        lines.append(InvoiceLine("proration", "upgrade during the period", proration_due_micros))
    return InvoiceDraft(period=period, plan=plan, lines=tuple(lines))


def prorate_upgrade(*, old_price_micros: int, new_price_micros: int, period: Period, at: datetime) -> int:
    """The price difference for the fraction of the period still ahead, rounded once."""
    if new_price_micros <= old_price_micros or at >= period.end:
        return 0
    total_us = (period.end - period.start) // _US
    left_us = (period.end - max(at, period.start)) // _US
    return round_micros(Decimal(new_price_micros - old_price_micros) * left_us / total_us)

