"""Benchmark comparison: any metric's figure against a reference value the business enters
(an industry norm, a previous period's figure, a competitor's).

The figure is a numeric column of the rows (``retention_rate`` per period) or a numeric
field of the summary (``pareto``'s ``top_revenue_share``, the 80/20 figure); a name
found in the rows is compared in the rows. Each row -- or the summary -- gains
``benchmark`` (the reference), ``difference`` (value - reference, in the figure's unit:
percentage points for rates), ``relative_difference`` (difference / reference x 100;
null when the reference is 0) and ``versus`` (``above``, ``below`` or ``equal``). A null
value (an undefined rate) gets nulls. The result keeps the metric's definition and
parameters and records the comparison in ``parameters.benchmark`` (``compared_in``:
``rows`` or ``summary``).

A metric run per segment (``parameters.segment_by``) has one summary per segment: a
field of theirs (``top_revenue_share``) is compared in every segment's summary, and
``SEGMENT.FIELD`` (``web.top_revenue_share``) in that segment's only;
``parameters.benchmark.segments`` lists the segments compared. A column found nowhere
is an error even when the result has no rows (a misspelt name is not silently
compared with nothing).

:func:`compare_previous` compares each period with the one before it instead (the
"previous period" reference): the rows must have a ``period`` column, in order; a row's
reference is the row before it in the same segment (rows split by ``segment`` when the
metric was run per segment), so the first period of each has none (nulls), and
``benchmark_period`` names the period compared with.

Errors name the input (the file, or ``<stdin>``) and the column, and list the numeric
row columns and summary fields there are to choose from; a value that is not a number
is shown as the JSON spells it (``false``, ``null``; a text in quotes).
"""

from __future__ import annotations

import copy
import json
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
    """A copy of a metric result (``{metric, definition, parameters, rows[, summary]}``)
    with the comparison added to each row, or to the summary when ``column`` is one of
    its fields and no row's: to each segment's summary when the metric ran per segment
    (``SEGMENT.FIELD`` names one segment's)."""
    rows = result.get("rows")
    summary = result.get("summary", {})
    if not isinstance(rows, list) or not isinstance(summary, dict) or "metric" not in result:
        raise InputError("not a metric result (expected metric and rows)", file=source)
    _rows_are_objects(rows, source)
    segments = _segment_summaries(result)
    choices = _choices(rows, summary, segments)
    in_rows = any(isinstance(r, dict) and column in r for r in rows)
    targets = {} if in_rows else _summary_targets(column, summary, segments)
    if not in_rows and not targets:
        where = "the rows or the summary" if rows else "the summary (the result has no rows)"
        raise InputError(f"no column '{column}' in {where} ({choices})", file=source,
                         column=column)  # fmt: skip
    out = copy.deepcopy(result)
    if targets:
        for segment, field in targets.items():
            place = out["summary"] if segment is None else out["summary"][segment]
            what = "the summary" if segment is None else f"the summary of segment '{segment}'"
            value = _number(place.get(field), source, column, None, choices, what)
            place.update(_compare(value, reference))
    else:
        for index, row in enumerate(out["rows"], start=1):
            value = _number(row.get(column), source, column, index, choices)
            row.update(_compare(value, reference))
    where = "summary" if targets else "rows"
    stated: dict[str, Any] = {
        "column": column, "reference": reference, "label": label, "compared_in": where,
    }  # fmt: skip
    scope = where
    named = [segment for segment in targets if segment is not None]
    if named:
        stated["segments"] = named
        scope = f"summary of segment{'s' if len(named) > 1 else ''} {', '.join(named)}"
    out["parameters"] = {**out.get("parameters", {}), "benchmark": stated}
    out["definition"] = (
        f"{out.get('definition', '')} Benchmark: {column} ({scope}) against {label} = "
        f"{reference:g}; difference = value - reference (percentage points for rates); "
        "relative_difference = difference / reference x 100."
    ).strip()
    return out


def _segment_summaries(result: dict[str, Any]) -> dict[str, dict[str, Any]] | None:
    """Segment -> its summary, when the metric ran per segment (``parameters.segment_by``)
    and its summary is one object per segment; else ``None``."""
    summary = result.get("summary")
    parameters = result.get("parameters")
    if not isinstance(parameters, dict) or "segment_by" not in parameters:
        return None
    if not isinstance(summary, dict) or not summary:
        return None
    if not all(isinstance(v, dict) for v in summary.values()):
        return None
    return {str(k): v for k, v in summary.items()}


def _summary_targets(
    column: str, summary: dict[str, Any], segments: dict[str, dict[str, Any]] | None
) -> dict[str | None, str]:
    """Where ``column`` is in the summary: ``{None: column}`` for a whole-file summary's
    field; per segment, ``{segment: field}`` for every segment's summary holding the field
    ``column``, or for the one segment that ``SEGMENT.FIELD`` names; ``{}`` when nowhere."""
    if segments is None:
        return {None: column} if column in summary else {}
    every: dict[str | None, str] = {s: column for s, own in segments.items() if column in own}
    if every:
        return every
    # SEGMENT.FIELD: a segment's name may hold a dot too, so try every split
    for segment, own in segments.items():
        field = column[len(segment) + 1 :]
        if column.startswith(f"{segment}.") and field in own:
            return {segment: field}
    return {}


