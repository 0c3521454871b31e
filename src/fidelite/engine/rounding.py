"""Turning fractional points into integers (points are always whole numbers)."""

from __future__ import annotations

import math
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from fractions import Fraction
from math import ceil, floor

from fidelite.program.rule import MAX_AWARD, Rounding

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
    return round_points(value, ROUNDING_MODES[rounding])


# Below this magnitude an integer has at most 28 digits, the default decimal precision,
# so quantizing to units cannot fail and floor/ceil give exactly what quantize gives.
_EXACT_LIMIT = 10**28


def round_points(value: Decimal, mode: str) -> int:
    """``to_points`` with the decimal module's rounding ``mode`` (e.g. ``ROUND_FLOOR``).

    Floor and ceiling use ``math.floor``/``math.ceil`` (exact on ``Decimal``, and a
    third of the cost of ``quantize``); values too large for ``quantize`` still go
    through it, so they fail exactly as before.
    """
    if mode == ROUND_FLOOR:
        result = floor(value)
    elif mode == ROUND_CEILING:
        result = ceil(value)
    else:
        return int(value.quantize(_ONE, rounding=mode))
    if -_EXACT_LIMIT < result < _EXACT_LIMIT:
        return result
    return int(value.quantize(_ONE, rounding=mode))


_ONE = Decimal(1)

Rate = Decimal | Fraction
"""Points per money unit: a Decimal when it is short (:data:`SHORT_PLACES`), a Fraction
otherwise (3 points per 1.50 is 2; 1 point per 3 is 1/3)."""

SHORT_PLACES = 6
SHORT_BELOW = Decimal(10**6)
"""A rate of at most 6 decimal places below 10^6 is a Decimal: an amount (at most 10^10
with 4 places, ``fidelite.engine.event``) times it has at most 16 + 10 digits, and a
rule's total (with ``fixed`` and a formula, each at most 10^15) at most 28, so the
context's 28 digits hold every sum and product exactly and the usual operators (a
third of the cost of an unbounded context's methods) are used. Any other rate is a
Fraction, exact whatever its length."""


def rate_per(points: Decimal, per: Decimal) -> Rate:
    """``points / per`` exactly: the points of ``m`` money units are ``m * rate``, the
    exact ``m * points / per``, whatever the order of the operations.

    Computing ``m / per`` first in 28 digits, as before, put results that are whole
    numbers one point off: 21.5 / 1.5 = 14.33...3, x 3 = 42.99...9, floored to 42.
    """
    rate = Fraction(points) / Fraction(per)
    if rate.denominator == 1 and rate < SHORT_BELOW:
        return Decimal(rate.numerator)  # the usual case: 1, 3 per 1.50
    denominator, twos, fives = rate.denominator, 0, 0
    while denominator % 2 == 0:
        denominator //= 2
        twos += 1
    while denominator % 5 == 0:
        denominator //= 5
        fives += 1
    if denominator != 1:
        return rate  # no finite decimal expansion
    places = max(twos, fives)
    if places > SHORT_PLACES or rate >= SHORT_BELOW:
        return rate  # a long decimal: exact as a fraction
    return Decimal(f"{rate.numerator * 10**places // rate.denominator}E-{places}")


def round_fraction(value: Fraction, mode: str) -> int:
    """``round_points`` for an exact fraction (ties as ``mode`` says)."""
    if mode == ROUND_FLOOR:
        return floor(value)
    if mode == ROUND_CEILING:
        return ceil(value)
    if mode == ROUND_HALF_EVEN:
        return round(value)  # Fraction rounds ties to even
    assert mode == ROUND_HALF_UP  # ties away from zero
    magnitude = floor(abs(value) + Fraction(1, 2))
    return magnitude if value >= 0 else -magnitude


# MAX_AWARD (fidelite.program.rule, the ledger's largest credit) is the most points a
# formula may give (or take away), small enough that the Decimal of a formula result is
# exact to FORMULA_PLACES, and the most an event may earn in a currency: a rule whose
# points (after its caps) would take the event past it gives nothing and is traced
# (beyond_largest_award), as an oversized formula does.


_ROUNDABLE = Decimal(10**27)  # below it, quantize to units cannot fail (28 digits)


def award(value: Decimal | Fraction, mode: str) -> int:
    """A rule's exact points ``value`` rounded with ``mode``, however large (the caller
    turns away points beyond :data:`MAX_AWARD` once its caps are applied)."""
    if isinstance(value, Fraction):
        return round_fraction(value, mode)
    return round_points(value, mode) if value < _ROUNDABLE else floor(value)


def beyond_largest_award(points: int, before: int, currency: str) -> str:
    """Why a rule's ``points`` are turned away: with the ``before`` points the event's
    earlier rules gave in ``currency``, more than the ledger's largest award."""
    if before == 0:
        return f"came to {points} points, more than the largest award ({MAX_AWARD} points)"
    return (f"came to {points} points, which with the {before} {currency} of the rules "
            f"before it is more than the largest award ({MAX_AWARD} points)")  # fmt: skip


def from_cel_number(value: object) -> Decimal:
    """A CEL formula result (int or double) as a Decimal; anything else is an error.

    A result that is not finite (``inf`` from a division by zero) or beyond
    :data:`MAX_AWARD` either way raises ``ValueError`` saying so, which the trace shows.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"a formula must give a number, got {type(value).__name__}")
    if not -MAX_AWARD <= value <= MAX_AWARD:
        raise ValueError(_out_of_range(value))
    if isinstance(value, int):
        return Decimal(value)
    return Decimal(repr(value)).quantize(FORMULA_PLACES, rounding=ROUND_HALF_EVEN)


def _out_of_range(value: int | float) -> str:
    if not math.isfinite(value):
        return f"formula gave {value!r}, not a number of points (a division by zero?)"
    if value > 0:
        return f"formula gave {value!r}, more than the largest award ({MAX_AWARD} points)"
    return f"formula gave {value!r}, less than minus the largest award (-{MAX_AWARD} points)"
