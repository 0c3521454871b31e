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
    order_id    VARCHAR    the file's order id, else '#row' + the row's position (1-based,
                           header excluded): without an order id each row is one order
    product_id, category, channel, coupon_code VARCHAR (null when absent)
    quantity    DOUBLE     null when absent; never negative

Time zones: a timestamp with an explicit offset (``2024-03-01T23:30:00+00:00``) is
converted to the business time zone; a timestamp without one is taken as already local.
So a purchase at 23:30 UTC is on the next day for a business in Paris.

CSV files are read with the layout their header line gives (:mod:`fidelite.analytics.
csvfile`): a malformed line is named with its field count against the header's. In a
``;``-separated file a number may use a decimal comma (``1,5``): that is how
spreadsheets in most of Europe write CSV, and there the comma cannot separate fields.
Thousands separators are never read: a column whose dots may be ones (``1.500`` and
``2.250``, nothing else with a dot or a comma) is refused rather than guessed.

A glob of Parquet files is read by column name (case aside): every file must have each
column the load reads, once, holding the same kind of values (text, numbers, dates or
local times, times with a zone...) as in the other files; only the files' footers are
read to check it. An error in a value names the file and the row within it.

Invariant: loading either returns a fully valid table or raises one
:class:`~fidelite.analytics.errors.InputError` naming file, row and column.
"""

from __future__ import annotations

import atexit
import difflib
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, TypeAlias

import duckdb
import pyarrow as pa

from fidelite.analytics.csvfile import (
    CsvLayout,
    HeaderError,
    column_of_bad_byte,
    first_malformed_record,
    first_other_line_ending,
    locate_record,
    only_separators_reason,
    read_layout,
)
from fidelite.analytics.errors import InputError
from fidelite.textfile import first_not_utf8

MEMORY_ENV = "FIDELITE_MEMORY_LIMIT"
_SUFFIXED = re.compile(r".+_[0-9]+")  # how DuckDB renames a repeated column name
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

# Tried in order when no --date-format is given (after ISO 8601); the first under which
# every value of the column parses wins. Day-first comes before month-first (the common
# European layout): a column whose every date reads both ways (no day above 12) is read
# day-first, and the output says so (``date_warning``). Time formats within one layout
# go from the most to the least precise, so a column with seconds keeps them. A year has
# 4 digits, here and in ISO 8601 (:func:`_year_in_full`): two-digit years are read only
# with a --date-format that says %y, never guessed (05/01/24 reads three ways).
DATE_FORMATS = (
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
    "%d/%m/%Y %I:%M:%S %p",
    "%d/%m/%Y %I:%M %p",
    "%d/%m/%Y",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y %I:%M:%S %p",
    "%m/%d/%Y %I:%M %p",
    "%m/%d/%Y",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y/%m/%d",
    "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y %H:%M",
    "%d.%m.%Y",
    "%d-%m-%Y %H:%M:%S",
    "%d-%m-%Y %H:%M",
    "%d-%m-%Y",
)
# A day-first format and the month-first one that reads the same text the other way.
SWAPPED = {f: f.replace("%d/%m/", "%m/%d/") for f in DATE_FORMATS if f.startswith("%d/%m/")}
ISO = "ISO 8601"
Reason: TypeAlias = str | Callable[[str], str]
"""A failed check's message: text the value is appended to, or made from the value."""

# A refund flag's words, in any case: English, and yes/no in French, German, Spanish
# or Italian, and Portuguese. None is yes in one language and no in another ("ne", yes
# in Greek and no in Czech, is left out for that reason).
TRUE_WORDS = ("true", "t", "1", "yes", "y", "oui", "ja", "sí", "si", "sim")
FALSE_WORDS = ("false", "f", "0", "no", "n", "non", "nein", "não", "nao", "")


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
    ``source_name`` names an in-memory source (an Arrow table read from a program
    database) in errors and in every output's ``input``.

    ``segment_column`` (a column of the file) or ``segments_file`` (a CSV or Parquet
    file of ``customer_id, segment``) gives each customer one segment, stored in an
    extra ``segment`` column (:mod:`fidelite.analytics.segments`); at most one of
    them. Without either the table has no such column and costs nothing more.
    """

    columns: ColumnMapping = field(default_factory=ColumnMapping)
    timezone: str = "UTC"
    date_format: str | None = None
    delimiter: str | None = None
    materialize: bool = True
    memory_limit: str = field(default_factory=lambda: os.environ.get(MEMORY_ENV) or "1GB")
    source_name: str | None = None
    segment_column: str | None = None
    segments_file: Path | None = None


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
    date_warning: str | None = None
    segmentation: Segmentation | None = None

    def describe(self) -> dict[str, Any]:
        """Input facts stated in every metric output (``date_warning`` only when the
        dates could be read two ways: the user should know which was chosen).

        No ``segment_by``, even when the table has segments: the facts hold for every
        output of the file, and most are the whole file's (the report's metrics); only
        an output whose rows are per segment states it
        (:func:`fidelite.analytics.segments.by_segment`)."""
        facts: dict[str, Any] = {
            "input": self.source,
            "rows": self.rows,
            "timezone": self.timezone,
            "date_format": self.date_format,
            "optional_columns": sorted(self.present),
        }
        if self.date_warning:
            facts["date_warning"] = self.date_warning
        return facts


Source: TypeAlias = str | Path | pa.Table


def load_transactions(
    source: Source,
    options: LoadOptions | None = None,
    *,
    connection: duckdb.DuckDBPyConnection | None = None,
    table: str = "transactions",
) -> LoadedTransactions:
    """Read, validate and normalise ``source`` into DuckDB table ``table``.

    ``source`` is a path to a ``.csv``/``.tsv``/``.txt`` or ``.parquet`` file (or a glob
    of such files) or an in-memory :class:`pyarrow.Table`.
    Raises :class:`InputError` on the first problem found.
    """
    opts = options or LoadOptions()
    con = connection or duckdb.connect()
    con.execute("SET enable_progress_bar = false")  # the CLI shows its own progress
    limit_memory(con, opts.memory_limit)
    name = opts.source_name or _source_name(source)
    _set_timezone(con, opts.timezone, name)
    kind = _register_raw(con, source, opts, name)
    raw_types = _raw_types(con)
    mapping = _resolve_columns(raw_types, opts.columns, name)
    if opts.segment_column is not None and opts.segments_file is not None:
        raise ValueError("segment by a column or by a segments file, not both")
    if opts.segment_column is not None:
        mapping[SEGMENT_VALUE] = _segment_column(raw_types, opts.segment_column, name)
    checker = _Checker(con, source, name, kind, mapping, delimiter=opts.delimiter)
    total = checker.count_rows()
    ts_expr, fmt = _timestamp_expression(con, checker, raw_types[mapping["timestamp"]], opts)
    select = _normalised_select(checker, raw_types, ts_expr, lazy=not opts.materialize)
    if SEGMENT_VALUE in mapping:  # the first purchase is the first instant
        order = instant_order(checker, raw_types[mapping["timestamp"]], fmt, ts_expr, opts.timezone)
        head, _, tail = select.rpartition(" FROM raw")
        select = f"{head}, {order} AS {SEGMENT_ORDER} FROM raw{tail}"
    segmented = opts.segment_column is not None or opts.segments_file is not None
    base = f"{table}_unsegmented" if segmented else table
    kind_of = "TABLE" if opts.materialize else "VIEW"
    if opts.materialize:
        # Through the checker: this is the first read of the columns no check reads
        # (category, product, channel, coupon), where DuckDB may meet a bad byte.
        checker.scan(f"CREATE OR REPLACE TABLE {base} AS {select}")
        con.execute("DROP VIEW IF EXISTS raw")
    else:
        con.execute(f"CREATE OR REPLACE VIEW {base} AS {select}")
    segmentation = None
    if segmented:
        from fidelite.analytics import segments  # only when asked

        segmentation = segments.segment(con, base, table, kind_of, opts, name)
    present = frozenset(k for k in OPTIONAL if k in mapping)
    return LoadedTransactions(
        con, table, name, total, opts.timezone, fmt, present, checker.date_warning, segmentation
    )


@dataclass(frozen=True)
class Segmentation:
    """How the customers of a loaded table were given their segment.

    ``by`` is the column or the segments file (as the outputs name it); ``rule`` says
    in words how a customer's segment is decided; ``values`` are the segments present
    in the table, sorted, ``(none)`` last; ``assignments`` is the DuckDB table of
    ``customer_id, segment`` (a customer not in it is in ``(none)``).
    """

    by: str
    rule: str
    values: tuple[str, ...]
    assignments: str


SEGMENT_VALUE = "segment_value"  # the normalised table's raw segment value, while loading
SEGMENT_ORDER = "segment_order"  # and the instant of its time (see instant_order)


def _segment_column(types: dict[str, str], column: str, name: str) -> str:
    """The file's column ``column`` (whatever its case, as the other columns are)."""
    found = find_column(types, column)
    if found is None:
        listed = ", ".join(types) or "none"
        raise InputError(
            f"no column '{column}' to segment by (columns found: {listed})",
            file=name,
            column=column,
        )
    return found


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
    spill = tempfile.mkdtemp(prefix=SPILL_PREFIX)
    atexit.register(shutil.rmtree, spill, True)
    con.execute("SET temp_directory = ?", [spill])
    _IN_FORCE[:] = [limit, spill]


SPILL_PREFIX = "fidelite-duckdb-"
_IN_FORCE: list[str] = []  # the memory limit last set by limit_memory, and its spill directory


