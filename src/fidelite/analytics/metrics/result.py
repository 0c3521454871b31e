"""The result shape shared by every metric: ``{metric, definition, parameters, rows}``."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import Any

_CENT = Decimal("0.01")


@dataclass(frozen=True)
class MetricResult:
    """One metric's rows plus everything needed to read them.

    ``definition`` states the formula, the period, the cohort and activity rules in words;
    ``parameters`` holds the options used and the input facts (file, time zone, engine).
    Rates in ``rows`` are percentages (0-100) rounded to 4 decimals; money to 2.
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


def money(value: float | Decimal | None) -> float | None:
    """A money amount rounded to cents, half away from zero (152.625 -> 152.63,
    -0.125 -> -0.13), as a business rounds money it shows.

    A double is read as its shortest decimal form (``repr``), the figure it was written
    as, so 152.625 stored as 152.62499999... still rounds up. Round only for display:
    figures computed from money use the unrounded values.
    """
    if value is None:
        return None
    exact = value if isinstance(value, Decimal) else Decimal(repr(float(value)))
    if not exact.is_finite():
        return float(exact)
    with localcontext() as context:  # the cents of an amount of any size (28 digits
        context.prec = max(context.prec, exact.adjusted() + 4)  # stopped at 10^26)
        return float(exact.quantize(_CENT, rounding=ROUND_HALF_UP))
