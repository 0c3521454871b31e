"""The result shape shared by every metric: ``{metric, definition, parameters, rows}``."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import Any

MONEY_PLACES = 2
"""The decimals money is shown with unless told otherwise (cents): ``--money-places``."""
MAX_MONEY_PLACES = 4
"""The most decimals a money amount is shown with (ISO 4217 has none finer than 4)."""
_PLACES: ContextVar[int] = ContextVar("money_places", default=MONEY_PLACES)


@dataclass(frozen=True)
class MetricResult:
    """One metric's rows plus everything needed to read them.

    ``definition`` states the formula, the period, the cohort and activity rules in words;
    ``parameters`` holds the options used and the input facts (file, time zone, engine).
    Rates in ``rows`` are percentages (0-100) rounded to 4 decimals; money to 2 decimals
    (cents), or to the places :func:`money_places` sets (the money's minor unit).
    ``columns`` names a row's fields (not part of :meth:`to_dict`): a CSV output with
    no rows still has its header line.
    """

    metric: str
    definition: str
    parameters: dict[str, Any]
    rows: list[dict[str, Any]]
    summary: dict[str, Any] = field(default_factory=dict)
    # The fields of a row, in order: what a CSV header shows when there are no rows.
    columns: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "metric": self.metric,
            "definition": self.definition,
            "parameters": self.parameters,
            "rows": self.rows,
        }
        if self.summary:
            out["summary"] = self.summary
        return out


def percent(part: int | float, whole: int | float) -> float | None:
    """``part / whole * 100`` rounded to 4 decimals; ``None`` when ``whole`` is 0."""
    if not whole:
        return None
    return round(100.0 * part / whole, 4)


def at_least_percent(percentage: float, whole: int) -> int:
    """The smallest count that is at least ``percentage`` % of ``whole``: ceil(p x whole /
    100), computed exactly on the percentage as written (its shortest decimal form).

    A double product is not exact: 28 % of 25 gave 7.000000000000001 (8, not 7) and
    64.4 % of 250 gave 161.00000000000003 (162, not 161)."""
    return math.ceil(Decimal(repr(float(percentage))) * whole / 100)


def money(value: float | Decimal | None, places: int | None = None) -> float | None:
    """A money amount rounded to its minor unit, half away from zero: to ``places``
    decimals, by default those :func:`money_places` set, else cents (152.625 -> 152.63,
    -0.125 -> -0.13; with 3 places, Kuwaiti fils: 0.0455 -> 0.046; with 0, yen: 1234.5
    -> 1235.0), as a business rounds money it shows.

    A double is read as its shortest decimal form (``repr``), the figure it was written
    as, so 152.625 stored as 152.62499999... still rounds up. Round only for display:
    figures computed from money use the unrounded values.
    """
    if value is None:
        return None
    exact = value if isinstance(value, Decimal) else Decimal(repr(float(value)))
    if not exact.is_finite():
        return float(exact)
    unit = Decimal(1).scaleb(-(_PLACES.get() if places is None else places))
    with localcontext() as context:  # the minor units of an amount of any size (28
        context.prec = max(context.prec, exact.adjusted() + 6)  # digits stopped at 10^26)
        return float(exact.quantize(unit, rounding=ROUND_HALF_UP))


@contextmanager
def money_places(places: int) -> Iterator[None]:
    """Within the block, :func:`money` rounds to ``places`` decimals (0 to
    :data:`MAX_MONEY_PLACES`): the minor unit of the money the figures are in (JPY 0,
    KWD 3), which the metrics computed from a file cannot know (``--money-places``).

    The engines (DuckDB, Spark) compute the exact sums; every figure is rounded here, in
    this process, after them, so both round alike."""
    if not 0 <= places <= MAX_MONEY_PLACES:
        raise ValueError(f"money places must be 0 to {MAX_MONEY_PLACES}, not {places}")
    token = _PLACES.set(places)
    try:
        yield
    finally:
        _PLACES.reset(token)
