"""The result shape shared by every metric: ``{metric, definition, parameters, rows}``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class MetricResult:
    """One metric's rows plus everything needed to read them.

    ``definition`` states the formula, the period, the cohort and activity rules in words;
    ``parameters`` holds the options used and the input facts (file, time zone, engine).
    Rates in ``rows`` are percentages (0-100) rounded to 4 decimals; money to 2.
    """

    metric: str
    definition: str
    parameters: dict[str, Any]
    rows: list[dict[str, Any]]
    summary: dict[str, Any] = field(default_factory=dict)

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


def money(value: float | None) -> float | None:
    """Round a money amount to cents (the amounts are doubles; sums keep their cents)."""
    return None if value is None else round(float(value), 2)
