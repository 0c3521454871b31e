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
(missing or negative mrr, unparsable dates, an end before its start, an empty file).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb

from fidelite.analytics.errors import InputError
from fidelite.analytics.io import (
    LoadOptions,
    Source,
    _Checker,
    _ident,
    _quote,
    _raw_types,
    _register_raw,
    _source_name,
)

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

    def describe(self) -> dict[str, Any]:
        return {"subscriptions": self.source, "rows": self.rows}


def load_subscriptions(
    source: Source,
    *,
    columns: SubscriptionColumns | None = None,
    date_format: str | None = None,
    connection: duckdb.DuckDBPyConnection | None = None,
    table: str = "subscriptions",
) -> LoadedSubscriptions:
    """Read, validate and normalise subscriptions into DuckDB table ``table``."""
    cols = columns or SubscriptionColumns()
    con = connection or duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    name = _source_name(source)
    kind = _register_raw(con, source, LoadOptions(), name)
    mapping = _mapping(_raw_types(con), cols, name)
    checker = _Checker(con, source, name, kind, mapping)
    row = con.execute("SELECT count(*) FROM raw").fetchall()
    total = int(row[0][0]) if row else 0
    if total == 0:
        raise InputError("no subscriptions (the file has a header but no rows)", file=name)
    con.execute(f"CREATE OR REPLACE TABLE {table} AS {_select(checker, date_format)}")
    con.execute("DROP VIEW IF EXISTS raw")
    return LoadedSubscriptions(con, table, name, total)


def _mapping(types: dict[str, str], cols: SubscriptionColumns, name: str) -> dict[str, str]:
    mapping = {}
    for canonical in REQUIRED + OPTIONAL:
        wanted = str(getattr(cols, canonical))
        if wanted in types:
            mapping[canonical] = wanted
        elif canonical in REQUIRED:
            found = ", ".join(types) or "none"
            raise InputError(
                f"missing required column '{wanted}' (columns found: {found})",
                file=name,
                column=wanted,
            )
    return mapping


def _date(col: str, date_format: str | None) -> str:
    text = f"NULLIF(trim(CAST({col} AS VARCHAR)), '')"
    if date_format:
        return f"CAST(try_strptime({text}, {_quote(date_format)}) AS DATE)"
    return f"CAST(try_cast({text} AS TIMESTAMP) AS DATE)"


def _select(checker: _Checker, date_format: str | None) -> str:
    m = checker.mapping
    cust = checker.col("customer_id")
    checker.check(
        "customer_id", f"{cust} IS NULL OR trim(CAST({cust} AS VARCHAR)) = ''", "missing customer"
    )
    mrr_text = f"NULLIF(trim(CAST({checker.col('mrr')} AS VARCHAR)), '')"
    mrr = f"try_cast({mrr_text} AS DOUBLE)"
    checker.check("mrr", f"{mrr} IS NULL", "missing or unparsable mrr")
    checker.check("mrr", f"{mrr} < 0", "negative mrr")
    hint = f" (format {date_format})" if date_format else " (expected ISO 8601, e.g. 2024-03-01)"
    start = _date(checker.col("start"), date_format)
    checker.check("start", f"{start} IS NULL", f"missing or unparsable start date{hint}")
    end = "CAST(NULL AS DATE)"
    if "end" in m:
        end_text = f"NULLIF(trim(CAST({checker.col('end')} AS VARCHAR)), '')"
        end = _date(checker.col("end"), date_format)
        checker.check("end", f"{end_text} IS NOT NULL AND {end} IS NULL",
                      f"unparsable end date{hint}")  # fmt: skip
        checker.check("end", f"{end} < {start}", "end date before the start date")
    checker.flush()
    plan = f"NULLIF(trim(CAST({_ident(m['plan'])} AS VARCHAR)), '')" if "plan" in m else "NULL"
    return (
        f"SELECT trim(CAST({cust} AS VARCHAR)) AS customer_id, CAST({plan} AS VARCHAR) AS plan, "
        f"{mrr} AS mrr, {start} AS start_day, {end} AS end_day FROM raw"
    )