def memory_in_force() -> tuple[str, str] | None:
    """The memory limit the last load set (:func:`limit_memory`) and the directory DuckDB
    spills to past it; ``None`` when no load set one. For the error that says DuckDB ran
    out of memory (:mod:`fidelite.analytics.resources`): a command loads its inputs with
    one limit."""
    return (_IN_FORCE[0], _IN_FORCE[1]) if _IN_FORCE else None


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
    is_glob = _is_glob(str(source))
    if not is_glob and path.is_dir():
        raise InputError("is a folder, not a file (give one CSV or Parquet file)", file=name)
    if not is_glob and not path.is_file():
        raise InputError("file not found", file=name)
    if not is_glob and path.stat().st_size == 0:
        raise InputError("the file is empty", file=name)
    lit = _quote(str(source))
    if path.suffix.lower() in (".parquet", ".pq"):
        if not is_glob:
            _create_raw(con, f"read_parquet({lit})", name)
            return "parquet"
        files = _source_files(con, str(source))
        if not files:
            raise InputError("no file matches", file=name)
        # By name: each file's columns are found by their names (whatever their case and
        # order), and a column's type is the one that holds every file's values (INTEGER
        # and DOUBLE make DOUBLE). Without it DuckDB casts every file to the first one's
        # types, silently: 3.7 read into an INTEGER column is 4, and an offset dropped.
        try:
            _create_raw(con, f"read_parquet({lit}, union_by_name = true)", name)
        except InputError as exc:
            # DuckDB could not combine the files: say which one, and why, when we can.
            parts = [_read_part(file) for file in files]
            clash = _part_problem(parts, str(source), None)
            if clash is None:
                raise
            raise clash from exc
        return "parquet"
    layout = _csv_layout(con, str(source), opts.delimiter, name)
    columns = ", ".join(f"{_quote(c)}: 'VARCHAR'" for c in layout.columns)
    _create_raw(
        con,
        f"read_csv({lit}, header = true, auto_detect = false, skip = {layout.skip}, delim = "
        f"{_quote(layout.delimiter)}, quote = '\"', escape = '\"', columns = {{{columns}}})",
        name,
    )
    return "csv"


def _create_raw(con: duckdb.DuckDBPyConnection, reader: str, name: str) -> None:
    try:
        con.execute(f"CREATE OR REPLACE VIEW raw AS SELECT * FROM {reader}")
        con.execute("DESCRIBE raw").fetchall()
    except duckdb.OutOfMemoryException:
        raise  # no fault of the file: the memory limit's (fidelite.analytics.resources)
    except duckdb.Error as exc:
        raise InputError(f"cannot read the file: {_first_line(exc)}", file=name) from exc


def _is_glob(source: str) -> bool:
    return any(ch in source for ch in "*?[")


def _source_files(con: duckdb.DuckDBPyConnection, source: str) -> list[Path]:
    """The files ``source`` names: itself, or the matches of a glob in the order DuckDB
    reads them (and numbers their rows)."""
    if not _is_glob(source):
        return [Path(source)]
    found = con.execute("SELECT file FROM glob(?)", [source]).fetchall()
    return [Path(str(row[0])) for row in found]


def _header_key(layout: CsvLayout) -> tuple[str, tuple[str, ...]]:
    """What files of one glob must share: the separator and the column names in order,
    whatever their case (names are matched whatever their case)."""
    return layout.delimiter, tuple(name.casefold() for name in layout.written)


def _csv_layout(
    con: duckdb.DuckDBPyConnection, source: str, delimiter: str | None, name: str
) -> CsvLayout:
    """The file's delimiter and header; an unusable first line is an error on line 1.

    Every file of a glob is checked as one file given alone would be (not empty, a UTF-8
    header), and must have the first file's header: DuckDB reads the columns of all by
    their position in the first, so a file whose columns come in another order would be
    read into the wrong fields (names differing only in case are the same). An error
    names the file that is wrong."""
    if delimiter is not None and len(delimiter) != 1:
        raise ValueError(f"the delimiter must be one character, not {delimiter!r}")
    files = _source_files(con, source)
    if not files or not files[0].is_file():
        raise InputError("no file matches", file=name)
    first = _file_layout(files[0], delimiter, _file_name(source, files[0], name))
    for path in files[1:]:
        shown = str(path)
        if path.stat().st_size == 0:
            raise InputError("the file is empty", file=shown)
        layout = _file_layout(path, delimiter, shown)
        if _header_key(layout) != _header_key(first):
            raise InputError(
                f"the header ({_header_of(layout)}) differs from that of {files[0]} "
                f"({_header_of(first)}): every file of '{source}' must have the same "
                "columns, in the same order, with the same separator",
                file=shown,
                row=layout.skip + 1,
            )
        if layout.skip != first.skip:
            # DuckDB skips as many lines before the header in every file of a glob.
            raise InputError(
                f"the header is on line {layout.skip + 1} here but on line "
                f"{first.skip + 1} in {files[0]}: every file of '{source}' must have as "
                "many lines (blank, or 'sep=') before its header",
                file=shown,
                row=layout.skip + 1,
            )
    return first


def _file_layout(path: Path, delimiter: str | None, name: str) -> CsvLayout:
    if path.stat().st_size == 0:
        raise InputError("the file is empty", file=name)
    try:
        return read_layout(path, delimiter)
    except HeaderError as exc:
        raise InputError(str(exc), file=name, row=exc.line) from exc
    except OSError as exc:
        raise InputError(f"cannot read the file: {exc.strerror or exc}", file=name) from exc


def _file_name(source: str, path: Path, name: str) -> str:
    """How errors name ``path``: one of a glob's files by its own name, else as ``name``."""
    return str(path) if _is_glob(source) else name


def _header_of(layout: CsvLayout) -> str:
    shown = "TAB" if layout.delimiter == "\t" else f"'{layout.delimiter}'"
    return f"{', '.join(layout.written)}, separated by {shown}"


@dataclass(frozen=True)
class _ParquetPart:
    """One file of a Parquet glob as its footer describes it (no row is read): its rows,
    and its columns' names as written (a repeated name repeated) and Arrow types."""

    path: Path
    rows: int
    names: tuple[str, ...]
    types: tuple[pa.DataType, ...]

    def positions(self, column: str) -> list[int]:
        """0-based positions of the columns named ``column``, whatever their case."""
        return [i for i, name in enumerate(self.names) if name.lower() == column.lower()]


def _read_part(path: Path) -> _ParquetPart:
    """The footer of ``path``; a file that is empty or not Parquet is an error naming it."""
    import pyarrow.parquet as pq

    shown = str(path)
    try:
        if path.stat().st_size == 0:
            raise InputError("the file is empty", file=shown)
        with pq.ParquetFile(path) as parquet:
            schema, rows = parquet.schema_arrow, parquet.metadata.num_rows
    except (OSError, pa.ArrowException) as exc:
        raise InputError(f"cannot read the file: {_first_line(exc)}", file=shown) from exc
    return _ParquetPart(path, rows, tuple(schema.names), tuple(schema.types))


def _part_problem(
    parts: Sequence[_ParquetPart], source: str, columns: Sequence[str] | None
) -> InputError | None:
    """The error for the first file of a Parquet glob that cannot be read with the others.

    Each of ``columns`` (the columns a load reads) must be in every file, once (case
    aside, as DuckDB matches names), and hold the same kind of values in every file
    (:func:`_value_kind`: an INTEGER beside a DOUBLE is fine, text beside numbers is
    not). ``columns=None``: only the kinds of every column, in the files that have it
    (why DuckDB could not combine the files). Only footers are read: no extra scan.
    """
    first: dict[str, tuple[str, Path]] = {}  # column -> its kind and the file first seen in
    for part in parts:
        shown = str(part.path)
        for column in _unique(part.names) if columns is None else columns:
            at = part.positions(column)
            if not at:
                holder = next((p.path for p in parts if p.positions(column)), None)
                return InputError(
                    f"missing column '{column}' (columns found: "
                    f"{', '.join(part.names) or 'none'})"
                    + (f", which {holder} has" if holder else "")
                    + f": every file of '{source}' must have each column that is read",
                    file=shown,
                    column=column,
                )
            if columns is not None:
                repeated = _repeated_column(part.names, part.names[at[0]], file=shown)
                if repeated is not None:
                    return repeated
            kind = _value_kind(part.types[at[0]])
            if kind is None:  # a column of NULLs only: it fits any kind
                continue
            seen = first.setdefault(column.lower(), (kind, part.path))
            if seen[0] != kind:
                return InputError(
                    f"{kind} here but {seen[0]} in {seen[1]}: a column must hold the same "
                    f"kind of values in every file of '{source}'",
                    file=shown,
                    column=part.names[at[0]],
                )
    return None


def _unique(names: Sequence[str]) -> list[str]:
    """``names`` without the repeats of a name (case aside), in order."""
    first: dict[str, str] = {}
    for name in names:
        first.setdefault(name.lower(), name)
    return list(first.values())


def _value_kind(kind: pa.DataType) -> str | None:
    """What a Parquet column holds, as files of one glob must agree on (``None``: only
    NULLs, which fit any). Widths and units may differ (DuckDB reads them as the widest);
    a date and a timestamp without zone are both local; a timestamp with a zone is an
    instant, which a local time read beside it would become in whatever zone the session
    is in, so the two are not read together."""
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    if pa.types.is_null(kind):
        return None
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        return "text"
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        return "numbers"
    if pa.types.is_boolean(kind):
        return "true/false values"
    if pa.types.is_date(kind) or (pa.types.is_timestamp(kind) and kind.tz is None):
        return "dates or local times"
    if pa.types.is_timestamp(kind):
        return "times with a time zone"
    return f"values of type {kind}"


def _locate_row(parts: Sequence[_ParquetPart], row: int) -> tuple[Path, int]:
    """The file of a Parquet glob holding data row ``row`` (numbered across the files, in
    the order DuckDB reads them) and the row's number within it."""
    before = 0
    for part in parts:
        if row <= before + part.rows:
            return part.path, row - before
        before += part.rows
    return parts[-1].path, row - before + parts[-1].rows  # pragma: no cover


def _repeated_column(
    written: Sequence[str], name: str, *, file: str, row: int | None = None
) -> InputError | None:
    """The error for a column read, ``name``, whose name ``written`` (the source's column
    names in order) repeats, case aside; ``None`` when it is the only one."""
    same = [(i, n) for i, n in enumerate(written, start=1) if n.lower() == name.lower()]
    if len(same) < 2:
        return None
    where = " and ".join([", ".join(str(i) for i, _ in same[:-1]), str(same[-1][0])])
    spelt = " or ".join(dict.fromkeys(f"'{n}'" for _, n in same))
    return InputError(
        f"{len(same)} columns are named {spelt} (columns {where}): rename all "
        "but one, so that it is clear which to read",
        file=file,
        row=row,
        column=name,
    )