def compare_previous(
    result: dict[str, Any], column: str, *, source: str = "<metric result>"
) -> dict[str, Any]:
    """A copy of a per-period metric result where each row's ``column`` is compared with
    the previous period's (the row before it in the same segment). The first period of
    a segment, and a row whose previous value is null, get null differences."""
    rows = result.get("rows")
    if not isinstance(rows, list) or "metric" not in result:
        raise InputError("not a metric result (expected metric and rows)", file=source)
    _rows_are_objects(rows, source)
    dict_rows = [r for r in rows if isinstance(r, dict)]
    choices = _choices(rows, result.get("summary") or {})
    if not dict_rows or not all("period" in r for r in dict_rows):
        raise InputError(
            "--previous compares each period with the one before it: the rows need a "
            "'period' column (run the metric with --period)",
            file=source,
            column="period",
        )
    if not any(column in r for r in dict_rows):
        raise InputError(f"no column '{column}' in the rows ({choices})", file=source,
                         column=column)  # fmt: skip
    out = copy.deepcopy(result)
    last: dict[Any, tuple[str, float | None]] = {}  # segment -> (period, value)
    for index, row in enumerate(out["rows"], start=1):
        value = _number(row.get(column), source, column, index, choices)
        segment = row.get("segment")
        before = last.get(segment)
        last[segment] = (str(row["period"]), value)
        if before is None or before[1] is None:
            row.update(_compare(None, None))
        else:
            row.update(_compare(value, before[1]))
        row["benchmark_period"] = None if before is None else before[0]
    out["parameters"] = {
        **out.get("parameters", {}),
        "benchmark": {"column": column, "reference": "previous period", "compared_in": "rows"},
    }
    out["definition"] = (
        f"{out.get('definition', '')} Benchmark: {column} against the previous period's "
        "(benchmark_period; within each segment); difference = value - previous value "
        "(percentage points for rates); relative_difference = difference / previous value "
        "x 100; the first period has no previous one (nulls)."
    ).strip()
    return out


def _rows_are_objects(rows: list[Any], source: str) -> None:
    """Every row is a JSON object, as a metric prints it; else an error naming the row."""
    for index, row in enumerate(rows, start=1):
        if not isinstance(row, dict):
            raise InputError(f"not an object of named values: {row!r}", file=source,
                             row=index, row_label="row")  # fmt: skip


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _numeric(items: list[dict[str, Any]]) -> list[str]:
    """The keys whose every value is a number or null (a rate undefined in every row is
    still a rate)."""
    keys = {k for item in items for k in item}
    return sorted(
        k for k in keys if all(item.get(k) is None or _is_number(item.get(k)) for item in items)
    )


def _choices(
    rows: list[Any], summary: dict[str, Any], segments: dict[str, dict[str, Any]] | None = None
) -> str:
    """What ``--column`` can name: the numeric row columns and summary fields (a per
    segment summary's: each segment's fields, compared in every segment)."""
    in_rows = _numeric([r for r in rows if isinstance(r, dict)])
    if segments is None:
        in_summary = ", ".join(_numeric([summary])) or "none"
        where = "the summary"
    else:
        in_summary = ", ".join(_numeric(list(segments.values()))) or "none"
        where = "each segment's summary (or SEGMENT.FIELD for one segment)"
    return (
        f"numeric columns in the rows: {', '.join(in_rows) or 'none'}; numeric fields in "
        f"{where}: {in_summary}"
    )


def _spelling(value: Any) -> str:
    """A value as the JSON input spells it (``false``, ``null``, ``[1, 2]``); a string
    in quotes."""
    if isinstance(value, str):
        return repr(value)
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):  # pragma: no cover - the input was read from JSON
        return repr(value)


def _number(
    value: Any,
    source: str,
    column: str,
    row: int | None,
    choices: str,
    where: str = "the summary",
) -> float | None:
    """``value`` when it is a number or null; else an error naming where it is."""
    if value is None:
        return None
    if _is_number(value):
        return float(value)
    if row is None:
        raise InputError(f"{_spelling(value)} in {where} is not a number ({choices})",
                         file=source, column=column)  # fmt: skip
    raise InputError(f"{_spelling(value)} is not a number ({choices})", file=source, row=row,
                     column=column, row_label="row")  # fmt: skip


def _compare(value: float | None, reference: float | None) -> dict[str, Any]:
    if value is None or reference is None:
        return {
            "benchmark": reference,
            "difference": None,
            "relative_difference": None,
            "versus": None,
        }
    diff = round(float(value) - reference, 4)
    rel = round(100.0 * diff / reference, 4) if reference else None
    versus = "above" if diff > 0 else "below" if diff < 0 else "equal"
    return {
        "benchmark": reference,
        "difference": diff,
        "relative_difference": rel,
        "versus": versus,
    }
