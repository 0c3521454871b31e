"""Benchmark comparison: any metric's rows against a reference value the business enters
(an industry norm, a previous period's figure, a competitor's).

For the chosen numeric column, each row gains ``benchmark`` (the reference),
``difference`` (value - reference, in the column's unit: percentage points for rates)
and ``relative_difference`` (difference / reference x 100; null when the reference is
0) and ``versus`` (``above``, ``below`` or ``equal``). Rows whose value is null (an
undefined rate) get nulls. The result keeps the metric's definition and parameters and
records the comparison in ``parameters.benchmark``.
"""

from __future__ import annotations

import copy
from typing import Any

from fidelite.analytics.errors import InputError


def compare(
    result: dict[str, Any],
    column: str,
    reference: float,
    label: str = "reference",
    *,
    source: str = "<metric result>",
) -> dict[str, Any]:
    """A copy of a metric result (``{metric, definition, parameters, rows}``) with the
    comparison columns added to each row."""
    rows = result.get("rows")
    if not isinstance(rows, list) or "metric" not in result:
        raise InputError("not a metric result (expected metric and rows)", file=source)
    if rows and all(column not in r for r in rows):
        choices = sorted(
            {
                k
                for r in rows
                for k, v in r.items()
                if isinstance(v, int | float) and not isinstance(v, bool)
            }
        )
        raise InputError(
            f"no column '{column}' in the rows (numeric columns: {', '.join(choices)})",
            file=source,
            column=column,
        )
    out = copy.deepcopy(result)
    for row in out["rows"]:
        row.update(_compare(row.get(column), reference))
    out["parameters"] = {
        **out.get("parameters", {}),
        "benchmark": {"column": column, "reference": reference, "label": label},
    }
    out["definition"] = (
        f"{out.get('definition', '')} Benchmark: {column} against {label} = {reference:g}; "
        "difference = value - reference (percentage points for rates); relative_difference "
        "= difference / reference x 100."
    ).strip()
    return out


def _compare(value: Any, reference: float) -> dict[str, Any]:
    if value is None:
        return {
            "benchmark": reference,
            "difference": None,
            "relative_difference": None,
            "versus": None,
        }
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(f"'{value}' is not a number", file="<metric result>")
    diff = round(float(value) - reference, 4)
    rel = round(100.0 * diff / reference, 4) if reference else None
    versus = "above" if diff > 0 else "below" if diff < 0 else "equal"
    return {
        "benchmark": reference,
        "difference": diff,
        "relative_difference": rel,
        "versus": versus,
    }