def _raw_types(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    return {str(r[0]): str(r[1]).upper() for r in con.execute("DESCRIBE raw").fetchall()}


def find_column(columns: Iterable[str], wanted: str) -> str | None:
    """The column of ``columns`` (a source's, as DuckDB names them) that is ``wanted``,
    whatever the case of either: ``Amount`` is the ``amount`` column.

    Why: DuckDB matches names ignoring case, so a file cannot have both (a second one
    is renamed ``Amount_1``, and :meth:`_Checker._refuse_ambiguous` refuses reading it);
    the files of a Parquet glob are matched so (a glob mixing ``Amount`` and ``amount``
    files names the column as the first file does); and a CSV glob's headers may differ
    in case. The name as written wins when there is one; ``None`` when there is none."""
    names = list(columns)
    if wanted in names:
        return wanted
    return next((n for n in names if n.lower() == wanted.lower()), None)


# The command-line option that names each field's column.
COLUMN_OPTIONS = {
    "customer_id": "--customer-col",
    "timestamp": "--time-col",
    "amount": "--amount-col",
    "order_id": "--order-col",
    "product_id": "--product-col",
    "category": "--category-col",
    "quantity": "--quantity-col",
    "channel": "--channel-col",
    "coupon_code": "--coupon-col",
    "refund": "--refund-col",
}


def _resolve_columns(types: dict[str, str], cols: ColumnMapping, name: str) -> dict[str, str]:
    """Map canonical field -> file column (:func:`find_column`); required fields must
    exist, and so must an optional field's column given another name than its own
    (:func:`resolve_named_columns`)."""
    wanted = {canonical: cols.source(canonical) for canonical in REQUIRED + OPTIONAL}
    return resolve_named_columns(types, wanted, REQUIRED, COLUMN_OPTIONS, name)


def resolve_named_columns(
    types: Iterable[str],
    wanted: dict[str, str],
    required: Iterable[str],
    options: dict[str, str],
    name: str,
) -> dict[str, str]:
    """Map canonical field -> file column for the fields of ``wanted`` (field -> the
    column the user named, the field's own name by default), whatever the case.

    A required field must exist; so must an optional field's column given another name
    than its own, else one :class:`InputError` names the option (``options``: field ->
    option), the column, the file's columns and the closest one. An optional field left
    at its own name may be absent.

    Why the second rule: a mistyped ``--order-col``, ``--refund-col`` or ``--end-col``
    made the file look as if it had no order ids, no refunds or no ended subscriptions,
    and every number built on them changed without a word."""
    names = list(types)
    needed = set(required)
    mapping: dict[str, str] = {}
    for canonical, column in wanted.items():
        found = find_column(names, column)
        if found is not None:
            mapping[canonical] = found
            continue
        renamed = column.lower() != canonical.lower()
        if canonical not in needed and not renamed:
            continue
        listed = ", ".join(names) or "none"
        if not renamed:
            message = f"missing required column '{column}' (columns found: {listed})"
        else:
            close = difflib.get_close_matches(column, names, n=1)
            guess = f"; did you mean '{close[0]}'?" if close else ""
            message = (
                f"no column '{column}' (named by {options[canonical]}; "
                f"columns found: {listed}{guess})"
            )
        raise InputError(message, file=name, column=column)
    return mapping


class _Checker:
    """Runs validation queries over view ``raw`` and locates the offending row.

    Every scan of ``raw`` goes through :meth:`scan`: DuckDB checks each CSV record
    against the header while scanning, so any scan may be the one that meets a malformed
    line, and the user must then see that line, not a DuckDB message.
    """

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        source: Source,
        name: str,
        kind: str,
        mapping: dict[str, str],
        *,
        delimiter: str | None = None,
    ) -> None:
        self.con = con
        self.source = source
        self.name = name
        self.kind = kind
        self.mapping = mapping
        self.pending: list[tuple[str, str, Reason]] = []
        self.probes: list[str] = []
        self.probed: list[Any] = []
        # Facts the validation scan found, by name (see :meth:`probe`), and the keys
        # whose probes are queued, in the order of :attr:`probes`.
        self.facts: dict[str, Any] = {}
        self._probe_keys: list[str | None] = []
        # The SQL of each id column read by :func:`id_text` (see :func:`read_id`).
        self.ids: dict[str, str] = {}
        self.date_warning: str | None = None
        self._delimiter = delimiter
        self._layout: CsvLayout | None = None
        self._files: list[Path] | None = None
        self._parts: list[_ParquetPart] = []
        if kind == "parquet" and _is_glob(str(source)):
            # Every file of the glob, from its footer: the columns read (present, once,
            # of one kind of value in all) here, and each file's rows to name a row in it.
            self._parts = [_read_part(path) for path in self.files]
            problem = _part_problem(self._parts, str(source), list(dict.fromkeys(mapping.values())))
            if problem is not None:
                raise problem
        else:
            self._refuse_ambiguous()

    def col(self, canonical: str) -> str:
        return _ident(self.mapping[canonical])

    @property
    def layout(self) -> CsvLayout | None:
        """The CSV file's layout (``None`` for Parquet and Arrow sources)."""
        if self.kind == "csv" and self._layout is None:
            # Every file's header was checked against the first's when ``raw`` was made.
            first = self.files[0]
            self._layout = _file_layout(first, self._delimiter, self.file_name(first))
        return self._layout

    @property
    def files(self) -> list[Path]:
        """The files read (CSV or Parquet), in DuckDB's order: the source, or its glob's
        matches."""
        if self._files is None:
            self._files = _source_files(self.con, str(self.source))
        return self._files

    def file_name(self, path: Path) -> str:
        """How errors name ``path``, one of :attr:`files`."""
        return _file_name(str(self.source), path, self.name)

    def _refuse_ambiguous(self) -> None:
        """A column this load reads must be the only one of its name: DuckDB calls the
        second ``amount`` ``amount_1``, and reading the first would be a silent guess.
        A repeated name no field maps to is left alone. DuckDB's names ignore case, so
        ``amount`` and ``Amount`` are one name repeated."""
        written = self._written_names()
        if written is None or len({n.lower() for n in written}) == len(written):
            return
        described = list(_raw_types(self.con))  # DuckDB's names: amount, amount_1
        for used in dict.fromkeys(self.mapping.values()):
            repeated = _repeated_column(
                written,
                written[described.index(used)],
                file=self.file_name(self.files[0]) if self.kind == "csv" else self.name,
                row=1 if self.kind == "csv" else None,
            )
            if repeated is not None:
                raise repeated

    def _written_names(self) -> list[str] | None:
        """The source's column names as written, in order (a repeated name repeated).
        A Parquet file's schema is read only when DuckDB gave some name a ``_N`` suffix
        (which is what it does to a repeated one)."""
        if self.layout is not None:
            return list(self.layout.written)
        if isinstance(self.source, pa.Table):
            return list(self.source.column_names)
        if self.kind != "parquet" or not any(_SUFFIXED.fullmatch(n) for n in _raw_types(self.con)):
            return None
        import pyarrow.parquet as pq  # only for a file whose names may repeat

        return list(pq.read_schema(str(self.source)).names)

    def may_be_infinite(self, canonical: str) -> bool:
        """Whether the typed (date or timestamp) column of ``canonical`` may hold infinity
        or -infinity. For Parquet the footers' statistics answer, which DuckDB reads
        as it reads the values (no row is read): a row group whose minimum and maximum
        are finite holds neither. Without statistics, or for an Arrow table, it may."""
        if self.kind != "parquet":
            return True
        values = "num_values > 0 AND num_values > coalesce(stats_null_count, 0)"
        open_ended = (
            "stats_min IS NULL OR stats_max IS NULL "
            "OR contains(stats_min, 'infinity') OR contains(stats_max, 'infinity')"
        )
        try:
            found = self.con.execute(
                f"SELECT count(*) = 0 OR coalesce(bool_or({values} AND ({open_ended})), FALSE) "
                "FROM parquet_metadata(?) WHERE lower(path_in_schema) = lower(?)",
                [str(self.source), self.mapping[canonical]],
            ).fetchall()
        except duckdb.Error:
            return True  # the validation scan says what is wrong with the file
        return bool(found[0][0])

    def scan(self, sql: str) -> list[tuple[Any, ...]]:
        """Run a query over ``raw``; a file DuckDB cannot read is one :class:`InputError`."""
        try:
            return self.con.execute(sql).fetchall()
        except duckdb.OutOfMemoryException:
            raise  # no fault of the file: the memory limit's (fidelite.analytics.resources)
        except duckdb.Error as exc:
            raise self._unreadable(exc) from exc

    def _unreadable(self, exc: duckdb.Error) -> InputError:
        """The error for a CSV file DuckDB stopped reading: a byte that is not UTF-8, a
        malformed record or a line ending otherwise than the header, found by reading the
        file again in Python (only now: a good file pays nothing for these checks), else
        DuckDB's own words."""
        layout = self.layout
        if layout is not None:
            for path in self.files:  # DuckDB stops at the first file that is wrong
                name = self.file_name(path)
                try:
                    encoding = first_not_utf8(path)
                except OSError:
                    encoding = None
                if encoding is not None:
                    column = column_of_bad_byte(path, layout, encoding.line)
                    return InputError(encoding.reason, file=name, row=encoding.line, column=column)
                bad = first_malformed_record(path, layout) or first_other_line_ending(path)
                if bad is not None:
                    return InputError(bad.reason, file=name, row=bad.line)
        return InputError(f"cannot read the file: {_first_line(exc)}", file=self.name)

    def count_rows(self, what: str = "transactions") -> int:
        """Data rows in the file; a file with a header and no rows is an error."""
        found = self.scan("SELECT count(*) FROM raw")
        total = int(found[0][0]) if found else 0
        if total == 0:
            raise InputError(f"no {what} (the file has a header but no rows)", file=self.name)
        return total

    def fail(self, canonical: str, value: str, reason: str, row: int | None = None) -> InputError:
        """An error for ``canonical`` at data row ``row`` (1-based, header excluded)."""
        column = self.mapping[canonical]
        if row is None:
            return InputError(reason, file=self.name, column=column)
        layout = self.layout
        if layout is not None:
            found = locate_record(self.files, layout, row)
            shown = self.file_name(found.path)
            if found.only_separators:
                # The row's only fault is to be empty, whichever check met it first.
                return InputError(only_separators_reason(), file=shown, row=found.line)
            return InputError(reason, file=shown, row=found.line, column=column)
        if self._parts:  # a Parquet glob: the file and the row within it
            path, row = _locate_row(self._parts, row)
            return InputError(reason, file=str(path), row=row, column=column, row_label="row")
        return InputError(reason, file=self.name, row=row, column=column, row_label="row")

    def check(self, canonical: str, bad_condition: str, reason: Reason) -> None:
        """Queue a check; :meth:`flush` runs all queued checks in one scan. The error
        is ``reason``, then the value found (``: 'x'``); or, when ``reason`` is a
        function, what it makes of the value (a message quoting the value itself)."""
        self.pending.append((canonical, bad_condition, reason))

    def flush(self) -> None:
        """Run queued checks in one pass; raise for the first (in queue order) that fails.

        One scan for every check keeps loading 10M rows cheap; only the failing check
        is then re-run to find its row — by the condition, not by the value, so a value
        that is valid elsewhere (a 0 that is a fine NPS score but not a CSAT one) does
        not point at the wrong row.
        """
        checks, self.pending = self.pending, []
        probes, self.probes = self.probes, []
        keys, self._probe_keys = self._probe_keys, []
        if not checks and not probes:
            return
        cols = [f"bool_or(coalesce({cond}, FALSE))" for _, cond, _ in checks] + probes
        found = self.scan(f"SELECT {', '.join(cols)} FROM raw")
        values = list(found[0]) if found else [None] * len(cols)
        flags, self.probed = values[: len(checks)], values[len(checks) :]
        self.facts.update((k, v) for k, v in zip(keys, self.probed, strict=True) if k is not None)
        for (canonical, cond, reason), failed in zip(checks, flags, strict=True):
            if failed:
                row, value = self._first_failing_row(canonical, cond)
                shown = "empty value" if not value else f"'{value}'"
                said = reason(value) if callable(reason) else f"{reason}: {shown}"
                raise self.fail(canonical, value, said, row)

    def probe(self, aggregate: str, key: str | None = None) -> None:
        """Queue an aggregate over ``raw`` that :meth:`flush` computes in its one scan
        (a fact the normalised SELECT depends on); its value lands in :attr:`probed`,
        and in :attr:`facts` under ``key`` when one is given."""
        self.probes.append(aggregate)
        self._probe_keys.append(key)

    def _first_failing_row(self, canonical: str, bad_condition: str) -> tuple[int | None, str]:
        """Data row number (1-based, in file order) and value of the first failing row."""
        col = self.col(canonical)
        found = self.scan(
            f"SELECT n, v FROM (SELECT row_number() OVER () AS n, "
            f"CAST({col} AS VARCHAR) AS v, coalesce({bad_condition}, FALSE) AS bad FROM raw) "
            "WHERE bad ORDER BY n LIMIT 1"
        )
        if not found:
            return None, ""
        n, value = found[0]
        return int(n), "" if value is None else str(value)


