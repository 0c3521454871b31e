"""Load transaction files (CSV or Parquet) into the normalised ``transactions`` table.

Input: a CSV or Parquet file (or an Arrow table) with at least a customer, a time and an
amount column; optional ``order_id, product_id, category, quantity, channel,
coupon_code, refund``. Other column names are mapped with :class:`ColumnMapping`.

Output: a DuckDB table with exactly these columns (the only shape metrics ever see)::

    customer_id VARCHAR    not null
    ts          TIMESTAMP  local wall-clock time in the business time zone
    day         DATE       local calendar day of ``ts``
    amount      DOUBLE     signed: refunds are negative
    is_refund   BOOLEAN    refund flag set, or a negative amount
    order_id    VARCHAR    the file's order id, else customer_id + '@' + ts (one row = one order)
    product_id, category, channel, coupon_code VARCHAR (null when absent)
    quantity    DOUBLE     null when absent; never negative

Time zones: a timestamp with an explicit offset (``2024-03-01T23:30:00+00:00``) is
converted to the business time zone; a timestamp without one is taken as already local.
So a purchase at 23:30 UTC is on the next day for a business in Paris.

Invariant: loading either returns a fully valid table or raises one
:class:`~fidelite.analytics.errors.InputError` naming file, row and column.
"""

from __future__ import annotations

import atexit
import csv
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias

import duckdb
import pyarrow as pa

from fidelite.analytics.errors import InputError

MEMORY_ENV = "FIDELITE_MEMORY_LIMIT"
REQUIRED = ("customer_id", "timestamp", "amount")
OPTIONAL = (
    "order_id",
    "product_id",
    "category",
    "quantity",
    "channel",
    "coupon_code",
    "refund",
)

# Tried in order when no --date-format is given; the first under which every value of
# the column parses wins (day-first before month-first: the common European layout).
DATE_FORMATS = (
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
    "%d/%m/%Y",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d",
    "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y",
    "%d-%m-%Y %H:%M:%S",
    "%d-%m-%Y",
)
ISO = "ISO 8601"
TRUE_WORDS = ("true", "t", "1", "yes", "y")
FALSE_WORDS = ("false", "f", "0", "no", "n", "")


@dataclass(frozen=True)
class ColumnMapping:
    """Which column of the file holds each field (defaults: the canonical names)."""

    customer_id: str = "customer_id"
    timestamp: str = "timestamp"
    amount: str = "amount"
    order_id: str = "order_id"
    product_id: str = "product_id"
    category: str = "category"
    quantity: str = "quantity"
    channel: str = "channel"
    coupon_code: str = "coupon_code"
    refund: str = "refund"

    def source(self, canonical: str) -> str:
        """The file's name for canonical field ``canonical``."""
        return str(getattr(self, canonical))


@dataclass(frozen=True)
class LoadOptions:
    """How to read a transactions file.

    ``timezone`` is the business time zone (IANA name): it decides on which local day a
    purchase falls. ``materialize=False`` keeps the normalised table as a view over the
    file (one query, e.g. the summary, reads only the columns it needs); the default
    copies it once into DuckDB for reports that run many queries. ``date_format`` is a
    strptime format; without it ISO 8601 and the formats in :data:`DATE_FORMATS` are
    tried. ``memory_limit`` caps DuckDB's memory (e.g. ``"1GB"``, ``"8GB"``; default
    ``$FIDELITE_MEMORY_LIMIT`` or 1GB): past it DuckDB spills to a temporary directory
    instead of growing, so a report on 10M rows stays near 1.3 GB of peak memory.
    """

    columns: ColumnMapping = field(default_factory=ColumnMapping)
    timezone: str = "UTC"
    date_format: str | None = None
    delimiter: str | None = None
    materialize: bool = True
    memory_limit: str = field(default_factory=lambda: os.environ.get(MEMORY_ENV) or "1GB")


@dataclass(frozen=True)
class LoadedTransactions:
    """A validated ``transactions`` table in a DuckDB connection, with how it was read."""

    connection: duckdb.DuckDBPyConnection
    table: str
    source: str
    rows: int
    timezone: str
    date_format: str
    present: frozenset[str]

    def describe(self) -> dict[str, Any]:
        """Input facts stated in every metric output."""
        return {
            "input": self.source,
            "rows": self.rows,
            "timezone": self.timezone,
            "date_format": self.date_format,
            "optional_columns": sorted(self.present),
        }


Source: TypeAlias = str | Path | pa.Table


