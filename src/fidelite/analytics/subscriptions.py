"""Load a subscriptions file (CSV or Parquet) into the normalised ``subscriptions`` table.

Input columns: ``customer_id, mrr, start`` and optional ``end`` and ``plan`` (other
names mapped with :class:`SubscriptionColumns`). One row is one subscription (or one
price period of it): the monthly recurring revenue ``mrr`` it brings from ``start``
(inclusive) until ``end`` (exclusive; empty = still running). An upgrade is written as
the old row ending and a new row starting on the same day.

Output: DuckDB table ``subscriptions`` with ``customer_id VARCHAR, plan VARCHAR,
mrr DOUBLE, start_day DATE, end_day DATE`` (null end = running).

Invariant: loading either returns a fully valid table or raises one
:class:`~fidelite.analytics.errors.InputError` naming the file, line and column
(missing or negative mrr, unparsable dates, an end before its start, an empty file, a
start or end whose local day is outside the supported days,
:data:`~fidelite.analytics.io.FIRST_DAY` to :data:`~fidelite.analytics.io.LAST_DAY`).
An end of 9999-12-31 (a date, or a time on that day with any offset or none), the
open-ended marker of many CRM and billing exports, is read as an empty end: running.
An end before its start is judged on the instants the values name, not on their local
days: a start at 10:00 and an end at 09:00 the same day is refused, and whether a pair
with offsets is valid does not depend on ``--timezone``.
Dates are ISO 8601 or one of the day/month/year layouts transactions accept
(:data:`fidelite.analytics.io.DATE_FORMATS`), one format for both date columns. Each is
the local calendar day in the business time zone: a timestamp with an offset is
converted to it (23:30 UTC on 31 January starts on 1 February in Paris), one without is
the day it says, as for transactions and survey answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb

from fidelite.analytics.io import (
    ISO,
    SEGMENT_VALUE,
    DateChoice,
    LoadOptions,
    Source,
    _Checker,
    _ident,
    _names_zone,
    _parse_expr,
    _quote,
    _raw_types,
    _register_raw,
    _segment_column,
    _set_timezone,
    _source_name,
    choose_date_format,
    decimal_number,
    id_text,
    read_id,
    resolve_named_columns,
    supported_days_check,
)
from fidelite.analytics.segments import segment_value

REQUIRED = ("customer_id", "mrr", "start")
OPTIONAL = ("end", "plan")


@dataclass(frozen=True)
class SubscriptionColumns:
    """Which column of the file holds each field (defaults: the canonical names)."""

    customer_id: str = "customer_id"
    mrr: str = "mrr"
    start: str = "start"
    end: str = "end"
    plan: str = "plan"


@dataclass(frozen=True)
class LoadedSubscriptions:
    """A validated ``subscriptions`` table in a DuckDB connection."""

    connection: duckdb.DuckDBPyConnection
    table: str
    source: str
    rows: int
    date_format: str = ISO
    date_warning: str | None = None
    timezone: str = "UTC"

    def describe(self) -> dict[str, Any]:
        """Input facts stated in every output (``date_warning`` only when the dates
        also read month first: they were read day first, and the user must know)."""
        facts: dict[str, Any] = {
            "subscriptions": self.source,
            "rows": self.rows,
            "timezone": self.timezone,
            "date_format": self.date_format,
        }
        if self.date_warning:
            facts["date_warning"] = self.date_warning
        return facts


def load_subscriptions(
    source: Source,
    *,
    columns: SubscriptionColumns | None = None,
    date_format: str | None = None,
    timezone: str = "UTC",
    connection: duckdb.DuckDBPyConnection | None = None,
    table: str = "subscriptions",
    segment_column: str | None = None,
) -> LoadedSubscriptions:
    """Read, validate and normalise subscriptions into DuckDB table ``table``; dates with
    an offset are converted to ``timezone`` (the business's) before taking their day.
    With ``segment_column``, the table has that column's values too, as
    ``segment_value`` (for :func:`fidelite.analytics.segments.segment_table`)."""
    cols = columns or SubscriptionColumns()
    con = connection or duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    name = _source_name(source)
    _set_timezone(con, timezone, name)
    kind = _register_raw(con, source, LoadOptions(), name)
    mapping = _mapping(_raw_types(con), cols, name)
    if segment_column is not None:
        mapping[SEGMENT_VALUE] = _segment_column(_raw_types(con), segment_column, name)
    checker = _Checker(con, source, name, kind, mapping)
    total = checker.count_rows("subscriptions")
    select, choice = _select(checker, date_format, timezone)
    # Through the checker: the first read of the plan, where DuckDB may meet a bad byte.
    checker.scan(f"CREATE OR REPLACE TABLE {table} AS {select}")
    con.execute("DROP VIEW IF EXISTS raw")
    return LoadedSubscriptions(con, table, name, total, choice.format, choice.warning, timezone)


# The command-line option that names each field's column.
COLUMN_OPTIONS = {
    "customer_id": "--subscription-customer-col",
    "mrr": "--mrr-col",
    "start": "--start-col",
    "end": "--end-col",
    "plan": "--plan-col",
}


def _mapping(types: dict[str, str], cols: SubscriptionColumns, name: str) -> dict[str, str]:
    """Field -> file column: a misspelt ``--end-col`` is an error, not a file without
    ended subscriptions (:func:`~fidelite.analytics.io.resolve_named_columns`)."""
    wanted = {canonical: str(getattr(cols, canonical)) for canonical in REQUIRED + OPTIONAL}
    return resolve_named_columns(types, wanted, REQUIRED, COLUMN_OPTIONS, name)


def _text(checker: _Checker, canonical: str) -> str:
    return f"NULLIF(trim(CAST({checker.col(canonical)} AS VARCHAR)), '')"


def _parse_date(text: str, fmt: str, timezone: str) -> str:
    """The local calendar day ``text`` names (ISO 8601, or ``fmt`` for strptime), in
    ``timezone`` for a value with an offset (read as transactions' timestamps are)."""
    return f"CAST({_parse_expr(text, fmt, _quote(timezone))} AS DATE)"


def _instant(text: str, fmt: str, timezone: str) -> str:
    """The instant ``text`` names, as a TIMESTAMPTZ (whatever DuckDB's session zone): a
    value with an offset or zone is that instant, one without is its wall-clock time in
    ``timezone``."""
    tz = _quote(timezone)
    if fmt == ISO:
        zoned = f"try_cast({text} AS TIMESTAMPTZ)"
        local = f"timezone({tz}, try_cast({text} AS TIMESTAMP))"
        return f"CASE WHEN {_names_zone(text)} THEN {zoned} ELSE {local} END"
    if "%z" in fmt or "%Z" in fmt:
        return f"try_strptime({text}, {_quote(fmt)})::TIMESTAMPTZ"
    return f"timezone({tz}, try_strptime({text}, {_quote(fmt)})::TIMESTAMP)"


# The end many CRM and billing exports write for a subscription still running: read as
# an empty end. Taken as written (its day before any conversion to the business's time
# zone), so 9999-12-31T23:00-05:00 is running too, not a day of year 10000.
OPEN_END = "9999-12-31"


def _open_end(text: str, fmt: str) -> str:
    """SQL: end ``text`` (trimmed, not null) is the open-ended marker :data:`OPEN_END`,
    a date or a time on that day, with any offset or none."""
    if fmt == ISO:
        # the first 10 characters are the date (what :func:`_names_zone` relies on too)
        zoned, local = f"try_cast({text} AS TIMESTAMPTZ)", f"try_cast({text} AS TIMESTAMP)"
        return f"(left({text}, 10) = '{OPEN_END}' AND coalesce({zoned}, {local}) IS NOT NULL)"
    if "%z" in fmt or "%Z" in fmt:
        # the written day is not recoverable from the instant: any instant that a time on
        # 9999-12-31 names at some offset (-18:00 to +18:00); the days next to it that
        # also fall there are past the supported days, refused otherwise
        instant = f"try_strptime({text}, {_quote(fmt)})::TIMESTAMPTZ"
        return (
            f"({instant} >= TIMESTAMPTZ '{OPEN_END} 00:00:00+18:00' AND "
            f"{instant} < TIMESTAMPTZ '{OPEN_END} 00:00:00-18:00' + INTERVAL 1 DAY)"
        )
    return f"(CAST(try_strptime({text}, {_quote(fmt)})::TIMESTAMP AS DATE) = DATE '{OPEN_END}')"


def _select(checker: _Checker, date_format: str | None, timezone: str) -> tuple[str, DateChoice]:
    """Validate every subscription; return the SELECT producing the normalised table and
    the date format chosen (with its warning when the dates also read month first).

    The start and end columns are read with one date format, chosen as for
    transactions (ISO 8601, then the common day/month/year layouts) unless given.
    """
    m = checker.mapping
    cust = checker.col("customer_id")
    customer = id_text(checker)  # before the check for a missing one: NaN is named so
    checker.check("customer_id", f"{cust} IS NULL OR {customer} = ''", "missing customer")
    mrr = decimal_number(checker, "mrr", _text(checker, "mrr"))
    checker.check("mrr", f"{mrr} IS NULL", "missing or unparsable mrr")
    checker.check("mrr", f"{mrr} < 0", "negative mrr")
    # MRR is summed exactly (DECIMAL(38, 6), below 10^32): values under 10^23 cannot
    # overflow it in any file of under a billion rows
    checker.check("mrr", f"{mrr} >= 1e23", "mrr of 10^23 or more (too large to sum exactly)")
    start_text = _text(checker, "start")
    reasons = {"start": "missing or unparsable start date", "end": "unparsable end date"}
    checker.check("start", f"{start_text} IS NULL", reasons["start"])
    texts = [("start", start_text)]
    if "end" in m:
        texts.append(("end", _text(checker, "end")))

    def parse(text: str, fmt: str) -> str:
        return _parse_date(text, fmt, timezone)

    choice = choose_date_format(checker, texts, date_format, parse, reasons)
    fmt = choice.format
    start = parse(start_text, fmt)
    # past the supported days a month or year of the MRR rows would end in year 10000
    supported_days_check(checker, "start", start, timezone)
    end = "CAST(NULL AS DATE)"
    if "end" in m:
        end_text = texts[1][1]
        running = _open_end(end_text, fmt)
        end = f"CASE WHEN {running} THEN CAST(NULL AS DATE) ELSE {parse(end_text, fmt)} END"
        supported_days_check(checker, "end", end, timezone)
        # the instants, not the local days: 09:00 is before 10:00 the same day; an end
        # written as a day covers that day (2026-01-10 is not before 2026-01-10T10:00)
        ends, starts = _instant(end_text, fmt, timezone), _instant(start_text, fmt, timezone)
        timed, day = f"{ends} < {starts}", f"{ends} + INTERVAL 1 DAY <= {starts}"
        if fmt == ISO:
            before = f"CASE WHEN strpos({end_text}, ':') = 0 THEN {day} ELSE {timed} END"
        else:
            before = timed if "%H" in fmt or "%I" in fmt else day
        checker.check("end", f"NOT {running} AND ({before})", "end date before the start date")
    extra = f", {segment_value(checker)}" if SEGMENT_VALUE in m else ""
    checker.flush()
    customer = read_id(checker)  # the validation scan found how the ids are written
    plan = f"NULLIF(trim(CAST({_ident(m['plan'])} AS VARCHAR)), '')" if "plan" in m else "NULL"
    return (
        f"SELECT {customer} AS customer_id, CAST({plan} AS VARCHAR) AS plan, "
        f"{mrr} AS mrr, {start} AS start_day, {end} AS end_day{extra} FROM raw"
    ), choice