# The local days a timestamp may fall on (in the business time zone). Past them the
# metrics' calendar arithmetic leaves the dates Python and DuckDB hold: a week or month
# of year 9999 ends in year 10000, and year 0 (1 BC) is no Python date. So a value whose
# local day is outside is refused when loading, naming its line, not met by a metric.
FIRST_DAY = "0001-01-01"
LAST_DAY = "9998-12-31"
# The most days between two supported days: a longer window (repurchase --days,
# cohorts --brackets) could never be reached, and is refused as an option value.
MAX_DAYS = 3651693


def supported_days_check(checker: _Checker, canonical: str, local: str, timezone: str) -> None:
    """Queue the check that ``local`` (SQL: the local TIMESTAMP or DATE of column
    ``canonical``) falls between :data:`FIRST_DAY` and :data:`LAST_DAY`."""
    checker.check(
        canonical,
        _outside_days(local),
        f"date outside the supported days, {FIRST_DAY} to {LAST_DAY} (the local day in "
        f"time zone {timezone})",
    )


def _outside_days(local: str) -> str:
    """SQL: the local TIMESTAMP or DATE ``local`` falls on no supported day."""
    return f"CAST({local} AS DATE) NOT BETWEEN DATE '{FIRST_DAY}' AND DATE '{LAST_DAY}'"


def _timestamp_expression(
    con: duckdb.DuckDBPyConnection, checker: _Checker, raw_type: str, opts: LoadOptions
) -> tuple[str, str]:
    """SQL giving the local naive TIMESTAMP, and the format name used; a value whose
    local day is not a supported one is refused (:func:`supported_days_check`).

    For text read in the format the first scan tried (ISO 8601, or ``--date-format``),
    that scan also said whether any value falls outside (from the value it parsed
    already): when none does the check is not queued, so the validation scan does not
    parse every timestamp again (a 1M-row file loaded ~20 % slower with it). When some
    does, the check is queued all the same, in the same place: the error, and which of
    the file's faults is reported first, are the same."""
    expr, fmt, all_supported = _local_timestamp(con, checker, raw_type, opts)
    if not all_supported:
        supported_days_check(checker, "timestamp", f"({expr})", opts.timezone)
    return expr, fmt


def instant_order(checker: _Checker, raw_type: str, fmt: str, local: str, timezone: str) -> str:
    """SQL: the instant a timestamp names, as microseconds since 1970-01-01 UTC (a
    BIGINT, the same on every engine), to order rows by time: ``local`` (the local
    TIMESTAMP :func:`_timestamp_expression` gives, read in format ``fmt``) repeats an
    hour when the clocks go back, where 02:30+02:00 comes before 02:10+01:00. A value
    with an offset or zone is its instant; one without, its wall-clock time in
    ``timezone`` (:func:`_wall_instant`)."""
    col = checker.col("timestamp")
    tz = _quote(timezone)
    text = f"trim(CAST({col} AS VARCHAR))"
    if raw_type.startswith("TIMESTAMP WITH TIME ZONE"):
        return f"epoch_us({col})"
    if fmt == ISO:
        zoned = f"try_cast({text} AS TIMESTAMPTZ)"
        wall = _wall_instant(tz, local)
        return f"epoch_us(CASE WHEN {_names_zone(text)} THEN {zoned} ELSE {wall} END)"
    if "%z" in fmt or "%Z" in fmt:
        return f"epoch_us(try_strptime({text}, {_quote(fmt)})::TIMESTAMPTZ)"
    return f"epoch_us({_wall_instant(tz, local)})"


def _wall_instant(tz: str, local: str) -> str:
    """SQL: the instant of a wall-clock time without an offset, in the same order as
    the wall-clock times. A time the clocks skip (02:30 on the night they go forward)
    has no instant: DuckDB reads it as 03:30 summer time, after 03:10, so it is taken
    as the change itself (the instant of the skipped hour's start, 02:00, which is also
    that of 03:00): 01:59 < 02:30 <= 03:00 < 03:10 keep their order (02:30 and 03:00
    are equal times). The skipped hour starts on the hour in every zone's current
    rules."""
    read = f"timezone({tz}, {local})"
    skipped = f"timezone({tz}, {read}) <> {local}"
    return f"CASE WHEN {skipped} THEN timezone({tz}, date_trunc('hour', {local})) ELSE {read} END"


def _local_timestamp(
    con: duckdb.DuckDBPyConnection, checker: _Checker, raw_type: str, opts: LoadOptions
) -> tuple[str, str, bool]:
    """SQL giving the local naive TIMESTAMP, the format name used, and whether every
    value is known to fall on a supported day (found while choosing the format)."""
    col = checker.col("timestamp")
    tz = _quote(opts.timezone)
    text = f"trim(CAST({col} AS VARCHAR))"
    typed = raw_type == "DATE" or raw_type.startswith("TIMESTAMP")
    # A typed column has no blank text to look for: casting 10M timestamps to text only
    # to compare them with '' tripled the validation scan of a Parquet file.
    missing = f"{col} IS NULL" if typed else f"{col} IS NULL OR {text} = ''"
    checker.check("timestamp", missing, "missing date")
    if typed and checker.may_be_infinite("timestamp"):
        # What a typed value can be that is no date: DuckDB reads the largest and the
        # smallest value a Parquet or Arrow date or timestamp column can hold as
        # infinity and -infinity, which have no calendar day (as the text 'infinity' has
        # none). Checked in the validation scan only when the Parquet footers cannot
        # rule them out: the values are read only for this, ~10 ms of CPU per 1M rows.
        checker.check("timestamp", f"NOT isfinite({col})", "not a date (no calendar day)")
    if raw_type == "DATE":
        return f"CAST({col} AS TIMESTAMP)", "date", False
    if raw_type.startswith("TIMESTAMP WITH TIME ZONE"):
        return f"timezone({tz}, {col})", "timestamp with time zone", False
    if raw_type.startswith("TIMESTAMP"):
        return f"CAST({col} AS TIMESTAMP)", "timestamp (local)", False
    zoned = _names_zone(text)
    # The first scan parses each value once (:func:`_bad_counts`, column PARSED0):
    # whether one falls outside the supported days is read from that parsed value.
    outside = f"bool_or(coalesce({_outside_days(f'{PARSED}0')}, FALSE))"
    choice = choose_date_format(
        checker,
        [("timestamp", text)],
        opts.date_format,
        lambda t, f: _parse_expr(t, f, tz),
        facts=(f"bool_or({zoned})", f"bool_or({text} <> '' AND NOT {zoned})", outside),
    )
    checker.date_warning = choice.warning
    # The facts come from the first scan only, which parsed the values in the format
    # chosen (another format is found by a second scan, and has none).
    all_supported = bool(choice.facts) and not choice.facts[2]
    if choice.format != ISO:
        return _parse_expr(text, choice.format, tz), choice.format, all_supported
    # What the column holds, found by the scan that chose the format: a file whose
    # values all carry an offset, or none does, needs no test per row when read (the
    # same values as the first scan's parse, which reads either kind).
    some_zoned, some_local = (bool(f) for f in choice.facts[:2])
    if not some_zoned:
        return _local_iso(text), ISO, all_supported
    if not some_local:
        return _zoned_iso(text, tz), ISO, all_supported
    return _parse_expr(text, ISO, tz), ISO, all_supported


