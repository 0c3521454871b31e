"""Customer segments: every metric computed once per segment (SPEC §4).

A customer belongs to exactly one segment, so the per-segment counts of a metric add up
to the whole file's (customers, S, E, N...). The segment comes from one of:

* a column of the transactions file (``--segment-col channel``): the value on the
  customer's *first purchase*, the earliest instant among their purchases (refunds
  do not count). Purchases at that same earliest time with different values: the
  first non-empty value in byte order wins (upper case before lower case: ``Web``
  before ``store``), so the result does not depend on the order of the rows. A
  customer whose first purchase has no value (null or empty), or who has only
  refunds, is in ``(none)``. Later purchases in another channel leave the
  customer where they started: the segment says how the customer was acquired.
* a segments file (``--segments rfm.csv``): a CSV or Parquet file with a
  ``customer_id`` and a ``segment`` column (other columns are ignored, so the output
  of ``fidelite metrics rfm --format csv`` is one). A customer it does not list is in
  ``(none)``; a customer listed twice must have the same segment both times.

``(none)`` is the label of the customers with no segment, so neither the column nor the
segments file may hold it as a value (an error naming the file, line and column):
a real segment of that name would be merged with the customers who have none, and the
per-segment counts would be wrong without a word.

The assignment is computed once, in DuckDB, while loading: an ``assignments`` table of
``customer_id, segment`` and an extra ``segment`` column on the normalised table. Both
engines then read the same column, and one segment is the filter ``segment == value``
(:meth:`fidelite.analytics.engine.Dataset.for_segment`). Loading without segments adds
neither.

At most :data:`MAX_SEGMENTS` segments: each one is a full run of the metric, and past a
hundred the output is no longer read segment by segment.

Survey answers and subscriptions are split the same way
(:func:`segment_table`, :func:`by_table_segment`): by a column of their own file, the
value on the customer's first answer or first subscription, or by a segments file; each
segment lists the whole file's periods, so the segments add up to the whole file.

The segments are those of the transactions' customers; a metric that also counts
customers the transactions may not name (``coupons``' targeted customers) adds theirs
(:func:`by_segment`'s ``also``), so that every customer of the whole file's result is
in exactly one segment's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa

from fidelite.analytics.errors import InputError
from fidelite.analytics.io import (
    SEGMENT_ORDER,
    SEGMENT_VALUE,
    LoadOptions,
    Segmentation,
    _Checker,
    _quote,
    _raw_types,
    _register_raw,
    _segment_column,
    find_column,
    id_text,
    read_id,
)
from fidelite.analytics.metrics.result import MetricResult

if TYPE_CHECKING:
    from fidelite.analytics.engine import Dataset

NONE = "(none)"
MAX_SEGMENTS = 100
ASSIGNMENTS = "segment_assignments"
FILE_COLUMNS = ("customer_id", "segment")
RESERVED = f"{NONE} is kept for the customers with no segment; rename that segment"
# What each metric ranks among a segment's rows only, said in its per-segment definition.
RANKED_WITHIN = {
    "rfm": "RFM scores rank a customer among their segment's customers",
    "pareto": "the top customers are the top of their segment",
    "basket": "the top pairs and their support are counted in the segment's baskets",
}


def segment(
    con: duckdb.DuckDBPyConnection,
    base: str,
    table: str,
    kind: str,
    opts: LoadOptions,
    name: str,
) -> Segmentation:
    """Give every customer of ``base`` (the normalised table or view just loaded) a
    segment, and create ``table`` (a TABLE or VIEW, ``kind``) as ``base`` with a
    ``segment`` column. ``base`` is dropped when it was a copy."""
    if opts.segment_column is not None:
        _refuse_reserved_in_column(con, base, opts, name)
        _assign_by_column(con, base)
        by, shown = opts.segment_column, name
        rule = (
            f"a customer's segment is the value of column '{by}' on their first purchase "
            "(the earliest instant; refunds do not count; at equal times the first "
            "non-empty value in byte order, upper case before lower case), whatever their "
            f"later purchases; customers whose first purchase has no value, or with refunds "
            f"only, are in {NONE}"
        )
        keep = f"* EXCLUDE ({SEGMENT_VALUE}, {SEGMENT_ORDER})"
    else:
        assert opts.segments_file is not None
        by = shown = str(opts.segments_file)
        _assign_from_file(con, opts.segments_file)
        rule = (
            f"a customer's segment is the one the segments file {by} gives; customers it "
            f"does not list are in {NONE}"
        )
        keep = "*"
    con.execute(
        f"CREATE OR REPLACE {kind} {table} AS SELECT b.{keep}, "
        f"coalesce(a.segment, '{NONE}') AS segment "
        f"FROM {base} b LEFT JOIN {ASSIGNMENTS} a ON a.customer_id = b.customer_id"
    )
    if kind == "TABLE":
        con.execute(f"DROP TABLE {base}")
    found = [str(r[0]) for r in con.execute(f"SELECT DISTINCT segment FROM {table}").fetchall()]
    _refuse_too_many(found, opts.segment_column, shown)
    return Segmentation(by, rule, ordered(found), ASSIGNMENTS)


@dataclass(frozen=True)
class SegmentBy:
    """How the user asked to split the customers of a survey answers or subscriptions
    file: by a ``column`` of that file or by a segments ``file`` (at most one)."""

    column: str | None = None
    file: Path | None = None

    @property
    def given(self) -> bool:
        return self.column is not None or self.file is not None


def segment_value(checker: _Checker) -> str:
    """The SELECT item carrying a row's segment value (the checker's
    ``SEGMENT_VALUE`` column, trimmed, empty as null) into a normalised table; a value
    ``(none)`` is refused, naming its line, as in a transactions file."""
    value = f"NULLIF(trim(CAST({checker.col(SEGMENT_VALUE)} AS VARCHAR)), '')"
    checker.check(SEGMENT_VALUE, f"{value} = '{NONE}'", RESERVED)
    return f"{value} AS {SEGMENT_VALUE}"


def segment_table(
    con: duckdb.DuckDBPyConnection,
    table: str,
    name: str,
    by: SegmentBy,
    *,
    first: tuple[str, str],
) -> Segmentation:
    """Give every customer of ``table`` (normalised survey answers or subscriptions,
    file ``name``) a segment, by ``by``; ``first`` is ``(column, row)``, the column
    whose earliest value marks a customer's first row ("ts", "answer") for a segment
    column. The segment column's values (``SEGMENT_VALUE``) are then dropped."""
    if by.column is not None:
        order, row = first
        con.execute(
            f"""CREATE OR REPLACE TABLE {ASSIGNMENTS} AS
            WITH f AS (SELECT customer_id, min({order}) AS first FROM {table} GROUP BY 1)
            SELECT t.customer_id, min(t.{SEGMENT_VALUE}) AS segment
            FROM {table} t JOIN f ON t.customer_id = f.customer_id AND t.{order} = f.first
            GROUP BY t.customer_id"""
        )
        con.execute(f"ALTER TABLE {table} DROP COLUMN {SEGMENT_VALUE}")
        shown = name
        rule = (
            f"a customer's segment is the value of column '{by.column}' on their first "
            f"{row} (the earliest; at equal times the first non-empty value in byte order, "
            f"upper case before lower case), whatever their later ones; customers whose "
            f"first {row} has no value are in {NONE}"
        )
    else:
        assert by.file is not None
        shown = str(by.file)
        _assign_from_file(con, by.file)
        rule = (
            f"a customer's segment is the one the segments file {shown} gives; customers it "
            f"does not list are in {NONE}"
        )
    found = [
        str(r[0])
        for r in con.execute(
            f"SELECT DISTINCT coalesce(a.segment, '{NONE}') FROM {table} t "
            f"LEFT JOIN {ASSIGNMENTS} a ON a.customer_id = t.customer_id"
        ).fetchall()
    ]
    _refuse_too_many(found, by.column, shown)
    return Segmentation(by.column or shown, rule, ordered(found), ASSIGNMENTS)