def load_transactions(
    source: Source,
    options: LoadOptions | None = None,
    *,
    connection: duckdb.DuckDBPyConnection | None = None,
    table: str = "transactions",
) -> LoadedTransactions:
    """Read, validate and normalise ``source`` into DuckDB table ``table``.

    ``source`` is a path to a ``.csv``/``.tsv``/``.txt`` or ``.parquet`` file (a glob
    of Parquet files works too) or an in-memory :class:`pyarrow.Table`.
    Raises :class:`InputError` on the first problem found.
    """
    opts = options or LoadOptions()
    con = connection or duckdb.connect()
    con.execute("SET enable_progress_bar = false")  # the CLI shows its own progress
    limit_memory(con, opts.memory_limit)
    name = _source_name(source)
    _set_timezone(con, opts.timezone, name)
    kind = _register_raw(con, source, opts, name)
    raw_types = _raw_types(con)
    mapping = _resolve_columns(raw_types, opts.columns, name)
    checker = _Checker(con, source, name, kind, mapping)
    total = checker.count_rows()
    ts_expr, fmt = _timestamp_expression(con, checker, raw_types[mapping["timestamp"]], opts)
    select = _normalised_select(checker, raw_types, ts_expr)
    if opts.materialize:
        con.execute(f"CREATE OR REPLACE TABLE {table} AS {select}")
        con.execute("DROP VIEW IF EXISTS raw")
    else:
        con.execute(f"CREATE OR REPLACE VIEW {table} AS {select}")
    present = frozenset(k for k in OPTIONAL if k in mapping)
    return LoadedTransactions(con, table, name, total, opts.timezone, fmt, present)


def limit_memory(con: duckdb.DuckDBPyConnection, limit: str) -> None:
    """Cap DuckDB's memory at ``limit`` and let it spill to a private temporary directory.

    Raises ``ValueError`` naming the setting when DuckDB does not understand ``limit``.
    """
    try:
        con.execute("SET memory_limit = ?", [limit])
    except duckdb.Error as exc:
        raise ValueError(
            f"memory limit {limit!r} is not a size DuckDB understands (e.g. 1GB, 512MB): "
            f"{str(exc).splitlines()[0]}"
        ) from None
    spill = tempfile.mkdtemp(prefix="fidelite-duckdb-")
    atexit.register(shutil.rmtree, spill, True)
    con.execute("SET temp_directory = ?", [spill])


def _source_name(source: Source) -> str:
    return "<arrow table>" if isinstance(source, pa.Table) else str(source)


def _set_timezone(con: duckdb.DuckDBPyConnection, tz: str, name: str) -> None:
    try:
        con.execute("SET TimeZone = ?", [tz])
        # fetchall, not fetchone: DuckDB 2 keeps a partly fetched result open, which
        # blocks registering an Arrow table on the connection afterwards.
        con.execute("SELECT now()::TIMESTAMPTZ::TIMESTAMP").fetchall()
    except duckdb.Error as exc:
        raise InputError(f"unknown time zone '{tz}'", file=name) from exc


def _register_raw(
    con: duckdb.DuckDBPyConnection, source: Source, opts: LoadOptions, name: str
) -> str:
    """Create view ``raw`` over the source; return ``csv``, ``parquet`` or ``arrow``."""
    if isinstance(source, pa.Table):
        if source.num_rows == 0:
            raise InputError("no transactions (the table is empty)", file=name)
        con.register("raw_arrow", source)
        con.execute("CREATE OR REPLACE VIEW raw AS SELECT * FROM raw_arrow")
        return "arrow"
    path = Path(source)
    is_glob = any(ch in str(source) for ch in "*?[")
    if not is_glob and not path.is_file():
        raise InputError("file not found", file=name)
    if not is_glob and path.stat().st_size == 0:
        raise InputError("the file is empty", file=name)
    lit = _quote(str(source))
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            con.execute(f"CREATE OR REPLACE VIEW raw AS SELECT * FROM read_parquet({lit})")
            return "parquet"
        delim = f", delim = {_quote(opts.delimiter)}" if opts.delimiter else ""
        con.execute(
            "CREATE OR REPLACE VIEW raw AS SELECT * FROM read_csv("
            f"{lit}, header = true, all_varchar = true{delim})"
        )
        con.execute("DESCRIBE raw").fetchall()
    except duckdb.Error as exc:
        raise InputError(f"cannot read the file: {_first_line(exc)}", file=name) from exc
    return "csv"


