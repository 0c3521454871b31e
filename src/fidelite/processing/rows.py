"""Rows of an import file (CSV or Parquet), as spreadsheets and data tools write them.

A CSV file must be UTF-8 text (a leading byte order mark, as Excel writes, is
skipped); the whole file is checked before the first row is handed out, so a file
with a bad byte anywhere is refused before anything is imported, naming the line, and a
UTF-16 file is named as such (:mod:`fidelite.textfile`, shared with analytics).
The separator is the header's (``,``, ``;`` as Excel writes in French, TAB or ``|``:
:func:`fidelite.textfile.header_delimiter`, as analytics decides it), or the one a
first line ``sep=;`` declares (Excel writes it when asked to name the separator, and
hides it when it opens the file). Blank lines and that ``sep=`` line before the header
are skipped, as analytics skips them. Row numbers are those a spreadsheet shows (the
header is row 1, whatever comes before it, so a ``sep=`` line shifts no number).
A quote opened and never closed refuses the whole file, naming the line where its
record starts, before the first row is handed out: it would take in every later line,
and no row after it could be told apart. A closed quoted cell may hold line breaks.
Characters after a cell's closing quote leave the row's bounds clear (the record ends
at the end of that line): white space there is read as the old lenient reader read it
(``"paris, 1" `` is ``paris, 1 ``, trimmed as any cell), anything else (``"Bar"s``, a
quote inside a quoted value not doubled) hands out that row alone with a ``problem``.
Header names are trimmed as cells are, empty names left by trailing separators are
dropped, and a name given twice refuses the file (which column to read cannot be told).
A file of 0 bytes is refused as empty.
A row with more
non-empty cells than the header has is handed out with a ``problem`` (the importer
rejects it): its cells cannot be matched to columns, typically a JSON cell written
without quotes and split at its commas. So is a row with fewer cells than the header
(a cell left out, separator and all): its cells cannot be matched either, and are
never padded. A blank line, or one of white space only, is no row (it keeps its
number).

Parquet columns keep their types (an integer id stays an integer: the importer turns
ids into text), except that a value of a single-precision column (Arrow ``float``,
32 bits, or ``halffloat``, 16), at any depth (an ``items`` list of structs), is read
at the precision it was written with (:func:`_narrow_reader`): 12.34 written as a
float32 is the binary value 12.340000152587890625, which read as a double would be an
amount of 16 significant digits with 12 decimal places, refused by the amount rules
(:mod:`fidelite.engine.event`) although the writer meant 12.34.
"""

from __future__ import annotations

import csv
import difflib
import importlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from fidelite.processing.cells import Float16, Float32
from fidelite.textfile import (
    DELIMITERS,
    ENCODING,
    NoHeader,
    delimiter_name,
    first_not_utf8,
    header_delimiter,
    lines_before_header,
)

MAX_CELL = 2**31 - 1
"""Most characters a CSV cell may hold: any cell a file can carry (Python's csv reader
stops at 131,072 by default, and a long text attribute, read whole from Parquet or
the API, stopped the whole file as "badly quoted"). Only a quote never closed in a
file of gigabytes reaches it (:func:`_quoted`)."""
csv.field_size_limit(max(csv.field_size_limit(), MAX_CELL))

Columns = tuple[Sequence[str], Sequence[str]]
"""(required, optional) column names; any other column is an error."""


class ImportFileError(ValueError):
    """The file itself cannot be imported (unreadable, wrong format, missing columns)."""


@dataclass(frozen=True)
class Row:
    """One data row: its number, its cells by column (the cells of a row too short, which
    has a ``problem``, are None), and why it cannot be read as a row, if it cannot."""

    number: int
    cells: dict[str, Any]
    problem: str | None = None


