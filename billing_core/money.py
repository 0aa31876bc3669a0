"""Money as integer micro-dollars; Decimal only inside one price computation."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, localcontext

MICROS_PER_USD = 1_000_000
# A sane ceiling for any single amount: 10^15 micros is a billion dollars.
MAX_MICROS = 10**15


def round_micros(amount: Decimal) -> int:
    """Round an exact amount of micros to a whole micro, half to even."""
    return int(amount.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def div_round_half_even(numerator: int, denominator: int) -> int:
    """numerator / denominator (denominator > 0) rounded to a whole micro, half to even: what round_micros
    gives for the same exact quotient, in integer arithmetic (a price is computed for every usage event)."""
    quotient, remainder = divmod(numerator, denominator)
    twice = 2 * remainder
    if twice > denominator or (twice == denominator and quotient % 2):
        quotient += 1
    return quotient


def usd_to_micros(usd: str | int | Decimal) -> int:
    """Parse a USD amount given as text or integer ("12.50") into micros, exactly, or refuse it."""
    text = str(usd).strip()
    if len(text) > 40:
        raise ValueError(f"not a USD amount: {text[:40]!r}...")
    try:
        value = Decimal(text)
    except Exception as exc:  # decimal raises InvalidOperation, a bare ArithmeticError
        raise ValueError(f"not a USD amount: {usd!r}") from exc
    if not value.is_finite():
        raise ValueError(f"not a USD amount: {usd!r}")
    if abs(value) * MICROS_PER_USD > MAX_MICROS:
        raise ValueError(f"USD amount is too large: {usd!r}")
    # 40 characters fit well inside 60 digits, so this product is exact, never rounded.
    micros = _exact_product(value, MICROS_PER_USD)
    if micros != micros.to_integral_value():
        raise ValueError(f"USD amount has more than 6 decimals: {usd!r}")
    return int(micros)


def _exact_product(value: Decimal, factor: int) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = 60
        return value * factor


def format_usd(micros: int) -> str:
    """Show micros as dollars with cents, keeping sub-cent digits when present."""
    sign = "-" if micros < 0 else ""
    whole, frac = divmod(abs(micros), MICROS_PER_USD)
    frac_text = f"{frac:06d}".rstrip("0")
    frac_text = frac_text.ljust(2, "0")
    return f"{sign}${whole:,}.{frac_text}"