Parse: TypeAlias = Callable[[str, str], str]


@dataclass(frozen=True)
class DateChoice:
    """The date format chosen for a file, and a warning when the dates read two ways."""

    format: str
    warning: str | None = None
    facts: tuple[Any, ...] = ()


def choose_date_format(
    checker: _Checker,
    texts: Sequence[tuple[str, str]],
    forced: str | None,
    parse: Parse,
    reasons: Mapping[str, str] | None = None,
    *,
    facts: Sequence[str] = (),
) -> DateChoice:
    """The format under which every non-empty value of the ``texts`` columns (pairs of
    canonical name and SQL text expression) parses with ``parse(text, format)``.

    ``facts`` are aggregates over ``raw`` computed in the first scan (the one that tries
    ISO 8601 or ``forced``), returned in :attr:`DateChoice.facts`: what a caller needs
    to know about the column costs no scan of its own.

    ``forced`` (``--date-format``) is the only candidate when given; otherwise ISO 8601
    is tried alone (most files, one cheap scan), then every :data:`DATE_FORMATS` layout
    in one scan. None fits: the error names the first value the closest format cannot
    read, with ``reasons[canonical]`` (default "unparsable date") as the reason. Empty
    values are left to the caller's "missing" checks.
    """
    first, found = _bad_counts(checker, texts, [forced or ISO], parse, facts)
    if first[0] == 0:
        return DateChoice(forced or ISO, facts=tuple(found))
    if forced:
        hint = f" (format {forced})"
        _raise_unparsable(checker, texts, forced, parse, hint, reasons, forced=True)
    candidates = (ISO, *DATE_FORMATS)
    counts = first + _bad_counts(checker, texts, DATE_FORMATS, parse)[0]
    for fmt, bad in zip(candidates, counts, strict=True):
        if bad == 0:
            return DateChoice(fmt, _ambiguity(checker, texts, fmt, parse))
    best = candidates[counts.index(min(counts))]
    mixed = _mixed_layouts(checker, texts, best, candidates, parse)
    if mixed is not None:
        raise mixed
    hint = " (tried ISO 8601 and common day/month/year layouts)"
    _raise_unparsable(checker, texts, best, parse, hint, reasons)


def _mixed_layouts(
    checker: _Checker,
    texts: Sequence[tuple[str, str]],
    best: str,
    candidates: Sequence[str],
    parse: Parse,
) -> InputError | None:
    """The error for a column whose dates are each in a layout fidelite reads, but not
    all in one (``15/01/2024`` above ``2024-02-03``), or ``None`` when the first value
    ``best`` cannot read is in no layout at all (then that value is the error).

    ``best`` is the layout reading the most values. The first value it cannot read is
    read by ``other`` (a candidate that reads it); as ``best`` reads the most
    values, some value ``best`` reads is one ``other`` cannot. The error names a line of
    each, so the user sees the two layouts side by side rather than "unparsable" on a
    date that is in a documented layout."""
    first = _first_unread(checker, texts, lambda t: _unread(t, best, parse))
    if first is None:
        return None
    canonical, row, value = first
    # Each value is named by the strict layout that reads it first: DuckDB's ISO 8601
    # cast also takes 2024/06/02, which is the year/month/day layout.
    by_name = (*candidates[1:], candidates[0])
    other = _reading_layout(checker, value.strip(), by_name, parse)
    if other is None:
        return None
    only_best = _first_unread(
        checker,
        texts,
        lambda t: f"NOT ({_unread(t, best, parse)}) AND {_unread(t, other, parse)}",
    )
    if only_best is None:  # pragma: no cover - best reads the most values (see above)
        return None
    canonical_b, row_b, value_b = only_best
    layout_b = _reading_layout(checker, value_b.strip(), by_name, parse) or best
    here = checker.fail(canonical, value, "", row)
    there = checker.fail(canonical_b, value_b, "", row_b)
    label = "line" if checker.kind == "csv" else "row"
    each = sorted([
        (row_b, f"{_where(there, here, label)} is {_layout_name(layout_b)} ('{value_b}')"),
        (row, f"{_where(here, there, label)} is {_layout_name(other)} ('{value}')"),
    ])  # fmt: skip
    subject, rule = (
        ("the column mixes date formats", "one format per column")
        if canonical == canonical_b
        else ("the date columns mix formats", "one format for all of them")
    )
    return checker.fail(
        canonical,
        value,
        f"{subject}: {each[0][1]}, {each[1][1]}; {rule}: write every date in one layout",
        row,
    )


def _first_unread(
    checker: _Checker, texts: Sequence[tuple[str, str]], bad: Callable[[str], str]
) -> tuple[str, int, str] | None:
    """The column, data row and value of the first row where ``bad(text)`` holds, taking
    the ``texts`` columns in turn."""
    for canonical, t in texts:
        row, value = checker._first_failing_row(canonical, bad(t))
        if row is not None:
            return canonical, row, value
    return None


def _reading_layout(
    checker: _Checker, value: str, candidates: Sequence[str], parse: Parse
) -> str | None:
    """The first of ``candidates`` that reads ``value`` as a date, if any."""
    if not any(ch.isdigit() for ch in value):
        return None  # a word (epoch, infinity) is no date in any layout
    literal = _quote(value)
    reads = ", ".join(_reads(literal, f, parse) for f in candidates)
    found = checker.con.execute(f"SELECT {reads}").fetchall()[0]
    return next((f for f, ok in zip(candidates, found, strict=True) if ok), None)


def _where(error: InputError, other: InputError, label: str) -> str:
    """``line N`` (``row N`` in Parquet) of ``error``, with its file or column when they
    differ from ``other``'s: how the mixed-formats message points at each value."""
    where = f"{label} {error.row}"
    if error.file != other.file:
        where = f"{error.file} {where}"
    if error.column != other.column:
        where += f" (column '{error.column}')"
    return where


def _layout_name(fmt: str) -> str:
    """``day/month/year (%d/%m/%Y)`` for a strptime layout, ``ISO 8601`` for ISO."""
    if fmt == ISO:
        return ISO
    day = fmt.split(" ", 1)[0]
    for code, word in (("%d", "day"), ("%m", "month"), ("%Y", "year")):
        day = day.replace(code, word)
    return f"{day} ({fmt})"


def _bad_counts(
    checker: _Checker,
    texts: Sequence[tuple[str, str]],
    formats: Sequence[str],
    parse: Parse,
    facts: Sequence[str] = (),
) -> tuple[list[int], list[Any]]:
    """For each format, how many non-empty values it cannot read, and the values of the
    ``facts`` aggregates (one scan for all).

    Whether a value is a word (:func:`_wordy`) and whether its year is written in full
    (:func:`_year_pattern`, one pattern for all 19 layouts) are computed once per row,
    in a subquery, not once per format: the scan of the 19 layouts reads each value
    once, and checking the years cost it nothing measurable.

    With one format, each value is also parsed once, in that subquery, as column
    ``__fidelite_parsed{i}`` (``i``: its place in ``texts``): a fact may use the parsed
    value (:func:`_local_timestamp`'s supported-days fact) without parsing it again."""
    words = [f"__fidelite_word{i}" for i in range(len(texts))]
    patterns = list(dict.fromkeys(p for f in formats if (p := _year_pattern(f)) is not None))
    years = {
        (t, pattern): f"__fidelite_year{i}_{j}"
        for i, (_, t) in enumerate(texts)
        for j, pattern in enumerate(patterns)
    }
    parsed = {t: f"{PARSED}{i}" for i, (_, t) in enumerate(texts)} if len(formats) == 1 else {}

    def reads(t: str, fmt: str) -> str:
        pattern = _year_pattern(fmt)
        year = None if pattern is None else years[t, pattern]
        if parsed:
            return _reads(t, fmt, lambda text, _: parsed[text], year)
        return _reads(t, fmt, parse, year)

    sums = [
        " + ".join(
            _count(f"{t} <> '' AND ({w} OR NOT ({reads(t, fmt)}))")
            for (_, t), w in zip(texts, words, strict=True)
        )
        for fmt in formats
    ]
    flagged = ", ".join(
        [f"{_wordy(t)} AS {w}" for (_, t), w in zip(texts, words, strict=True)]
        + [f"{_matches_year(t, pattern)} AS {flag}" for (t, pattern), flag in years.items()]
        + [f"{parse(t, formats[0])} AS {name}" for t, name in parsed.items()]
    )
    found = checker.scan(
        f"SELECT {', '.join([*sums, *facts])} FROM (SELECT *, {flagged} FROM raw)"
    )[0]
    return [int(n) for n in found[: len(formats)]], list(found[len(formats) :])


# The column of :func:`_bad_counts`'s one-format scan holding a text's parsed value.
PARSED = "__fidelite_parsed"


def _count(condition: str) -> str:
    """SQL: rows where ``condition`` holds. DuckDB's ``count_if`` is NULL when the
    condition is NULL on every row (an ``end`` column left empty in every row)."""
    return f"count_if(coalesce({condition}, FALSE))"


