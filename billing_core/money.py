"""Money as integer micro-dollars; Decimal only inside one price computation."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

MICROS_PER_USD = 1_000_000
# A sane ceiling for any single amount: 10^15 micros is a billion dollars.
MAX_MICROS = 10**15


def round_micros(amount: Decimal) -> int:
    """Round an exact amount of micros to a whole micro, half to even."""
    return int(amount.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def usd_to_micros(usd: str | int | Decimal) -> int:
    """Parse a USD amount given as text or integer ("12.50") into micros, exactly."""
    try:
        value = Decimal(str(usd).strip())
    except Exception as exc:  # decimal raises InvalidOperation, a bare ArithmeticError
        raise ValueError(f"not a USD amount: {usd!r}") from exc
    if not value.is_finite():
        raise ValueError(f"not a USD amount: {usd!r}")
    micros = value * MICROS_PER_USD
    if micros != micros.to_integral_value():
        raise ValueError(f"USD amount has more than 6 decimals: {usd!r}")
    return int(micros)


def format_usd(micros: int) -> str:
    """Show micros as dollars with cents, keeping sub-cent digits when present."""
    sign = "-" if micros < 0 else ""
    whole, frac = divmod(abs(micros), MICROS_PER_USD)
    frac_text = f"{frac:06d}".rstrip("0")
    frac_text = frac_text.ljust(2, "0")
    return f"{sign}${whole:,}.{frac_text}"