def _refuse_too_many(found: list[str], column: str | None, shown: str) -> None:
    """At most :data:`MAX_SEGMENTS` segments, each a full run of the metric."""
    if len(found) <= MAX_SEGMENTS:
        return
    what = f"column '{column}'" if column is not None else "the segments file"
    fix = (
        "segment by a coarser column (e.g. channel or region)"
        if column is not None
        else "group the customers into fewer segments"
    )
    raise InputError(
        f"{len(found)} distinct segments in {what}: at most {MAX_SEGMENTS} are computed "
        f"one by one; {fix}",
        file=shown,
        column=column if column is not None else "segment",
    )


def ordered(values: list[str]) -> tuple[str, ...]:
    """Segments sorted, ``(none)`` last."""
    return tuple(sorted(v for v in values if v != NONE)) + ((NONE,) if NONE in values else ())


def _refuse_reserved_in_column(
    con: duckdb.DuckDBPyConnection, base: str, opts: LoadOptions, name: str
) -> None:
    """Refuse a value ``(none)`` in the segment column, naming its line.

    The normalised table keeps no line numbers, so the file is read again to find the
    line (only when the value is there: the check itself is one pass over one column).
    A source that cannot be read again (a program database's rows) is named without a
    row."""
    assert opts.segment_column is not None
    hit = con.execute(
        f"SELECT customer_id FROM {base} WHERE {SEGMENT_VALUE} = ? LIMIT 1", [NONE]
    ).fetchall()
    if not hit:
        return
    if opts.source_name is None:
        own = duckdb.connect()
        try:
            source = _register_raw(own, name, opts, name)
            column = _segment_column(_raw_types(own), opts.segment_column, name)
            checker = _Checker(own, name, name, source, {"segment": column},
                               delimiter=opts.delimiter)  # fmt: skip
            value = f"NULLIF(trim(CAST({checker.col('segment')} AS VARCHAR)), '')"
            checker.check("segment", f"{value} = '{NONE}'", RESERVED)
            checker.flush()
        finally:
            own.close()
    raise InputError(
        f"{RESERVED} (customer '{hit[0][0]}'): '{NONE}'", file=name, column=opts.segment_column
    )