def _unread(text: str, fmt: str, parse: Parse) -> str:
    """SQL: non-empty ``text`` that format ``fmt`` cannot read as a date (:func:`_reads`).

    DuckDB reads ``infinity`` and ``-infinity`` (``inf``) as a time past every calendar
    day: no local day, no period, so no date either. It also reads ``epoch`` (any case)
    as 1970-01-01, in its ISO 8601 cast and under every strptime format: a word that no
    file means as a date, so a value without a digit is none (:func:`_wordy`)."""
    return f"{text} <> '' AND (NOT ({_reads(text, fmt, parse)}) OR {_wordy(text)})"


def _reads(text: str, fmt: str, parse: Parse, year: str | None = None) -> str:
    """SQL: ``fmt`` reads ``text`` as a date with a calendar day, its year (ISO 8601 or
    ``%Y``) written with 4 digits (:func:`_year_in_full`; ``year``: that condition
    computed already, as :func:`_bad_counts` does once per row)."""
    reads = f"coalesce(isfinite({parse(text, fmt)}), FALSE)"
    year = year or _year_in_full(text, fmt)
    return reads if year is None else f"{reads} AND {year}"


def _year_in_full(text: str, fmt: str) -> str | None:
    """SQL: the year in ``text``, read with ``fmt``, is written with 4 digits; ``None``
    when ``fmt`` reads no 4-digit year (``%y`` reads two digits, as asked).

    Why: DuckDB's ISO 8601 cast reads ``05/01/24`` as 24 January of the year 5, and
    strptime's ``%Y`` takes 1 to 4 digits (``05.01.24`` is 5 January of the year 24):
    a file with two-digit years would be read 2000 years off without a word. Where the
    year's place is known (:func:`_year_pattern`) a pattern says it; otherwise (a
    ``--date-format`` with ``%Y`` elsewhere) the value is read again: ``%Y`` reads at
    most 4 digits and fewer give a year below 1000, so a year from 1000 on was written
    in full, and one below only as ``0024`` (the padded year is in the text)."""
    pattern = _year_pattern(fmt)
    if pattern is not None:
        return _matches_year(text, pattern)
    if "%Y" not in re.findall("%.", fmt):
        return None
    parsed = f"try_strptime({text}, {_quote(fmt)})"
    return f"coalesce(year({parsed}) >= 1000 OR contains({text}, strftime({parsed}, '%Y')), FALSE)"


# Where the year is in a value a layout reads: first (ISO 8601, 2024/01/05), then a
# non-digit; or third, after two numbers of one or two digits (05/01/2024, 1.5.2024
# 10:00), then a non-digit or the end. 4 digits, no fifth (DuckDB's ISO cast reads
# 02024 as 2024, and 12024 as a year).
_YEAR_FIRST = "[0-9]{4}[^0-9]"
_YEAR_THIRD = "[0-9]{1,2}[^0-9][0-9]{1,2}[^0-9][0-9]{4}([^0-9]|$)"


def _year_pattern(fmt: str) -> str | None:
    """The regular expression a value ``fmt`` reads matches when its year has 4 digits,
    or ``None`` when the year's place is not known from the format (or it has none).

    ISO 8601 values start with the year. The :data:`DATE_FORMATS` share one pattern, so
    that the scan trying them all matches each value once: a value a layout reads
    matches the alternative of the others only with its year in full (the day and the
    month have at most 2 digits, so a 4-digit number is the year). A ``--date-format``
    starting with ``%Y`` and a separator, or ``%d`` and ``%m`` (either order) and
    separators before ``%Y``, is checked the same way; a separator that is a space is
    not one here (a space in a format matches any number of spaces, even none)."""
    if fmt == ISO:
        return f"^{_YEAR_FIRST}"
    if fmt in DATE_FORMATS:
        return f"^({_YEAR_FIRST}|{_YEAR_THIRD})"
    if re.fullmatch(r"%Y[^%0-9\s].*", fmt, re.DOTALL):
        return f"^{_YEAR_FIRST}"
    if re.fullmatch(r"%([dm])[^%0-9\s]%(?!\1)[dm][^%0-9\s]%Y([^%0-9].*)?", fmt, re.DOTALL):
        return f"^{_YEAR_THIRD}"
    return None


def _matches_year(text: str, pattern: str) -> str:
    """SQL: ``text`` matches ``pattern`` (:func:`_year_pattern`); one regular expression,
    about 0.05 s of CPU per million values."""
    return f"coalesce(regexp_matches({text}, {_quote(pattern)}), FALSE)"


# A date with a two-digit year (05/01/24, 12.31.24 14:30, 24-01-05): day, month or year,
# separator, the same again, two digits, then the time if any.
_SHORT_YEAR = re.compile(
    r"(?P<a>[0-9]{1,2})(?P<sep>[/.-])(?P<b>[0-9]{1,2})(?P=sep)[0-9]{2}(?:[ T](?P<time>.*))?"
)
_SHORT_YEAR_TIMES = (
    (re.compile(r"[0-9]{1,2}:[0-9]{2}"), " %H:%M"),
    (re.compile(r"[0-9]{1,2}:[0-9]{2}:[0-9]{2}"), " %H:%M:%S"),
    (re.compile(r"[0-9]{1,2}:[0-9]{2} ?[AaPp][Mm]"), " %I:%M %p"),
    (re.compile(r"[0-9]{1,2}:[0-9]{2}:[0-9]{2} ?[AaPp][Mm]"), " %I:%M:%S %p"),
)


def _short_year_advice(checker: _Checker, value: str, fmt: str, forced: bool) -> str:
    """What to say after an unreadable ``value`` that has a two-digit year: the year
    must have 4 digits, or ``--date-format`` with ``%y``. Under the user's format with
    ``%Y``, that format with ``%y`` when it reads the value; else in the value's own
    layout (day first, as the automatic formats try it, unless only the second number
    can be a day). Empty for any other value, and under a format with ``%y``."""
    codes = re.findall("%.", fmt)
    if "%y" in codes:
        return ""
    if forced:
        if "%Y" not in codes:
            return ""
        layout = fmt.replace("%Y", "%y")
        literal = _quote(value.strip())
        parsed = f"try_strptime({literal}, {_quote(layout)})"  # epoch: a word, no date
        reads = f"coalesce(isfinite({parsed}), FALSE) AND NOT {_wordy(literal)}"
        if not checker.con.execute(f"SELECT {reads}").fetchall()[0][0]:
            return ""
    else:
        found = _SHORT_YEAR.fullmatch(value.strip())
        if found is None:
            return ""
        sep = found["sep"]
        month_first = int(found["a"]) <= 12 < int(found["b"])
        layout = sep.join(("%m", "%d", "%y") if month_first else ("%d", "%m", "%y"))
        time = found["time"]
        if time:
            layout += next((f for p, f in _SHORT_YEAR_TIMES if p.fullmatch(time.strip())), "")
    return (
        "; a year is read only with its 4 digits (2024, not 24): for a file with two-digit "
        f"years pass the layout it uses, e.g. --date-format '{layout}'"
    )


def _wordy(text: str) -> str:
    """SQL: ``text`` holds no digit (``epoch``, ``infinity``): a word, not a date."""
    return f"NOT regexp_matches({text}, '[0-9]')"


def _ambiguity(
    checker: _Checker, texts: Sequence[tuple[str, str]], fmt: str, parse: Parse
) -> str | None:
    """A warning when every date also reads month-first and some read differently."""
    swapped = SWAPPED.get(fmt)
    if swapped is None or _bad_counts(checker, texts, [swapped], parse)[0][0]:
        return None
    for _, t in texts:
        found = checker.scan(
            f"SELECT {t} FROM raw WHERE {parse(t, fmt)} <> {parse(t, swapped)} LIMIT 1"
        )
        if found:
            return (
                f"every date also reads month first (e.g. '{found[0][0]}'): read day "
                f"first, as {fmt}; pass --date-format {swapped} if the month comes first"
            )
    return None


def _raise_unparsable(
    checker: _Checker,
    texts: Sequence[tuple[str, str]],
    fmt: str,
    parse: Parse,
    hint: str,
    reasons: Mapping[str, str] | None,
    *,
    forced: bool = False,
) -> NoReturn:
    """Raise the error for the first value ``fmt`` cannot read (the checks queued before,
    a missing date among them, first: they come first in the file's error order).
    ``forced``: ``fmt`` is the user's ``--date-format``."""
    checker.flush()
    found = _first_unread(checker, texts, lambda t: _unread(t, fmt, parse))
    if found is None:  # pragma: no cover - a failing value was counted
        raise AssertionError("unreachable: a failing row was counted")
    canonical, row, value = found
    reason = (reasons or {}).get(canonical, "unparsable date")
    shown = "empty value" if not value else f"'{value}'"
    advice = _short_year_advice(checker, value, fmt, forced)
    raise checker.fail(canonical, value, f"{reason}{hint}: {shown}{advice}", row)


def _parse_expr(text: str, fmt: str, tz: str) -> str:
    """Local TIMESTAMP from text; values with an offset are converted to ``tz``.

    The result must not depend on DuckDB's session time zone: a view is evaluated when
    a query reads it, and by then Ibis has set the session to UTC. So only an ISO value
    that names its offset or zone is cast to TIMESTAMPTZ (an absolute instant whatever
    the session's zone); one without is read as the wall-clock TIMESTAMP it is.
    """
    if fmt == ISO:
        return (
            f"CASE WHEN {_names_zone(text)} THEN {_zoned_iso(text, tz)} ELSE {_local_iso(text)} END"
        )
    if "%z" in fmt or "%Z" in fmt:
        return f"timezone({tz}, try_strptime({text}, {_quote(fmt)})::TIMESTAMPTZ)"
    return f"try_strptime({text}, {_quote(fmt)})::TIMESTAMP"


def _local_iso(text: str) -> str:
    """An ISO 8601 value without offset, as the local time it is (an offset, were there
    one, would be ignored: only for values :func:`_names_zone` finds none in)."""
    return f"try_cast({text} AS TIMESTAMP)"


