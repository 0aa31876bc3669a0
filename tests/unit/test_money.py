"""Money: integer micros, rounding half to even, exact parsing and display."""

from __future__ import annotations

from decimal import Decimal, localcontext
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing_core.money import MICROS_PER_USD, div_round_half_even, format_usd, round_micros, usd_to_micros

from .builders import FAST


@pytest.mark.parametrize(("amount", "expected"), [
    ("2.5", 2), ("3.5", 4), ("-2.5", -2), ("-3.5", -4), ("0.5", 0), ("1.5", 2),
    ("2.4999999", 2), ("2.5000001", 3), ("-2.5000001", -3), ("7", 7), ("0", 0),
])
def test_round_micros_rounds_half_to_even(amount, expected):
    result = round_micros(Decimal(amount))
    assert result == expected
    assert type(result) is int


@FAST
@given(coefficient=st.integers(-(10**20), 10**20), exponent=st.integers(0, 8))
def test_round_micros_equals_exact_half_even_rounding_of_the_fraction(coefficient, exponent):
    exact = Decimal(coefficient).scaleb(-exponent)  # exact: coefficient / 10**exponent
    assert round_micros(exact) == round(Fraction(coefficient, 10**exponent))


@pytest.mark.parametrize(("usd", "micros"), [
    ("12.50", 12_500_000), ("0.000001", 1), ("0", 0), ("1", 1_000_000), (" 3 ", 3_000_000),
    ("1.0000000", 1_000_000), (5, 5_000_000), (Decimal("1.5"), 1_500_000), ("100", 100_000_000),
])
def test_usd_to_micros_parses_amounts_exactly(usd, micros):
    result = usd_to_micros(usd)
    assert result == micros
    assert type(result) is int


@pytest.mark.parametrize("usd", ["0.0000001", "1.1234567", "0.0000005", "1e-7", Decimal("0.0000001")])
def test_usd_to_micros_rejects_more_than_six_decimals(usd):
    with pytest.raises(ValueError, match="more than 6 decimals"):
        usd_to_micros(usd)


@pytest.mark.parametrize("usd", ["NaN", "nan", "sNaN", "inf", "Infinity", "-Infinity", Decimal("NaN")])
def test_usd_to_micros_rejects_nan_and_infinity(usd):
    with pytest.raises(ValueError, match="not a USD amount"):
        usd_to_micros(usd)


@pytest.mark.parametrize("usd", ["", "  ", "abc", "$5", "1,000", "12.5.0", "5 USD", "0x10", None, True])
def test_usd_to_micros_rejects_garbage(usd):
    with pytest.raises(ValueError):
        usd_to_micros(usd)


@FAST
@given(micros=st.integers(-(10**15), 10**15))
def test_usd_to_micros_reads_back_every_amount_written_with_six_decimals(micros):
    sign = "-" if micros < 0 else ""
    whole, frac = divmod(abs(micros), MICROS_PER_USD)
    assert usd_to_micros(f"{sign}{whole}.{frac:06d}") == micros


@pytest.mark.parametrize(("usd", "exact_micros"), [
    ("1234567890123456789012345.678901", 1234567890123456789012345678901),
    ("10000000000000000000000.0000001", None),  # 7 decimals: must be rejected
])
def test_usd_to_micros_is_exact_or_refuses_for_very_large_amounts(usd, exact_micros):
    # Refusing a huge amount is a fine answer; returning a number that is not the exact amount is not.
    try:
        result = usd_to_micros(usd)
    except ValueError:
        return
    assert exact_micros is not None, f"{usd} has 7 decimals but was accepted as {result}"
    assert result == exact_micros


@pytest.mark.parametrize(("micros", "text"), [
    (0, "$0.00"), (1, "$0.000001"), (10_000, "$0.01"), (1_500_000, "$1.50"), (20_000_000, "$20.00"),
    (12_345_678, "$12.345678"), (1_234_567_890_000, "$1,234,567.89"), (-2_500_000, "-$2.50"),
    (-1, "-$0.000001"), (500_000_000, "$500.00"),
])
def test_format_usd_shows_dollars_with_cents_and_sub_cent_digits(micros, text):
    assert format_usd(micros) == text


@FAST
@given(micros=st.integers(-(10**15), 10**15))
def test_format_usd_round_trips_through_usd_to_micros(micros):
    text = format_usd(micros)
    assert usd_to_micros(text.replace("$", "").replace(",", "")) == micros


@pytest.mark.parametrize(("numerator", "denominator", "expected"), [
    (2500, 1000, 2), (3500, 1000, 4), (-2500, 1000, -2), (-3500, 1000, -4), (500, 1000, 0),
    (2499, 1000, 2), (2501, 1000, 3), (-2501, 1000, -3), (7, 1, 7), (0, 1000, 0), (1, 3, 0), (2, 3, 1),
])
def test_div_round_half_even_rounds_half_to_even(numerator, denominator, expected):
    assert div_round_half_even(numerator, denominator) == expected


@FAST
@given(numerator=st.integers(-(10**24), 10**24), denominator=st.integers(1, 10**9))
def test_div_round_half_even_equals_round_micros_of_the_exact_quotient(numerator, denominator):
    expected = round(Fraction(numerator, denominator))  # Fraction rounds half to even, exactly
    assert div_round_half_even(numerator, denominator) == expected
    with localcontext() as ctx:
        ctx.prec = 80
        quotient = Decimal(numerator) / denominator
        if quotient * denominator == numerator:  # the quotient has a finite decimal form: round_micros agrees
            assert round_micros(quotient) == expected
