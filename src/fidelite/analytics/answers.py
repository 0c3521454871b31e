"""Load survey answers (CSV or Parquet) into the normalised ``answers`` table.

Input columns: ``customer_id, timestamp, question, score`` (other names mapped with
:class:`AnswerColumns`). One row is one answer to one question. Known questions and
their scales — a score outside its scale, or not a whole number where the scale is
whole, is an error naming the file, line and column:

==================  =======  ==================================================
question            scale    asks
==================  =======  ==================================================
``nps``             0..10    how likely are you to recommend us (``recommend``
                             is the same question under another name)
``repurchase``      0..10    how likely are you to buy from us again
``upsell``          0..10    how likely are you to try our other products
``csat``            1..5     how satisfied were you
``ces``             1..7     how easy was it (7 = very easy)
``share_of_wallet`` 0..100   what share (%) of your spending on this kind of
                             product goes to us
``program``         0..10    how much do our program's rewards decide where you
                             shop (used by the kinds of loyal customers)
==================  =======  ==================================================

Other question names are kept (custom questions) with any numeric score.

Output: DuckDB table ``answers`` with ``customer_id VARCHAR, ts TIMESTAMP, day DATE,
question VARCHAR, score DOUBLE, instant BIGINT``; ``question`` is lower-cased and
``recommend`` is stored as ``nps``; ``instant`` (microseconds since 1970-01-01 UTC)
orders the answers in time, which ``ts``, a local time, does not do in the hour that
repeats when the clocks go back. Time zones work as for transactions (:mod:`fidelite.analytics.io`).

Invariant: loading either returns a fully valid table or raises one
:class:`~fidelite.analytics.errors.InputError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import duckdb

from fidelite.analytics.io import (
    SEGMENT_VALUE,
    LoadOptions,
    Source,
    _Checker,
    _quote,
    _raw_types,
    _register_raw,
    _segment_column,
    _set_timezone,
    _source_name,
    _timestamp_expression,
    decimal_number,
    id_text,
    instant_order,
    read_id,
    resolve_named_columns,
)
from fidelite.analytics.segments import segment_value

# question -> (lowest, highest, whole numbers only)
SCALES: dict[str, tuple[float, float, bool]] = {
    "nps": (0, 10, True),
    "repurchase": (0, 10, True),
    "upsell": (0, 10, True),
    "csat": (1, 5, True),
    "ces": (1, 7, True),
    "share_of_wallet": (0, 100, False),
    "program": (0, 10, True),
}
ALIASES = {"recommend": "nps"}
REQUIRED = ("customer_id", "timestamp", "question", "score")


@dataclass(frozen=True)
class AnswerColumns:
    """Which column of the file holds each field (defaults: the canonical names)."""

    customer_id: str = "customer_id"
    timestamp: str = "timestamp"
    question: str = "question"
    score: str = "score"


@dataclass(frozen=True)
class LoadedAnswers:
    """A validated ``answers`` table in a DuckDB connection, with how it was read."""

    connection: duckdb.DuckDBPyConnection
    table: str
    source: str
    rows: int
    timezone: str
    date_format: str
    date_warning: str | None = None

    def days(self, questions: tuple[str, ...]) -> tuple[date, date] | None:
        """The first and the last local day of the answers to ``questions`` (None when
        there is none)."""
        marks = ", ".join("?" for _ in questions)
        rows = self.connection.execute(
            f"SELECT min(day), max(day) FROM {self.table} WHERE question IN ({marks})",
            list(questions),
        ).fetchall()
        first, last = rows[0]
        return None if first is None else (first, last)

    def describe(self) -> dict[str, Any]:
        """Input facts stated in every survey metric output."""
        facts: dict[str, Any] = {
            "surveys": self.source,
            "answers": self.rows,
            "timezone": self.timezone,
            "date_format": self.date_format,
        }
        if self.date_warning:
            facts["date_warning"] = self.date_warning
        return facts


def load_answers(
    source: Source,
    *,
    columns: AnswerColumns | None = None,
    timezone: str = "UTC",
    date_format: str | None = None,
    connection: duckdb.DuckDBPyConnection | None = None,
    table: str = "answers",
    segment_column: str | None = None,
) -> LoadedAnswers:
    """Read, validate and normalise survey answers into DuckDB table ``table``; with
    ``segment_column``, the table has that column's values too, as ``segment_value``
    (for :func:`fidelite.analytics.segments.segment_table`)."""
    cols = columns or AnswerColumns()
    opts = LoadOptions(timezone=timezone, date_format=date_format)
    con = connection or duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    name = _source_name(source)
    _set_timezone(con, timezone, name)
    kind = _register_raw(con, source, opts, name)
    mapping = _mapping(_raw_types(con), cols, name)
    if segment_column is not None:
        mapping[SEGMENT_VALUE] = _segment_column(_raw_types(con), segment_column, name)
    checker = _Checker(con, source, name, kind, mapping)
    total = checker.count_rows("survey answers")
    raw_type = _raw_types(con)[mapping["timestamp"]]
    ts_expr, fmt = _timestamp_expression(con, checker, raw_type, opts)
    instant = instant_order(checker, raw_type, fmt, ts_expr, timezone)
    # Through the checker, as every read of ``raw``: a file DuckDB stops reading is an
    # error naming its line, not a DuckDB message.
    checker.scan(f"CREATE OR REPLACE TABLE {table} AS {_select(checker, ts_expr, instant)}")
    con.execute("DROP VIEW IF EXISTS raw")
    return LoadedAnswers(con, table, name, total, timezone, fmt, checker.date_warning)


# The command-line option that names each field's column.
COLUMN_OPTIONS = {
    "customer_id": "--survey-customer-col",
    "timestamp": "--survey-time-col",
    "question": "--question-col",
    "score": "--score-col",
}


def _mapping(types: dict[str, str], cols: AnswerColumns, name: str) -> dict[str, str]:
    wanted = {canonical: str(getattr(cols, canonical)) for canonical in REQUIRED}
    return resolve_named_columns(types, wanted, REQUIRED, COLUMN_OPTIONS, name)


def _select(checker: _Checker, ts_expr: str, instant: str) -> str:
    """Validate every answer and return the SELECT producing the normalised table."""
    cust, q, s = checker.col("customer_id"), checker.col("question"), checker.col("score")
    customer = id_text(checker)  # before the check for a missing one: NaN is named so
    checker.check("customer_id", f"{cust} IS NULL OR {customer} = ''", "missing customer")
    checker.check("question", f"{q} IS NULL OR trim(CAST({q} AS VARCHAR)) = ''", "missing question")
    score = decimal_number(checker, "score", f"NULLIF(trim(CAST({s} AS VARCHAR)), '')")
    checker.check("score", f"{score} IS NULL", "missing or unparsable score")
    question = _question_expr(q)
    extra = f", {segment_value(checker)}" if SEGMENT_VALUE in checker.mapping else ""
    for name, (low, high, whole) in SCALES.items():
        is_q = f"{question} = {_quote(name)}"
        checker.check("score", f"{is_q} AND ({score} < {low} OR {score} > {high})",
                      f"{name} score must be between {low:g} and {high:g}")  # fmt: skip
        if whole:
            checker.check("score", f"{is_q} AND {score} <> round({score})",
                          f"{name} score must be a whole number")  # fmt: skip
    checker.flush()
    customer = read_id(checker)  # the validation scan found how the ids are written
    ts = f"({ts_expr})"
    return (
        f"SELECT {customer} AS customer_id, {ts} AS ts, "
        f"CAST({ts} AS DATE) AS day, {question} AS question, {score} AS score, "
        f"{instant} AS instant{extra} FROM raw"
    )


def _question_expr(col: str) -> str:
    text = f"lower(trim(CAST({col} AS VARCHAR)))"
    cases = " ".join(f"WHEN {_quote(a)} THEN {_quote(c)}" for a, c in ALIASES.items())
    return f"(CASE {text} {cases} ELSE {text} END)"


__all__ = ["ALIASES", "SCALES", "AnswerColumns", "LoadedAnswers", "load_answers"]
