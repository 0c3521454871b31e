"""Load support cases (CSV or Parquet: ``customer_id, timestamp``, one row per case) into
the normalised ``support_cases`` table (``customer_id VARCHAR, ts TIMESTAMP, day DATE``).

Used by the health score: more recent cases lower a customer's health. Time zones and
date formats work as for transactions; errors name the file, line and column.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from fidelite.analytics.errors import InputError
from fidelite.analytics.io import (
    LoadOptions,
    Source,
    _Checker,
    _raw_types,
    _register_raw,
    _set_timezone,
    _source_name,
    _timestamp_expression,
    find_column,
    id_text,
    read_id,
)


@dataclass(frozen=True)
class LoadedSupport:
    """A validated ``support_cases`` table in a DuckDB connection."""

    connection: duckdb.DuckDBPyConnection
    table: str
    source: str
    rows: int


def load_support_cases(
    source: Source,
    *,
    customer_col: str = "customer_id",
    time_col: str = "timestamp",
    timezone: str = "UTC",
    connection: duckdb.DuckDBPyConnection | None = None,
    table: str = "support_cases",
) -> LoadedSupport:
    """Read and validate support cases into DuckDB table ``table``."""
    con = connection or duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    opts = LoadOptions(timezone=timezone)
    name = _source_name(source)
    _set_timezone(con, timezone, name)
    kind = _register_raw(con, source, opts, name)
    types = _raw_types(con)
    mapping = {}
    for canonical, wanted in (("customer_id", customer_col), ("timestamp", time_col)):
        found = find_column(types, wanted)  # whatever its case
        if found is None:
            listed = ", ".join(types) or "none"
            raise InputError(
                f"missing required column '{wanted}' (columns found: {listed})",
                file=name,
                column=wanted,
            )
        mapping[canonical] = found
    checker = _Checker(con, source, name, kind, mapping)
    ts_expr, _ = _timestamp_expression(con, checker, types[mapping["timestamp"]], opts)
    cust = checker.col("customer_id")
    customer = id_text(checker)  # before the check for a missing one: NaN is named so
    checker.check("customer_id", f"{cust} IS NULL OR {customer} = ''", "missing customer")
    checker.flush()
    customer = read_id(checker)  # the validation scan found how the ids are written
    # Through the checker, as every read of ``raw``: a file DuckDB stops reading is an
    # error naming its line, not a DuckDB message.
    checker.scan(
        f"CREATE OR REPLACE TABLE {table} AS SELECT {customer} AS customer_id, "
        f"({ts_expr}) AS ts, CAST(({ts_expr}) AS DATE) AS day FROM raw"
    )
    con.execute("DROP VIEW IF EXISTS raw")
    rows = con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
    return LoadedSupport(con, table, name, int(rows))