def count_rows(path: Path, columns: Columns) -> int:
    """Number of data rows, after checking the file as :func:`read_rows` does (so a
    caller can refuse a bad file before opening anything else)."""
    if _is_parquet(path):
        table = _parquet(path)
        _check_columns(path, list(table.schema_arrow.names), columns)
        return int(table.metadata.num_rows)
    check_text(path)
    with _open(path) as handle:
        delimiter, line, records = _records(path, handle)
        _check_columns(path, _header_of(path, records, line), columns, delimiter, line)
        return sum(1 for _, record, _ in records if not _blank(record, delimiter))


def read_rows(path: Path, columns: Columns) -> Iterator[Row]:
    """The data rows of a CSV or Parquet file; checks the whole file's encoding (CSV)
    and its columns before the first row."""
    if _is_parquet(path):
        yield from _parquet_rows(path, columns)
        return
    check_text(path)
    with _open(path) as handle:  # the whole file's quotes, before the first row
        _, _, records = _records(path, handle)
        for _ in records:
            pass
    with _open(path) as handle:
        delimiter, line, records = _records(path, handle)
        header = _header_of(path, records, line)
        _check_columns(path, header, columns, delimiter, line)
        for number, (_, record, after) in enumerate(records, start=2):
            if not _blank(record, delimiter):  # a blank line is no row (keeps its number)
                problem = _after_quote(after, header) if after else None
                yield _row(number, header, record, delimiter, problem)


