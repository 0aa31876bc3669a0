"""Invoices at period close and the proration of an upgrade."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing_core.invoices import InvoiceLine, draft_invoice, prorate_upgrade
from billing_core.periods import Period

from .builders import FAST

UTC = timezone.utc
PERIOD = Period(datetime(2026, 4, 1, tzinfo=UTC), datetime(2026, 5, 1, tzinfo=UTC))  # 30 days
MIDDLE = datetime(2026, 4, 16, tzinfo=UTC)


def test_invoice_lists_plan_fee_overage_and_proration_and_totals_them():
    draft = draft_invoice(period=PERIOD, plan="pro", plan_fee_micros=100_000_000, overage_micros=12_345,
                          proration_due_micros=50_000_000)
    assert [(line.kind, line.amount_micros) for line in draft.lines] == [
        ("plan_fee", 100_000_000), ("overage", 12_345), ("proration", 50_000_000)]
    assert draft.total_micros == 150_012_345
    assert draft.period == PERIOD and draft.plan == "pro"
    assert "pro" in draft.lines[0].description


def test_invoice_without_overage_or_proration_has_only_the_plan_fee():
    draft = draft_invoice(period=PERIOD, plan="starter", plan_fee_micros=20_000_000, overage_micros=0,
                          proration_due_micros=0)
    assert draft.lines == (InvoiceLine("plan_fee", "starter plan", 20_000_000),)
    assert draft.total_micros == 20_000_000


def test_hobby_invoice_has_a_zero_plan_fee_line_and_a_zero_total():
    draft = draft_invoice(period=PERIOD, plan="hobby", plan_fee_micros=0, overage_micros=0,
                          proration_due_micros=0)
    assert [line.kind for line in draft.lines] == ["plan_fee"]
    assert draft.total_micros == 0


def test_a_single_micro_of_overage_or_proration_still_gets_its_line():
    draft = draft_invoice(period=PERIOD, plan="pro", plan_fee_micros=100_000_000, overage_micros=1,
                          proration_due_micros=1)
    assert [(line.kind, line.amount_micros) for line in draft.lines] == [
        ("plan_fee", 100_000_000), ("overage", 1), ("proration", 1)]
    assert draft.total_micros == 100_000_002


@FAST
@given(fee=st.integers(0, 10**9), overage=st.integers(0, 10**9), proration=st.integers(0, 10**9))
def test_invoice_total_is_the_sum_of_its_lines(fee, overage, proration):
    draft = draft_invoice(period=PERIOD, plan="pro", plan_fee_micros=fee, overage_micros=overage,
                          proration_due_micros=proration)
    assert draft.total_micros == fee + overage + proration == sum(line.amount_micros for line in draft.lines)
    assert [line.kind for line in draft.lines] == (
        ["plan_fee"] + (["overage"] if overage else []) + (["proration"] if proration else []))


def test_upgrade_at_half_the_period_charges_half_the_difference():
    assert prorate_upgrade(old_price_micros=0, new_price_micros=100_000_000, period=PERIOD, at=MIDDLE) \
        == 50_000_000


def test_upgrade_at_the_start_charges_the_whole_difference():
    assert prorate_upgrade(old_price_micros=20_000_000, new_price_micros=100_000_000, period=PERIOD,
                           at=PERIOD.start) == 80_000_000


@pytest.mark.parametrize(("old", "new"), [(100_000_000, 20_000_000), (20_000_000, 0), (20_000_000, 20_000_000)])
def test_a_downgrade_or_a_same_price_change_charges_nothing(old, new):
    assert prorate_upgrade(old_price_micros=old, new_price_micros=new, period=PERIOD, at=MIDDLE) == 0


@pytest.mark.parametrize("at", [PERIOD.end, PERIOD.end + timedelta(days=3)])
def test_an_upgrade_at_or_after_the_period_end_charges_nothing(at):
    assert prorate_upgrade(old_price_micros=0, new_price_micros=100_000_000, period=PERIOD, at=at) == 0


@pytest.mark.parametrize(("difference", "micros"), [(1, 0), (3, 2), (5, 2), (7, 4)])  # 0.5, 1.5, 2.5, 3.5
def test_proration_is_rounded_once_half_to_even(difference, micros):
    assert prorate_upgrade(old_price_micros=0, new_price_micros=difference, period=PERIOD, at=MIDDLE) == micros


@FAST
@given(old=st.integers(0, 10**9), extra=st.integers(1, 10**9),
       elapsed=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=30)))
def test_proration_is_the_exact_fraction_left_rounded_half_to_even(old, extra, elapsed):
    at = PERIOD.start + elapsed
    total = PERIOD.end - PERIOD.start
    expected = round(Fraction(extra) * Fraction((PERIOD.end - at) // timedelta(microseconds=1),
                                                total // timedelta(microseconds=1)))
    result = prorate_upgrade(old_price_micros=old, new_price_micros=old + extra, period=PERIOD, at=at)
    assert result == expected
    assert 0 <= result <= extra