def _zoned_iso(text: str, tz: str) -> str:
    """An ISO 8601 value with an offset or zone, converted to ``tz`` (one without would
    be taken in the session's zone: only for values :func:`_names_zone` holds for)."""
    return f"timezone({tz}, try_cast({text} AS TIMESTAMPTZ))"


def _names_zone(text: str) -> str:
    """SQL: ISO 8601 ``text`` (trimmed) carries an offset or a zone (``Z``, ``+02:00``,
    ``-05``, `` UTC``, `` Europe/Paris``). Past the date's first 10 characters a value
    without one has only the time's digits, colons and point and the ``T`` or space
    before them; any other character is an offset, a zone, or makes both casts fail."""
    return f"regexp_matches(substr({text}, 11), '[^0-9:. T]')"


def _normalised_select(
    checker: _Checker, types: dict[str, str], ts_expr: str, *, lazy: bool = False
) -> str:
    """Validate every column and return the SELECT producing the normalised table.

    ``lazy``: the SELECT becomes a view, each query computing only the columns it reads
    (see :func:`_order_id`)."""
    m = checker.mapping
    cust = checker.col("customer_id")
    customer = id_text(checker)
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
    order = (
        f"NULLIF(trim(CAST({checker.col('order_id')} AS VARCHAR)), '')"
        if "order_id" in m
        else "NULL"
    )
    if "order_id" in m and not lazy:
        checker.probe(f"bool_or({order} IS NULL)", "order_missing")  # is any order id missing?
    checker.flush()
    customer = read_id(checker)  # the validation scan found how the ids are written
    ts = f"({ts_expr})"
    parts = [
        f"{customer} AS customer_id",
        f"{ts} AS ts",
        f"CAST({ts} AS DATE) AS day",
        f"CASE WHEN {is_refund} THEN -abs({amount}) ELSE {amount} END AS amount",
        f"{is_refund} AS is_refund",
        f"{_order_id(checker, order, lazy)} AS order_id",
    ]
    for name in ("product_id", "category", "channel", "coupon_code"):
        expr = f"NULLIF(trim(CAST({checker.col(name)} AS VARCHAR)), '')" if name in m else "NULL"
        parts.append(f"CAST({expr} AS VARCHAR) AS {name}")
    parts.append(f"{quantity} AS quantity")
    if SEGMENT_VALUE in m:
        value = f"NULLIF(trim(CAST({checker.col(SEGMENT_VALUE)} AS VARCHAR)), '')"
        parts.append(f"{value} AS {SEGMENT_VALUE}")
    return "SELECT " + ", ".join(parts) + " FROM raw"


def _order_id(checker: _Checker, order: str, lazy: bool) -> str:
    """The file's order id; where there is none, ``'#row'`` + the row's position.

    Why the position and not customer + time: with dates only (no time of day), two
    purchases by one customer on one day would share an id and count as one order, so
    a same-day repeat buyer would not be a repeat buyer. The position is deterministic
    (DuckDB keeps the file's order) and unique. The window costs a pass over the rows,
    so a table is given it only when some order id is missing (a fact the validation
    scan finds on its way, see :meth:`_Checker.probe`). A view (``lazy``) always says
    ``coalesce``: DuckDB drops the window from any query that does not read
    ``order_id`` (the customer summary), so asking would cost a read of the column.
    """
    generated = "'#row' || CAST(row_number() OVER () AS VARCHAR)"
    if "order_id" not in checker.mapping:
        return generated
    if lazy:
        return f"coalesce({order}, {generated})"
    some_missing = bool(checker.facts.get("order_missing"))  # from the validation scan
    return f"coalesce({order}, {generated})" if some_missing else order


# Column types whose values are numbers already: read as they are (Parquet, Arrow).
_NUMERIC = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
            "UINTEGER", "UBIGINT", "UHUGEINT", "FLOAT", "REAL", "DOUBLE", "DECIMAL")  # fmt: skip
# Of those, the ones that can hold NaN and infinity.
_FLOATING = ("FLOAT", "REAL", "DOUBLE")
# Of those, the single-precision ones (a Parquet or Arrow float32 column).
_SINGLE = ("FLOAT", "REAL")


def _number(
    checker: _Checker, canonical: str, reason: str, raw_type: str, *, required: bool
) -> str:
    """The column as DOUBLE, with its check queued. A numeric column is cast directly
    (a missing required value is wrong, and so is NaN or infinity in a floating-point
    column), a single-precision one at its own precision (:func:`_single_precision`);
    text is parsed (an unparsable value is wrong). Through text, a numeric Parquet
    column of 10M rows cost a third of a second to load for nothing."""
    col = checker.col(canonical)
    kind = raw_type.split("(")[0]
    if kind in _NUMERIC:
        expr = _single_precision(col) if kind in _SINGLE else f"CAST({col} AS DOUBLE)"
        # One condition per column, missing or not finite: the validation scan of a
        # 10M-row Parquet file reads the column once.
        if kind in _FLOATING:
            bad = f"NOT coalesce(isfinite({col}), FALSE)" if required else f"NOT isfinite({col})"
            checker.check(canonical, bad, reason)
        elif required:
            checker.check(canonical, f"{col} IS NULL", reason)
        return expr
    text = f"NULLIF(trim(CAST({col} AS VARCHAR)), '')"
    expr = decimal_number(checker, canonical, text)
    bad = f"{expr} IS NULL" if required else f"{text} IS NOT NULL AND {expr} IS NULL"
    checker.check(canonical, bad, reason)
    return expr


def _single_precision(col: str) -> str:
    """SQL: the FLOAT (float32) ``col`` as the DOUBLE nearest the shortest decimal that
    reads back as the same float32: what the writer meant, as far as a float32 can tell.

    12.34 written as a float32 is 12.340000152587890625; cast to DOUBLE as it is, three
    of them sum to 37.0200004577637 and a million rows of it to 12,340,000.15 rather
    than 12,340,000.00. Read as 12.34 (numpy's ``str`` of the float32, the amount the
    import reads, :mod:`fidelite.processing.rows`), it sums as the same amounts in a
    DOUBLE column do. Not through ``CAST(col AS VARCHAR)``: DuckDB writes some float32
    values with more digits than they need (343126.125 for 343126.12, about 1 in 250).

    How: a float32 has at most 9 significant digits worth writing, and 6 always read
    back (``FLT_DIG``); the value rounded (half to even) to 6, 7, 8 then 9 significant
    digits is tried, the first that casts back to the same FLOAT wins (at each count the
    nearest decimal, so it is the shortest and nearest one). ``round_even`` scales by
    a power of ten that a double holds exactly only up to 10^22: values from 1e-14 to
    1e27, every amount, are rounded so; others (and zero, NaN, infinity, which the
    caller's check refuses when not finite) go through DuckDB's text. Checked against
    numpy on 3.5M float32 values, every bit pattern's kind: no difference. The cost,
    for FLOAT columns only: about 0.3 s of CPU per million values (a direct cast takes
    0.01 s), measured on the 2-core machine; ordering the candidates as a count of
    digits first, then one rounding, was no faster."""
    value = f"CAST({col} AS DOUBLE)"
    # try_cast: NULL for 0, NaN and infinity. DuckDB may compute a subexpression the
    # CASE repeats for every row, those the first branch takes too (it did: a NaN
    # failed the whole load), so no part may raise on any value.
    scale = f"try_cast(floor(log10(abs({value}))) AS INTEGER)"
    text = f"CAST(CAST({col} AS VARCHAR) AS DOUBLE)"
    rounded = [f"round_even({value}, {digits - 1} - {scale})" for digits in (6, 7, 8, 9)]
    tries = " ".join(f"WHEN try_cast({r} AS FLOAT) = {col} THEN {r}" for r in rounded)
    return f"(CASE WHEN NOT abs({col}) BETWEEN 1e-14 AND 1e27 THEN {text} {tries} ELSE {text} END)"


_COMMA_NUMBER = "'[+-]?[0-9]*,[0-9]+'"
# A number whose dot may be a thousands separator: 1 to 3 digits (not a lone 0: 0.250
# is no grouping), a dot, 3 digits.
_DOT_THOUSANDS = "'[+-]?[1-9][0-9]{0,2}[.][0-9]{3}'"
# Digits grouped by thousands (dot, space or apostrophe), with a decimal comma or not:
# what a European spreadsheet writes for 1500 (1.500,00), which fidelite never reads.
_GROUPED_NUMBER = "'[+-]?[0-9]{1,3}([. ''][0-9]{3})+(,[0-9]*)?'"