def read_cells(path: Path, names: Sequence[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """The cells of columns ``names`` (those the file has) of each row :func:`read_rows`
    hands out without a ``problem``, with its number, as it gives them: a light second
    reading of a file :func:`read_rows` has checked (a Parquet file's other columns are
    not read, a CSV row is not made into a :class:`Row`). For what the importer must
    know of the whole file before its first row (refunds listed before their purchase)."""
    if _is_parquet(path):
        table = _parquet(path)
        present = [name for name in names if name in table.schema_arrow.names]
        number = 2
        for batch in table.iter_batches(batch_size=10_000, columns=present):
            for cells in batch.to_pylist():
                yield number, cells
                number += 1
        return
    with _open(path) as handle:
        delimiter, line, records = _records(path, handle)
        header = _header_of(path, records, line)
        where = {name: header.index(name) for name in names if name in header}
        width = len(header)
        for number, (_, record, after) in enumerate(records, start=2):
            if after or len(record) < width or _blank(record, delimiter):
                continue  # a row with a problem (or no row): read_rows refuses it
            if any(cell.strip() for cell in record[width:]):
                continue
            yield number, {name: record[index] for name, index in where.items()}


def _blank(record: list[str], delimiter: str) -> bool:
    """Whether ``record`` is a line holding nothing but white space (or nothing): no
    row. A line of separators (``,,,,``) is a row (of empty cells), but where the
    separator is white space itself (TAB) such a line is blank too."""
    if len(record) > 1 and not delimiter.isspace():
        return False
    return not any(cell.strip() for cell in record)


def _header_of(path: Path, records: Iterator[Record], line: int) -> list[str]:
    """The column names of the first of ``records`` (the header, on physical ``line``);
    a header with characters after a closing quote refuses the file (which column is
    which cannot be told)."""
    start, record, after = next(records, (line, [], None))
    if after:
        problem = _after_quote(after).removeprefix("(row): ")
        raise ImportFileError(f"{path}: line {start}: the header has {problem}")
    return _header(record)


def _header(record: list[str]) -> list[str]:
    """The column names of the header ``record``, trimmed as cells are (``event_id ``
    is ``event_id``), without the empty names trailing separators leave (a spreadsheet
    exporting a column with no name and no values: ``...,amount,``); an empty name
    before a named column stays, to be refused (:func:`_check_columns`)."""
    names = [name.strip() for name in record]
    while names and not names[-1]:
        names.pop()
    return names


Record = tuple[int, list[str], tuple[int, str] | None]
"""A record of a CSV file: the physical line it starts on, its cells, and the first
cell (from 1) with characters after its closing quote, with those characters, if any:
such a record is no row (:func:`_after_quote`)."""


def _after_quote(after: tuple[int, str], header: Sequence[str] = ()) -> str:
    """Why a record with characters after the closing quote of a cell is no row,
    naming the cell (and its column under ``header``) and the characters."""
    cell, text = after
    column = f" ({header[cell - 1]})" if cell <= len(header) and header[cell - 1] else ""
    return (f"(row): characters {text.strip()!r} after the closing quote of cell {cell}"
            f'{column}: a quote inside a quoted value must be doubled ("")')  # fmt: skip


def _records(path: Path, handle: TextIO) -> tuple[str, int, Iterator[Record]]:
    """The file's separator, the header's physical line and a reader of its records,
    header first, each with the line it starts on. Lines before the header (blank
    lines, Excel's ``sep=;``) are skipped
    (:func:`~fidelite.textfile.lines_before_header`, as analytics reads them); the
    separator is the one a ``sep=`` line declares, else the header's
    (:func:`~fidelite.textfile.header_delimiter`). An empty file (0 bytes) is named so.

    A quote never closed would swallow every later line into one cell, and the rows
    after it would silently be lost, so the reader raises :class:`ImportFileError`
    naming the line the bad record starts on (:func:`_quoted`). A quoted cell holding a
    line break, closed, is one cell. Characters after a closing quote end the quoted
    part of the cell and the record ends with its line, so they are no reason to
    refuse the file: the record comes with a problem (:func:`_after_quotes`)."""
    try:
        empty = path.stat().st_size == 0
    except OSError as exc:
        raise ImportFileError(f"{path}: cannot read: {exc.strerror}") from None
    if empty:
        raise ImportFileError(f"{path}: the file is empty (0 bytes): no header, no rows")
    try:
        declared, skip = lines_before_header(path)
    except NoHeader as exc:
        where = "" if exc.line is None else f" line {exc.line}:"
        raise ImportFileError(f"{path}:{where} {exc}") from None
    for _ in range(skip):
        handle.readline()
    start = handle.tell()
    delimiter = declared or header_delimiter(handle.readline())
    handle.seek(start)
    lines: list[str] = []
    reader = csv.reader(_kept(handle, lines), delimiter=delimiter, quotechar='"')
    return delimiter, skip + 1, _quoted(path, reader, lines, delimiter, skip)


def _kept(handle: TextIO, lines: list[str]) -> Iterator[str]:
    """The lines of ``handle``, each also appended to ``lines`` (the text of the record
    being read: the csv reader reads no line ahead of the record it returns)."""
    for line in handle:
        lines.append(line)
        yield line


def _quoted(
    path: Path, reader: Any, lines: list[str], delimiter: str, skip: int
) -> Iterator[Record]:
    """The records of ``reader`` (which starts at physical line ``skip + 1``, reading
    leniently the lines it appends to ``lines``), each with the line it starts on and
    its quote problem; a record with a quote opened and never closed refuses the whole
    file, naming that line: what follows it cannot be told apart."""
    start = skip + 1
    while True:
        lines.clear()
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:  # a cell past MAX_CELL: a quote not closed
            raise ImportFileError(
                f"{path}: line {start}: badly quoted record ({exc}): a quote opened on this "
                "line is probably never closed, taking in the lines after it; nothing was "
                "imported"
            ) from None
        unclosed, after = _quote_problem(lines, delimiter)
        if unclosed:
            raise ImportFileError(
                f"{path}: line {start}: badly quoted record: a quote opened on this line is "
                "never closed, so it takes in every later line and no row after it can be "
                'told apart (a quote inside a quoted value is doubled: ""); nothing was '
                "imported"
            )
        yield start, record, after
        start = skip + reader.line_num + 1


def _quote_problem(lines: list[str], delimiter: str) -> tuple[bool, tuple[int, str] | None]:
    """:func:`_after_quotes` of the record made of ``lines``, computed only when a
    strict reading of them fails: a record with no quote, or whose quotes are all
    well placed (the usual record), is read strictly without error by the C reader,
    and then has neither problem. The character walk is for the rare record left."""
    for line in lines:
        if '"' in line:
            break
    else:
        return False, None
    try:
        next(csv.reader(lines, delimiter=delimiter, quotechar='"', strict=True))
    except (csv.Error, StopIteration):
        return _after_quotes("".join(lines), delimiter)
    return False, None


def _after_quotes(text: str, delimiter: str) -> tuple[bool, tuple[int, str] | None]:
    """Whether the record ``text`` (its physical lines, as the csv reader read them)
    ends inside a quoted cell (a quote never closed), and the first cell (numbered from
    1) with characters other than white space after its closing quote, with those
    characters. Follows the csv reader's states: a quote opens a quoted cell only as
    its first character; after a closing quote, a doubled quote is one quote, the
    separator or a line end ends the cell, anything else is kept in the cell and makes
    later quotes in it plain characters."""
    cell, state, after = 1, "start", ""
    found: tuple[int, str] | None = None
    for char in text:
        if state == "quoted":
            if char == '"':
                state = "quote"
            continue
        if state == "quote" and char == '"':
            state = "quoted"
            continue
        if char in "\r\n" or char == delimiter:
            if state == "after" and after.strip() and found is None:
                found = (cell, after)
            if char != delimiter:
                return False, found
            cell, state, after = cell + 1, "start", ""
        elif state == "start":
            state = "quoted" if char == '"' else "plain"
        elif state in ("quote", "after"):
            state, after = "after", after + char
    if state == "after" and after.strip() and found is None:
        found = (cell, after)
    return state == "quoted", found


def check_text(path: Path) -> None:
    """Raise :class:`ImportFileError` naming the first line that is not UTF-8."""
    try:
        bad = first_not_utf8(path)
    except OSError as exc:
        raise ImportFileError(f"{path}: cannot read: {exc.strerror}") from None
    if bad is not None:
        where = "" if bad.binary else f" line {bad.line}:"
        raise ImportFileError(f"{path}:{where} {bad.reason}")


def _open(path: Path) -> TextIO:
    try:
        return path.open(encoding=ENCODING, newline="")
    except OSError as exc:
        raise ImportFileError(f"{path}: cannot read: {exc.strerror}") from None


def _row(
    number: int, header: list[str], record: list[str], delimiter: str, problem: str | None = None
) -> Row:
    """Row ``number`` of ``record`` under ``header``. A row with fewer cells than the
    header is handed out with a ``problem``, never padded: a cell left out in the middle
    (``s1,refund,u1,...,10.00,,s1`` missing the channel's separator) shifts every later
    cell into the wrong column, so padding would have read a refund's ``refund_of`` as its
    channel and rejected it for a reason the user cannot see in the file. The missing
    columns are still present as ``None`` so the reject can name the row's event id."""
    cells: dict[str, Any] = dict(zip(header, record, strict=False))
    for column in header[len(record) :]:
        cells[column] = None
    if problem:  # characters after a closing quote: what the cells hold is not sure
        return Row(number, cells, problem)
    if len(record) < len(header):
        shown = delimiter_name(delimiter)
        problem = (f"(row): {len(record)} cells where the header has {len(header)} "
                   f"(an empty value still needs its {shown} separator)")  # fmt: skip
        return Row(number, cells, problem)
    extra = record[len(header) :]
    if any(cell.strip() for cell in extra):
        shown = "commas" if delimiter == "," else delimiter_name(delimiter)
        problem = (f"(row): {len(record)} cells where the header has {len(header)} "
                   f"(a cell holding {shown} needs quotes)")  # fmt: skip
        return Row(number, cells, problem)
    return Row(number, cells)


def decimal_column(path: Path, name: str) -> bool:
    """Whether ``path`` is a Parquet file whose column ``name`` holds floats or decimals
    (also as a dictionary): decided by the column's type, so it holds for every cell of
    the column, and never for a CSV file, whose cells are text."""
    if not _is_parquet(path):
        return False
    import pyarrow as pa

    schema = _parquet(path).schema_arrow
    if name not in schema.names:
        return False
    kind = schema.field(name).type
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    return bool(pa.types.is_floating(kind) or pa.types.is_decimal(kind))


def _is_parquet(path: Path) -> bool:
    return path.suffix.lower() == ".parquet"


def _parquet(path: Path) -> Any:
    pq = importlib.import_module("pyarrow.parquet")
    try:
        return pq.ParquetFile(path)
    except (OSError, ValueError) as exc:
        raise ImportFileError(f"{path}: not a readable Parquet file: {exc}") from None


def _parquet_rows(path: Path, columns: Columns) -> Iterator[Row]:
    table = _parquet(path)
    schema = table.schema_arrow
    _check_columns(path, list(schema.names), columns)
    readers = {f.name: _narrow_reader(f.type) for f in schema}
    narrow = {name: reader for name, reader in readers.items() if reader is not None}
    number = 2
    for batch in table.iter_batches(batch_size=10_000):
        for cells in batch.to_pylist():
            for name, reader in narrow.items():
                cells[name] = reader(cells[name])
            yield Row(number, cells)
            number += 1


Reader = Callable[[Any], Any]
"""How a cell of one Parquet column is read from what ``to_pylist`` gives."""


def _narrow_reader(kind: Any) -> Reader | None:
    """How to read a column of Arrow type ``kind`` that holds single- or half-precision
    floats (``float``, ``halffloat``), at the top or nested (a list of structs, a map, a
    dictionary): each such float becomes the double nearest the shortest decimal that
    reads back as the same float32 (float16), the number the writer meant as far as
    that type can tell (12.34, not 12.34000015258789). ``None`` for a column holding no
    such float, which is handed out as it is (a double column's 12.34000015258789 too).

    Invariant: a float read so has a ``str()`` that is that shortest decimal (at most 9
    significant digits, which a double holds exactly), so the amount rules read 12.34,
    refuse a float32's 0.00001 as too fine, and a file read again gives the same
    amounts. Decided by the column's type, once per file, never by the value."""
    import numpy as np
    import pyarrow as pa

    types = pa.types
    if types.is_float32(kind):
        return _shortest(np.float32, Float32)
    if types.is_float16(kind):
        return _shortest(np.float16, Float16)
    if types.is_dictionary(kind):
        return _narrow_reader(kind.value_type)
    if types.is_struct(kind):
        fields = [(f.name, _narrow_reader(f.type)) for f in kind]
        return _struct_reader(fields) if any(r for _, r in fields) else None
    if types.is_map(kind):
        key, item = _narrow_reader(kind.key_type), _narrow_reader(kind.item_type)
        return _map_reader(key, item) if key or item else None
    lists = (types.is_list, types.is_large_list, types.is_fixed_size_list,
             types.is_list_view, types.is_large_list_view)  # fmt: skip
    if any(is_list(kind) for is_list in lists):
        values = _narrow_reader(kind.value_type)
        return _list_reader(values) if values else None
    return None


def _shortest(scalar: Callable[[float], Any], kind: type[float]) -> Reader:
    """A float of the numpy type ``scalar`` as the double of its shortest decimal:
    numpy's ``str`` of a float32 is the shortest decimal that reads back as it. Handed
    out as ``kind`` (:class:`~fidelite.processing.cells.Float32`), a float that says the
    precision it was written at, so an id cell too large for it is refused."""

    def read(value: Any) -> Any:
        return None if value is None else kind(str(scalar(value)))

    return read


def _struct_reader(fields: list[tuple[str, Reader | None]]) -> Reader:
    def read(value: Any) -> Any:
        if value is None:
            return None
        return {name: reader(value[name]) if reader else value[name] for name, reader in fields}

    return read


def _map_reader(key: Reader | None, item: Reader | None) -> Reader:
    def read(value: Any) -> Any:
        if value is None:
            return None
        return [(key(k) if key else k, item(v) if item else v) for k, v in value]

    return read


def _list_reader(values: Reader) -> Reader:
    def read(value: Any) -> Any:
        return None if value is None else [values(item) for item in value]

    return read


def _check_columns(
    path: Path,
    names: Sequence[str],
    allowed: Columns,
    delimiter: str | None = None,
    line: int = 1,
) -> None:
    """Every required column is there and no unknown one; a header with both problems
    is told both at once (``missing column(s): at; unknown column(s): date (did you
    mean 'at'?)``), as a misspelt required column gives both, so one fix of the header
    is enough. A CSV header read as a single
    column that holds column names (``event_id type member at``) has none of the
    separators: say so, with the header as written, rather than list as missing the
    columns the user can see in it.
    ``delimiter`` is None for a Parquet file; ``line`` is the header's physical line."""
    required, optional = allowed
    missing = [c for c in required if c not in names]
    known = (*required, *optional)
    if missing and delimiter is not None and _unseparated(names, known):
        separators = ", ".join(delimiter_name(d) for d in DELIMITERS)
        raise ImportFileError(
            f"{path}: line {line}: the header {names[0]!r} is a single column: no separator "
            f"({separators}) between the column names; the file needs the column(s) "
            f"{', '.join(required)}, separated by ',' or ';'"
        )
    problems = [f"missing column(s): {', '.join(missing)}"] if missing else []
    empty = [str(index) for index, name in enumerate(names, start=1) if not name]
    if empty:
        problems.append(f"an empty column name (column {', '.join(empty)}): name the column "
                        "or remove it")  # fmt: skip
    unknown = [c for c in names if c and c not in known]
    if unknown:
        free = [c for c in known if c not in names]  # a column the file does not have yet
        problems.append(f"unknown column(s): {', '.join(_guessed(c, free) for c in unknown)}")
    for name in dict.fromkeys(names):
        places = [index for index, other in enumerate(names, start=1) if other == name]
        if name and len(places) > 1:
            shown = ", ".join(map(str, places[:-1])) + f" and {places[-1]}"
            problems.append(f"the column {name!r} appears {len(places)} times (columns "
                            f"{shown}): keep one")  # fmt: skip
    if problems:
        raise ImportFileError(f"{path}: {'; '.join(problems)}")


GUESS_CUTOFF = 0.65
"""How alike (:class:`difflib.SequenceMatcher` ratio) an unknown column name and a
column must be for the column to be guessed: ``chanel``/``channel`` 0.92, ``membre``/
``member`` 0.83, ``date``/``at`` 0.67 are; ``first_name``/``birth_date`` 0.6 and
``country``/``coupon`` 0.62 (difflib's default cutoff, 0.6, took them) are not."""


def _guessed(name: str, known: Sequence[str]) -> str:
    """``name`` quoted (so a space in it shows), and the column it is likely a typo of,
    as unknown event types are told (``'chanel' (did you mean 'channel'?)``); a name
    close to none stands alone. Case is ignored in the guess: ``'Event_ID'`` is told
    ``event_id``, the names being lower case. Only a close name is guessed
    (:data:`GUESS_CUTOFF`): a CRM's own columns (``email``, ``first_name``,
    ``country``) are no typo of ours, and told as they are."""
    lower = {column.lower(): column for column in known}
    close = difflib.get_close_matches(name.lower(), list(lower), n=1, cutoff=GUESS_CUTOFF)
    return f"{name!r} (did you mean {lower[close[0]]!r}?)" if close else repr(name)


def _unseparated(names: Sequence[str], known: Sequence[str]) -> bool:
    """Whether the header ``names`` is one column that is no column name but holds some:
    column names written with a separator the reader does not know (spaces, ``:``)."""
    return len(names) == 1 and names[0] not in known and any(c in names[0] for c in known)