def _assign_by_column(con: duckdb.DuckDBPyConnection, base: str) -> None:
    """Each customer's segment value on their first purchase (see the module rule): the
    earliest instant, not the earliest local time, which repeats an hour when the clocks
    go back."""
    con.execute(
        f"""CREATE OR REPLACE TABLE {ASSIGNMENTS} AS
        WITH p AS (SELECT customer_id, {SEGMENT_ORDER} AS ts, {SEGMENT_VALUE} AS v
                   FROM {base} WHERE NOT is_refund),
        f AS (SELECT customer_id, min(ts) AS ts FROM p GROUP BY customer_id)
        SELECT p.customer_id, min(p.v) AS segment
        FROM p JOIN f ON p.customer_id = f.customer_id AND p.ts = f.ts
        GROUP BY p.customer_id"""
    )


def _assign_from_file(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Read and check the segments file, then copy its assignments into ``con``.

    Read in a connection of its own: the transactions' ``raw`` view may still be in use
    (a lazily loaded table is a view over it). Errors name the file, row and column.
    """
    name = str(path)
    if not path.is_file():  # named as the segments file: an empty --segments is "."
        what = "is a directory, not a file" if path.is_dir() else "was not found"
        raise InputError(
            f"the segments file given to --segments, '{name}', {what}; name a CSV or "
            "Parquet file of customer_id,segment",
            file=name,
        )
    own = duckdb.connect()
    try:
        source = _register_raw(own, path, LoadOptions(), name)
        types = _raw_types(own)
        mapping = {}
        for column in FILE_COLUMNS:
            found = find_column(types, column)  # whatever its case
            if found is None:
                listed = ", ".join(types) or "none"
                raise InputError(
                    f"missing required column '{column}' in the segments file (columns "
                    f"found: {listed}); `fidelite metrics rfm --format csv` writes one",
                    file=name,
                    column=column,
                )
            mapping[column] = found
        checker = _Checker(own, path, name, source, mapping)
        checker.count_rows("segments")
        # the customer id as the transactions read it (1001.0 of a float column is 1001),
        # its check queued before the one for a missing value
        text = {
            "customer_id": f"NULLIF({id_text(checker)}, '')",
            "segment": f"NULLIF(trim(CAST({checker.col('segment')} AS VARCHAR)), '')",
        }
        for column in FILE_COLUMNS:
            checker.check(column, f"{text[column]} IS NULL", f"missing {column}")
        checker.check("segment", f"{text['segment']} = '{NONE}'", RESERVED)
        checker.flush()
        # the validation scan found how the ids are written (1001.0 of a CSV of pandas)
        text["customer_id"] = f"NULLIF({read_id(checker)}, '')"
        _refuse_two_segments(checker, text["customer_id"], text["segment"])
        rows = own.sql(
            f"SELECT DISTINCT {text['customer_id']} AS customer_id, "
            f"{text['segment']} AS segment FROM raw"
        ).to_arrow_table()
    except duckdb.OutOfMemoryException:
        raise  # no fault of the file: the memory limit's (fidelite.analytics.resources)
    except duckdb.Error as exc:
        raise InputError(f"cannot read the segments file: {exc}", file=name) from exc
    finally:
        own.close()
    con.register("segment_rows", rows)
    con.execute(f"CREATE OR REPLACE TABLE {ASSIGNMENTS} AS SELECT * FROM segment_rows")
    con.unregister("segment_rows")


def _refuse_two_segments(checker: _Checker, customer: str, seg: str) -> None:
    """A customer listed again with another segment: an error naming both rows."""
    found = checker.scan(
        f"""SELECT n, c, s, first_s, first_n FROM (
            SELECT n, c, s, first_value(s) OVER w AS first_s, first_value(n) OVER w AS first_n
            FROM (SELECT row_number() OVER () AS n, {customer} AS c, {seg} AS s FROM raw)
            WINDOW w AS (PARTITION BY c ORDER BY n)
        ) WHERE s <> first_s ORDER BY n LIMIT 1"""
    )
    if not found:
        return
    n, customer_id, value, first_value, first_n = found[0]
    first = checker.fail("segment", "", "", int(first_n))
    label = "line" if checker.layout is not None else "row"
    where = f"{label} {first.row}" if first.row is not None else "above"
    raise checker.fail(
        "segment",
        str(value),
        f"customer '{customer_id}' is in segment '{first_value}' ({where}) and in "
        f"'{value}' here: a customer belongs to one segment",
        int(n),
    )


def by_segment(
    ds: Dataset,
    compute: Callable[[Dataset], MetricResult],
    progress: Callable[[str, int, int], Any] | None = None,
    *,
    also: tuple[pa.Table, str] | None = None,
) -> MetricResult:
    """``compute`` once per segment of ``ds``, as one result.

    Rows gain a leading ``segment`` field, in segment order (sorted, ``(none)`` last),
    and all have the same fields (null where a segment's rows have none);
    a row's own ``segment`` (RFM's named segment) is renamed ``<metric>_segment``;
    the declared ``columns`` are ``segment`` and every segment's, so that a CSV output
    with no row in any segment still has its header line;
    the definition ends with the segment rule; ``parameters.segment_by`` names the
    segment column or file (only here: an output of the whole file's rows, such as the
    report's metrics, has none, though its input has segments); a summary becomes one
    per segment, keyed by the segment, and so does a parameter whose value differs
    between segments (a count of the data such as basket's ``baskets``; the options and
    the observation days are the same for every segment). ``progress(segment, i, n)``
    is called before each segment.

    ``also`` is ``(customers, name)``: a table of customers (``customer_id``) the
    metric counts besides the transactions' (``coupons``' targeted customers, from the
    file ``name``); their segments are computed too, even one with no transactions,
    so each of them is counted in exactly one segment, as in the whole file's result.
    """
    segmentation = ds.loaded.segmentation
    if segmentation is None:
        return compute(ds)
    values = segmentation.values
    if also is not None:
        values = ordered(list({*values, *segments_of(ds, also[0])}))
        if len(values) > MAX_SEGMENTS:
            raise InputError(
                f"{len(values)} distinct segments among the customers of the transactions "
                f"and of {also[1]} (segments by {segmentation.by}): at most {MAX_SEGMENTS} "
                "are computed one by one; group the customers into fewer segments",
                file=also[1],
            )
    observed = (
        "but observed over the whole file's days: the last day in the data is the file's "
        "for every segment"
    )
    return combine(
        segmentation,
        values,
        lambda value: compute(ds.for_segment(value)),
        observed,
        progress,
    )


def by_table_segment(
    con: duckdb.DuckDBPyConnection,
    table: str,
    segmentation: Segmentation,
    compute: Callable[[str], MetricResult],
    progress: Callable[[str, int, int], Any] | None = None,
) -> MetricResult:
    """``compute(view)`` once per segment of ``table`` (survey answers, subscriptions),
    ``view`` being a DuckDB view of the rows of that segment's customers; the rows
    combined as :func:`by_segment` does. ``compute`` lists the whole file's periods for
    every segment (the metrics' ``days`` and ``span``), so that segments compare period
    by period and their counts add up to the whole file's."""

    def one(value: str) -> MetricResult:
        view = f"{table}_segment"
        con.execute(
            f"CREATE OR REPLACE VIEW {view} AS SELECT t.* FROM {table} t "
            f"LEFT JOIN {segmentation.assignments} a ON a.customer_id = t.customer_id "
            f"WHERE coalesce(a.segment, '{NONE}') = {_quote(value)}"
        )
        try:
            return compute(view)
        finally:
            con.execute(f"DROP VIEW {view}")

    observed = "over the whole file's periods (the same for every segment)"
    return combine(segmentation, segmentation.values, one, observed, progress)


def combine(
    segmentation: Segmentation,
    values: tuple[str, ...],
    compute: Callable[[str], MetricResult],
    observed: str,
    progress: Callable[[str, int, int], Any] | None = None,
) -> MetricResult:
    """``compute(value)`` for each segment ``value``, as one result (see
    :func:`by_segment` for its shape); ``observed`` says in the definition over which
    days a segment is observed."""
    rows: list[dict[str, Any]] = []
    columns: dict[str, None] = {"segment": None}  # every segment's, in order: an ordered set
    summary: dict[str, Any] = {}
    parameters: dict[str, dict[str, Any]] = {}
    first: MetricResult | None = None
    for i, value in enumerate(values, 1):
        if progress is not None:
            progress(value, i, len(values))
        result = compute(value)
        first = first or result
        rows += [{"segment": value, **_own_segment(row, result.metric)} for row in result.rows]
        columns.update(dict.fromkeys(_own_segment(dict.fromkeys(result.columns), result.metric)))
        if result.summary:
            summary[value] = result.summary
        for key, given in result.parameters.items():
            parameters.setdefault(key, {})[value] = given
    if first is None:  # pragma: no cover - a loaded table has rows, so a segment
        raise ValueError("no segment in the data")
    ranked = RANKED_WITHIN.get(first.metric)
    definition = (
        f"{first.definition} Computed separately for each segment (the rows' segment), "
        f"each as if its customers were the whole file{f' ({ranked})' if ranked else ''}, "
        f"{observed}. Segments: {segmentation.rule}."
    )
    stated = {key: _one_or_each(given) for key, given in parameters.items()}
    stated["segment_by"] = segmentation.by  # here only: these rows are per segment
    # no rows in any segment: the declared columns, so a CSV output has its header line
    declared = tuple(columns) if first.columns else ()
    return MetricResult(first.metric, definition, stated, _same_fields(rows), summary, declared)


def segments_of(ds: Dataset, customers: pa.Table) -> list[str]:
    """The segments of the customers of ``customers`` (its ``customer_id``), by the
    same rule as :meth:`fidelite.analytics.engine.Dataset.in_segment`: the
    assignment's, else ``(none)``."""
    segmentation = ds.loaded.segmentation
    assert segmentation is not None
    con = ds.loaded.connection
    con.register("segment_customers", customers.select(["customer_id"]))
    try:
        found = con.execute(
            f"SELECT DISTINCT coalesce(a.segment, '{NONE}') FROM segment_customers t "
            f"LEFT JOIN {segmentation.assignments} a ON a.customer_id = t.customer_id"
        ).fetchall()
    finally:
        con.unregister("segment_customers")
    return [str(r[0]) for r in found]


def _same_fields(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every row with every field of any row, in order of first appearance, null where
    its segment has none: a cohort matrix has as many age columns as its oldest cohort
    allows, and the CSV and table outputs take their columns from the first row."""
    fields = list(dict.fromkeys(key for row in rows for key in row))
    if all(len(row) == len(fields) for row in rows):
        return rows
    return [{key: row.get(key) for key in fields} for row in rows]


def _one_or_each(given: dict[str, Any]) -> Any:
    """A parameter's value when every segment has the same, else its value per segment."""
    values = list(given.values())
    return values[0] if all(v == values[0] for v in values[1:]) else given


def _own_segment(row: dict[str, Any], metric: str) -> dict[str, Any]:
    """``row`` with its own ``segment`` field, if any, renamed ``<metric>_segment``:
    the leading ``segment`` is the customer segment the row was computed for."""
    if "segment" not in row:
        return row
    return {(f"{metric}_segment" if k == "segment" else k): v for k, v in row.items()}
