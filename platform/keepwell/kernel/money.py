"""Money is integer minor units (cents) in storage and arithmetic, decimal strings at the edges.

Rounding happens here and nowhere else.
"""

from __future__ import annotations

from decimal import ROUND_FLOOR, ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal, InvalidOperation

from .errors import MoneyError

CENT = Decimal("0.01")
__all__ = ["CENT", "MoneyError", "floor_multiply", "format_cents", "percent_of", "to_cents"]


def to_cents(value: str | int | Decimal) -> int:
    """Parse a decimal amount ("12.34", "12", Decimal) into integer cents; refuses floats and sub-cent values."""
    if isinstance(value, float) or isinstance(value, bool):
        raise MoneyError(f"amount {value!r} must be a decimal string, not a float")
    try:
        d = Decimal(str(value).strip())
    except InvalidOperation:
        raise MoneyError(f"{value!r} is not a decimal amount") from None
    if not d.is_finite():
        raise MoneyError(f"{value!r} is not a finite amount")
    if d != d.quantize(CENT):
        raise MoneyError(f"{value!r} has more than two decimal places")
    return int(d * 100)


def format_cents(cents: int) -> str:
    """Integer cents to a decimal string with two places: 123456 -> "1234.56"."""
    sign = "-" if cents < 0 else ""
    whole, frac = divmod(abs(int(cents)), 100)
    return f"{sign}{whole}.{frac:02d}"


def percent_of(cents: int, percent: str | Decimal) -> int:
    """A percentage of an amount, rounded half-even to the cent."""
    return int((Decimal(cents) * Decimal(str(percent)) / 100).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def tax_of(cents: int, rate_percent: str | Decimal) -> int:
    """Tax at a rate (percent) on one line, rounded once, half-up to the cent (a credit line's
    tax is the same figure, negative)."""
    return int((Decimal(cents) * Decimal(str(rate_percent)) / 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def share_of(cents: int, part: int, whole: int) -> int:
    """`part`/`whole` of an amount (days of a period, say), rounded once, half-up, to the cent."""
    if whole <= 0:
        return 0
    return int((Decimal(cents) * part / whole).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def floor_multiply(points: int, multiplier: Decimal) -> int:
    """Points times a multiplier, rounded down: members never get fractional points."""
    return int((Decimal(points) * multiplier).to_integral_value(rounding=ROUND_FLOOR))