def decimal_number(checker: _Checker, canonical: str, text: str) -> str:
    """``text`` (a trimmed, NULL-when-empty SQL string) as a DOUBLE, NULL when unparsable.

    ``NaN``, ``inf``, ``Infinity`` (any case, any sign) and a number too large for a
    DOUBLE (``1e400``) parse, but they are no amount, quantity, mrr or score: a check is
    queued that refuses them (``unparsable <canonical>``), so the expression itself
    stays one cast for the queries that read it later.

    In a ``;``-separated CSV file a decimal comma (``1,5``) is read as a decimal point:
    spreadsheets set to most European locales write numbers so, and there a comma cannot
    separate fields. Then a column must not mix both: once ``1,5`` appears, ``1.500``
    could be a thousands separator, so it is an error rather than a guess. Elsewhere a
    decimal comma is an error that says how to write the number.

    For the same reason a ``;``-separated column is refused when it has no comma and
    every value with a dot has one to three digits, the dot and three digits
    (``1.500``, ``2.250``, whole numbers beside them): such a file is what a European
    spreadsheet writes with thousands separators, and reading 1500 as 1.5 is off by a
    factor of 1000 without a sign. A single value like ``12.5`` or ``1234.500`` says the
    dot is a decimal point, and the column is read as today. A value grouped by
    thousands that does not parse (``1.500,00``) is named as such, not as unparsable.
    """
    comma = f"regexp_full_match({text}, {_COMMA_NUMBER})"
    layout = checker.layout
    if layout is None or layout.delimiter != ";":
        checker.check(
            canonical,
            comma,
            "comma in a number (a decimal comma is read only in ';'-separated files, "
            "thousands separators never): write 1.5 or 1500",
        )
        number = f"try_cast({text} AS DOUBLE)"
    else:
        number = (
            f"try_cast(CASE WHEN {comma} THEN replace({text}, ',', '.') ELSE {text} END AS DOUBLE)"
        )
        grouped = f"regexp_full_match({text}, {_GROUPED_NUMBER})"
        checker.check(  # first: the most telling reason for 1.500,00
            canonical,
            f"{grouped} AND NOT coalesce(isfinite({number}), FALSE)",
            _thousands_reason,
        )
        uses_commas = f"(SELECT coalesce(bool_or({comma}), FALSE) FROM raw)"
        checker.check(
            canonical,
            f"{uses_commas} AND contains({text}, '.')",
            "decimal point in a column that uses decimal commas elsewhere (1.500 could mean "
            "1500): write every number with a decimal comma and no thousands separator",
        )
        dot3 = f"regexp_full_match({text}, {_DOT_THOUSANDS})"
        other = f"contains({text}, ',') OR (contains({text}, '.') AND NOT {dot3})"
        only_dot3 = (
            f"(SELECT coalesce(bool_or({dot3}), FALSE) "
            f"AND NOT coalesce(bool_or({other}), FALSE) FROM raw)"
        )
        checker.check(
            canonical,
            f"{only_dot3} AND {dot3}",
            "ambiguous number: every number of this ';'-separated column with a dot has "
            "three digits after it, so the dot may separate thousands (1.500 = 1500) or "
            "decimals (1.500 = 1.5); thousands separators are never read: write 1500 for "
            "fifteen hundred, or 1,5 (a decimal comma) for one and a half",
        )
    checker.check(canonical, f"NOT isfinite({number})", f"unparsable {canonical}")
    return number


def _thousands_reason(value: str) -> str:
    """The error for ``value``, a number grouped by thousands, showing it ungrouped
    (``1 234,50`` → ``1234,50``): the grouping characters of :data:`_GROUPED_NUMBER`
    removed, the decimal comma kept."""
    plain = re.sub(r"[. ']", "", value)
    return f"thousands separator in a number (none is read): '{value}'; write it as {plain}"


def _text(col: str, raw_type: str) -> str:
    """The column as trimmed text (cast first unless it is text already)."""
    return f"trim({col})" if raw_type == "VARCHAR" else f"trim(CAST({col} AS VARCHAR))"


# The whole number from which a float column of each width holds not every whole
# number: an id at or past it may have been rounded when the file was written. The
# imports' rule (fidelite.processing.cells: EXACT_FLOAT, Float32.exact, Float16.exact;
# a test keeps them equal), not imported here: that module loads the whole processing
# package, seconds of imports for a load that reads no float id.
EXACT_WHOLE = {"float16": 2**11, "float32": 2**24, "float64": 2**53}


def id_text(checker: _Checker, canonical: str = "customer_id") -> str:
    """SQL: the id column ``canonical`` as the text it names, as the imports read ids
    (:func:`fidelite.processing.cells.id_text`), with its check queued.

    A whole number of a floating-point or decimal column is the text of the integer:
    ``1001.0`` is ``'1001'`` (pandas writes an id column with an empty cell as float64;
    ``CAST(1001.0 AS VARCHAR)`` would be ``'1001.0'``, matching no ``1001`` of another
    file). A fraction, NaN or an infinity, or a float at or past the precision of its
    column (:data:`EXACT_WHOLE`: float64 from 2^53, float32 from 2^24, float16 from
    2^11) is refused, the error naming the file, row and column with the imports' words.
    A missing value stays NULL: the caller's check for a missing id names it (queue it
    after this one, so a NaN is named as such). Text and integers are read as before:
    trimmed text, an integer's digits.

    A CSV id column is a float column when every id in it is a whole number written
    with a decimal point (``1001.0``, ``-0.0``: how pandas writes a float64 column):
    those are read as the integer's text too, so the ids of a pandas CSV match the same
    file written as Parquet. Which it is, the validation scan finds (a probe): the SQL
    returned here is the trimmed text, which is empty exactly when the id is, for the
    checks; the SELECT after :meth:`_Checker.flush` takes :func:`read_id`.
    """
    checker.ids[canonical] = sql = _id_sql(checker, canonical)
    return sql


def _id_sql(checker: _Checker, canonical: str) -> str:
    col = checker.col(canonical)
    raw = _raw_types(checker.con)[checker.mapping[canonical]]
    kind = raw.split("(")[0]
    if checker.kind == "csv" and kind == "VARCHAR":
        text = f"trim({col})"
        whole = f"regexp_full_match({text}, {_quote(_WHOLE_DECIMAL)})"
        # Every id a whole decimal (one other value, or none at all, keeps the text), and
        # is one at or past float64's precision (refused then: it may have been rounded).
        checker.probe(
            f"coalesce(bool_and({whole}) FILTER (WHERE {text} <> ''), FALSE)",
            f"float_ids:{canonical}",
        )
        checker.probe(
            f"coalesce(bool_or({whole} AND {_too_large(text)}), FALSE)",
            f"float_ids_too_large:{canonical}",
        )
        return text
    if kind in _FLOATING:
        width = _float_width(checker, canonical, kind)
        bad = f"NOT isfinite({col}) OR {col} <> trunc({col}) OR abs({col}) >= {EXACT_WHOLE[width]}"
        checker.check(canonical, bad, lambda value: _id_reason(value, width))
        # try_cast: the checks run in one scan, which meets the values refused here
        return f"CAST(try_cast({col} AS BIGINT) AS VARCHAR)"
    if kind == "DECIMAL":
        checker.check(canonical, f"{col} <> trunc({col})", lambda v: _id_reason(v, "decimal"))
        return f"CAST(CAST(trunc({col}) AS HUGEINT) AS VARCHAR)"
    return _text(col, raw)


# A whole number as pandas writes a float64 column's value: ``1001.0``, ``-0.0``.
_WHOLE_DECIMAL = r"-?[0-9]+\.0+"


def _too_large(text: str) -> str:
    """SQL: the whole decimal ``text`` is at or past float64's precision (2^53). The
    DOUBLE of an integer's digits is at or past 2^53 exactly when the integer is."""
    return f"abs(try_cast(split_part({text}, '.', 1) AS DOUBLE)) >= {EXACT_WHOLE['float64']}"


def read_id(checker: _Checker, canonical: str = "customer_id") -> str:
    """SQL: the id column ``canonical`` as the text it names, for the SELECT that
    follows :meth:`_Checker.flush` (the validation scan) of a column read by
    :func:`id_text`. A CSV column of whole decimals only (see :func:`id_text`) is read
    as the integers' text (``1001.0`` is ``'1001'``, ``-0.0`` is ``'0'``), and one of
    them at or past 2^53 is refused as in a float64 Parquet column, naming its line: a
    float64 holds not every whole number from there, so the id may have been rounded.
    Any other CSV column is the trimmed text as written (``007``, ``A12``, ``10.1``,
    ``1e3``; ``1001.0`` beside ``1001``, which no float column holds)."""
    text = checker.ids[canonical]
    if not checker.facts.get(f"float_ids:{canonical}"):
        return text
    if checker.facts.get(f"float_ids_too_large:{canonical}"):
        bad = f"regexp_full_match({text}, {_quote(_WHOLE_DECIMAL)}) AND {_too_large(text)}"
        row, value = checker._first_failing_row(canonical, bad)
        raise checker.fail(canonical, value, _id_reason(value, "float64"), row)
    whole = f"CAST(try_cast(split_part({text}, '.', 1) AS BIGINT) AS VARCHAR)"
    return f"CASE WHEN {text} = '' THEN {text} ELSE {whole} END"


def _float_width(checker: _Checker, canonical: str, kind: str) -> str:
    """``float64``, ``float32`` or ``float16``: the width of the floating-point column of
    ``canonical``. DuckDB reads a Parquet or Arrow float16 column as a FLOAT (float32):
    the files' schemas (their footers) tell."""
    if kind == "DOUBLE":
        return "float64"
    column = checker.mapping[canonical]
    if isinstance(checker.source, pa.Table):
        schemas = [checker.source.schema]
    elif checker.kind == "parquet":
        import pyarrow.parquet as pq  # only for a float32 column

        schemas = [pq.read_schema(str(path)) for path in checker.files]
    else:
        return "float32"
    for schema in schemas:
        for name, type_ in zip(schema.names, schema.types, strict=True):
            if name.lower() == column.lower() and pa.types.is_float16(type_):
                return "float16"
    return "float32"


def _id_reason(value: str, width: str) -> str:
    """The imports' words for ``value`` (DuckDB's text of a number of a ``width``
    column: ``float64``, ``float32``, ``float16`` or ``decimal``), which names no id."""
    from decimal import Decimal

    from fidelite.processing import cells  # only for the error: its import takes seconds

    kinds: dict[str, Callable[[str], Any]] = {
        "float64": float, "float32": cells.Float32, "float16": cells.Float16, "decimal": Decimal
    }  # fmt: skip
    try:
        cells.id_text(kinds[width](value))
    except ValueError as exc:
        return str(exc)
    return f"{value} names no id"  # not reached: the check refuses what id_text refuses


_REFUND_WORDS = (
    f"unknown refund flag (a refund: {', '.join(TRUE_WORDS)}; a purchase: "
    f"{', '.join(w for w in FALSE_WORDS if w)} or an empty value; in any case)"
)


def _boolean(checker: _Checker, raw_type: str) -> str:
    col = checker.col("refund")
    if raw_type == "BOOLEAN":
        return f"coalesce({col}, FALSE)"
    word = f"lower(trim(coalesce(CAST({col} AS VARCHAR), '')))"
    allowed = ", ".join(_quote(w) for w in TRUE_WORDS + FALSE_WORDS)
    checker.check("refund", f"{word} NOT IN ({allowed})", _REFUND_WORDS)
    trues = ", ".join(_quote(w) for w in TRUE_WORDS)
    return f"{word} IN ({trues})"


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
