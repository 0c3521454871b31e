"""Turning fractional points into integers (points are always whole numbers)."""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal

from fidelite.program.rule import Rounding

ROUNDING_MODES = {
    Rounding.floor: ROUND_FLOOR,
    Rounding.ceil: ROUND_CEILING,
    Rounding.half_up: ROUND_HALF_UP,
    Rounding.half_even: ROUND_HALF_EVEN,
}

# CEL computes in binary floating point; a formula result is first rounded to this many
# decimal places so that 1.15 * 100 (114.99999999999999) counts as 115, not 114.
FORMULA_PLACES = Decimal("0.000001")


def to_points(value: Decimal, rounding: Rounding) -> int:
    """Round ``value`` to whole points with ``rounding``."""
    return int(value.quantize(Decimal(1), rounding=ROUNDING_MODES[rounding]))


def from_cel_number(value: object) -> Decimal:
    """A CEL formula result (int or double) as a Decimal; anything else is an error."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"a formula must give a number, got {type(value).__name__}")
    if isinstance(value, int):
        return Decimal(value)
    return Decimal(repr(value)).quantize(FORMULA_PLACES, rounding=ROUND_HALF_EVEN)