def _raw_types(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    return {str(r[0]): str(r[1]).upper() for r in con.execute("DESCRIBE raw").fetchall()}


def _resolve_columns(types: dict[str, str], cols: ColumnMapping, name: str) -> dict[str, str]:
    """Map canonical field -> file column; required fields must exist."""
    mapping: dict[str, str] = {}
    for canonical in REQUIRED + OPTIONAL:
        wanted = cols.source(canonical)
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


class _Checker:
    """Runs validation queries over view ``raw`` and locates the offending row."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        source: Source,
        name: str,
        kind: str,
        mapping: dict[str, str],
    ) -> None:
        self.con = con
        self.source = source
        self.name = name
        self.kind = kind
        self.mapping = mapping
        self.pending: list[tuple[str, str, str]] = []

    def col(self, canonical: str) -> str:
        return _ident(self.mapping[canonical])

    def count_rows(self) -> int:
        try:
            row = self.con.execute("SELECT count(*) FROM raw").fetchone()
        except duckdb.Error as exc:
            raise InputError(f"cannot read the file: {_first_line(exc)}", file=self.name) from exc
        total = int(row[0]) if row else 0
        if total == 0:
            raise InputError("no transactions (the file has a header but no rows)", file=self.name)
        return total

    def fail(self, canonical: str, value: str, reason: str, row: int | None = None) -> InputError:
        """An error for ``canonical`` at data row ``row`` (1-based, header excluded)."""
        column = self.mapping[canonical]
        if row is None:
            return InputError(reason, file=self.name, column=column)
        if self.kind == "csv":
            return InputError(reason, file=self.name, row=self._csv_line(row), column=column)
        return InputError(reason, file=self.name, row=row, column=column, row_label="row")

    def check(self, canonical: str, bad_condition: str, reason: str) -> None:
        """Queue a check; :meth:`flush` runs all queued checks in one scan."""
        self.pending.append((canonical, bad_condition, reason))

    def flush(self) -> None:
        """Run queued checks in one pass; raise for the first (in queue order) that fails.

        One scan for every check keeps loading 10M rows cheap; only the failing check
        is then re-run to find its row — by the condition, not by the value, so a value
        that is valid elsewhere (a 0 that is a fine NPS score but not a CSAT one) does
        not point at the wrong row.
        """
        checks, self.pending = self.pending, []
        if not checks:
            return
        cols = ", ".join(f"bool_or(coalesce({cond}, FALSE))" for _, cond, _ in checks)
        flags = self.con.execute(f"SELECT {cols} FROM raw").fetchone() or ()
        for (canonical, cond, reason), failed in zip(checks, flags, strict=True):
            if failed:
                row, value = self._first_failing_row(canonical, cond)
                shown = "empty value" if not value else f"'{value}'"
                raise self.fail(canonical, value, f"{reason}: {shown}", row)

    def _first_failing_row(self, canonical: str, bad_condition: str) -> tuple[int | None, str]:
        """Data row number (1-based, in file order) and value of the first failing row."""
        col = self.col(canonical)
        found = self.con.execute(
            f"SELECT n, v FROM (SELECT row_number() OVER () AS n, "
            f"CAST({col} AS VARCHAR) AS v, coalesce({bad_condition}, FALSE) AS bad FROM raw) "
            "WHERE bad ORDER BY n LIMIT 1"
        ).fetchall()
        if not found:
            return None, ""
        n, value = found[0]
        return int(n), "" if value is None else str(value)

    def _csv_line(self, data_row: int) -> int | None:
        """The file line on which CSV record ``data_row`` (1-based) starts; the header is
        line 1. Read with Python's csv module so quoted multi-line fields count right."""
        with open(self.source, newline="", encoding="utf-8", errors="replace") as fh:
            sample = fh.read(65536)
            fh.seek(0)
            try:
                dialect: Any = csv.Sniffer().sniff(sample, delimiters=",;\t|")
            except csv.Error:
                dialect = csv.excel
            reader = csv.reader(fh, dialect)
            next(reader, None)
            start = reader.line_num  # the line the previous record ended on
            for index, _ in enumerate(reader, start=1):
                if index == data_row:
                    return start + 1
                start = reader.line_num
        return None


def _timestamp_expression(
    con: duckdb.DuckDBPyConnection, checker: _Checker, raw_type: str, opts: LoadOptions
) -> tuple[str, str]:
    """SQL giving the local naive TIMESTAMP, and the format name used."""
    col = checker.col("timestamp")
    tz = _quote(opts.timezone)
    checker.check("timestamp", f"{col} IS NULL", "missing date")
    if raw_type == "DATE":
        return f"CAST({col} AS TIMESTAMP)", "date"
    if raw_type.startswith("TIMESTAMP WITH TIME ZONE"):
        return f"timezone({tz}, {col})", "timestamp with time zone"
    if raw_type.startswith("TIMESTAMP"):
        return f"CAST({col} AS TIMESTAMP)", "timestamp (local)"
    text = f"trim(CAST({col} AS VARCHAR))"
    candidates: Sequence[str] = (opts.date_format,) if opts.date_format else (ISO, *DATE_FORMATS)
    best: tuple[int, str] | None = None
    for fmt in candidates:
        parsed = _parse_expr(text, fmt, tz)
        row = con.execute(f"SELECT count(*) FROM raw WHERE {parsed} IS NULL").fetchone()
        bad = int(row[0]) if row else 0
        if bad == 0:
            return parsed, fmt
        if best is None or bad < best[0]:
            best = (bad, fmt)
    assert best is not None
    fmt = best[1]
    hint = "" if opts.date_format else " (tried ISO 8601 and common day/month/year layouts)"
    checker.check("timestamp", f"{_parse_expr(text, fmt, tz)} IS NULL", f"unparsable date{hint}")
    checker.flush()
    raise AssertionError("unreachable: a failing row was counted")  # pragma: no cover


def _parse_expr(text: str, fmt: str, tz: str) -> str:
    """Local TIMESTAMP from text; values with an offset are converted to ``tz``."""
    if fmt == ISO:
        return f"timezone({tz}, try_cast({text} AS TIMESTAMPTZ))"
    if "%z" in fmt or "%Z" in fmt:
        return f"timezone({tz}, try_strptime({text}, {_quote(fmt)})::TIMESTAMPTZ)"
    return f"try_strptime({text}, {_quote(fmt)})::TIMESTAMP"


def _normalised_select(checker: _Checker, types: dict[str, str], ts_expr: str) -> str:
    """Validate every column and return the SELECT producing the normalised table."""
    m = checker.mapping
    cust = checker.col("customer_id")
    customer = _text(cust, types[m["customer_id"]])
    checker.check("customer_id", f"{cust} IS NULL OR {customer} = ''", "missing customer")
    amount = _number(checker, "amount", "unparsable amount", types[m["amount"]], required=True)
    quantity = "CAST(NULL AS DOUBLE)"
    if "quantity" in m:
        kind = types[m["quantity"]]
        quantity = _number(checker, "quantity", "unparsable quantity", kind, required=False)
        checker.check("quantity", f"{quantity} < 0", "negative quantity")
    refund_flag = "FALSE"
    if "refund" in m:
        refund_flag = _boolean(checker, types[m["refund"]])
    is_refund = f"(({refund_flag}) OR {amount} < 0)"
    checker.flush()
    order = f"CAST({checker.col('order_id')} AS VARCHAR)" if "order_id" in m else "NULL"
    ts = f"({ts_expr})"
    parts = [
        f"{customer} AS customer_id",
        f"{ts} AS ts",
        f"CAST({ts} AS DATE) AS day",
        f"CASE WHEN {is_refund} THEN -abs({amount}) ELSE {amount} END AS amount",
        f"{is_refund} AS is_refund",
        f"coalesce({order}, {customer} || '@' || CAST({ts} AS VARCHAR)) AS order_id",
    ]
    for name in ("product_id", "category", "channel", "coupon_code"):
        expr = f"NULLIF(trim(CAST({checker.col(name)} AS VARCHAR)), '')" if name in m else "NULL"
        parts.append(f"CAST({expr} AS VARCHAR) AS {name}")
    parts.append(f"{quantity} AS quantity")
    return "SELECT " + ", ".join(parts) + " FROM raw"


# Column types whose values are numbers already: read as they are (Parquet, Arrow).
_NUMERIC = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
            "UINTEGER", "UBIGINT", "UHUGEINT", "FLOAT", "REAL", "DOUBLE", "DECIMAL")  # fmt: skip


def _number(
    checker: _Checker, canonical: str, reason: str, raw_type: str, *, required: bool
) -> str:
    """The column as DOUBLE, with its check queued. A numeric column is cast directly
    (only a missing required value is wrong); text is parsed (an unparsable value is
    wrong). Through text, a numeric Parquet column of 10M rows cost a third of a
    second to load for nothing."""
    col = checker.col(canonical)
    if raw_type.split("(")[0] in _NUMERIC:
        expr = f"CAST({col} AS DOUBLE)"
        if required:
            checker.check(canonical, f"{col} IS NULL", reason)
        return expr
    text = f"NULLIF(trim(CAST({col} AS VARCHAR)), '')"
    expr = f"try_cast({text} AS DOUBLE)"
    bad = f"{expr} IS NULL" if required else f"{text} IS NOT NULL AND {expr} IS NULL"
    checker.check(canonical, bad, reason)
    return expr


def _text(col: str, raw_type: str) -> str:
    """The column as trimmed text (cast first unless it is text already)."""
    return f"trim({col})" if raw_type == "VARCHAR" else f"trim(CAST({col} AS VARCHAR))"


def _boolean(checker: _Checker, raw_type: str) -> str:
    col = checker.col("refund")
    if raw_type == "BOOLEAN":
        return f"coalesce({col}, FALSE)"
    word = f"lower(trim(coalesce(CAST({col} AS VARCHAR), '')))"
    allowed = ", ".join(_quote(w) for w in TRUE_WORDS + FALSE_WORDS)
    checker.check("refund", f"{word} NOT IN ({allowed})", "refund flag must be true/false")
    trues = ", ".join(_quote(w) for w in TRUE_WORDS)
    return f"{word} IN ({trues})"


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
