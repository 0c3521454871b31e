"""The layout of a CSV file: its delimiter and header, decided before DuckDB reads it.

Why not DuckDB's sniffer: it guesses the delimiter, the quoting and the header from a
sample of rows, and one malformed row (a field too many or too few) makes it give up
and read every line as one column, or take a data line for the header. The user then
sees "missing required column 'customer_id'" for a file whose header has it. The
header line is the one line whose meaning we know, so the layout is read from it:

* the header is the first line that is not blank; blank lines before it are skipped,
  and so is a first line ``sep=X`` (what Excel writes when asked to name the
  separator), which declares the delimiter ``X``; :attr:`CsvLayout.skip` counts the
  lines before the header, which DuckDB is told to skip;
* the delimiter is ``--delimiter`` when given, else the one a ``sep=`` line declares,
  else the most frequent of ``, ; TAB |`` in the header line (``,`` when none is
  there: a one-column file);
* fields are quoted with ``"`` and a quote inside a quoted field is doubled (RFC 4180);
* column names are the header's fields, trimmed; an empty name becomes ``columnN``
  (N = 0-based position) and a repeated name, in any case, gets ``_1``, ``_2`` (as
  DuckDB, whose names ignore case, names them;
  :attr:`CsvLayout.written` keeps the names as written, so a reader can refuse to pick
  one of two columns named alike);
* the file is UTF-8 text (a byte order mark is skipped): a header that is not, or is
  UTF-16, is a :class:`HeaderError`, and so is a file that is no text at all (a
  workbook, a Parquet file named .csv: :func:`fidelite.textfile.binary_kind`, no line
  named); a later line that is not is found only when DuckDB
  stops at it (:func:`column_of_bad_byte` then says in which column), so reading a good
  file costs nothing more.

DuckDB then reads the file with exactly this layout and checks every record against
the header; when it finds a malformed one, :func:`first_malformed_record` reads the
file with Python's ``csv`` module to say which line and how many fields it has.

A glob of CSV files is read as one file after the other: each must have the first
one's layout (the loader checks every header), and :func:`locate_record` says in which
file and on which line a record, numbered across them, starts.

Invariant: the line numbers given here count physical lines, the file's first line
being line 1 (the header's line when nothing comes before it), and a record spanning
several lines (a quoted newline) is numbered by its first line.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from fidelite.textfile import ENCODING, NoHeader, header_delimiter, lines_before_header

QUOTE = '"'


@dataclass(frozen=True)
class CsvLayout:
    """How one CSV file is read: its delimiter and its column names, in order, the
    names as the header wrote them (``amount, amount`` where ``columns`` has
    ``amount, amount_1``), and the number of lines before the header (blank lines and
    a ``sep=`` line), so that the header is line ``skip + 1``."""

    delimiter: str
    columns: tuple[str, ...]
    written: tuple[str, ...] = ()
    skip: int = 0

    def reader(self, fh: TextIO) -> Any:
        """A :mod:`csv` reader of ``fh`` with this layout (RFC 4180 quoting, strict)."""
        return csv.reader(
            fh, delimiter=self.delimiter, quotechar=QUOTE, doublequote=True, strict=True
        )


@dataclass(frozen=True)
class MalformedRecord:
    """A record that does not match the header: where it starts and what is wrong."""

    line: int
    reason: str


class HeaderError(ValueError):
    """The file has no usable header (only blank lines, or a line before the header
    that is not UTF-8 text); ``line`` is the physical line at fault, ``None`` when
    the fault is the whole file's."""

    def __init__(self, reason: str, line: int | None = 1) -> None:
        super().__init__(reason)
        self.line = line


def read_layout(path: Path, delimiter: str | None = None) -> CsvLayout:
    """The layout of the CSV file at ``path`` (see the module docstring)."""
    declared, skip = _lines_before_header(path)
    with path.open(newline="", encoding=ENCODING, errors="replace") as fh:
        for _ in range(skip):
            fh.readline()
        delim = delimiter or declared or header_delimiter(fh.readline())
        fh.seek(0)
        for _ in range(skip):
            fh.readline()
        header = next(csv.reader(fh, delimiter=delim, quotechar=QUOTE), [])
    written = tuple(field.strip() or f"column{index}" for index, field in enumerate(header))
    return CsvLayout(delim, _column_names(written), written, skip)


def _lines_before_header(path: Path) -> tuple[str | None, int]:
    """:func:`fidelite.textfile.lines_before_header` (shared with the importer), its
    error as a :class:`HeaderError`."""
    try:
        return lines_before_header(path)
    except NoHeader as exc:
        raise HeaderError(str(exc), exc.line) from None


def _column_names(written: tuple[str, ...]) -> tuple[str, ...]:
    names: list[str] = []
    for name in written:
        base, n = name, 0
        while name.lower() in (other.lower() for other in names):  # DuckDB ignores case
            n += 1
            name = f"{base}_{n}"
        names.append(name)
    return tuple(names)


def first_malformed_record(path: Path, layout: CsvLayout) -> MalformedRecord | None:
    """The first record whose field count differs from the header's, or whose quotes are
    broken; ``None`` when every record is well formed. Blank lines are skipped (DuckDB
    skips them too)."""
    width = len(layout.columns)
    try:
        for start, fields in records(path, layout):
            if len(fields) != width:
                return MalformedRecord(start, _count_reason(len(fields), layout))
    except BadQuoting as bad:
        return MalformedRecord(bad.line, bad.reason)
    return None


_ENDINGS = {b"\r\n": "CRLF (Windows)", b"\n": "LF (Unix)"}


def first_other_line_ending(path: Path) -> MalformedRecord | None:
    """The first line that ends otherwise than the file's first line (``\\r\\n`` where
    line 1 ends with ``\\n``, or the reverse); ``None`` when every line ends alike. Line
    1 is the header, or a ``sep=`` line or a blank line before it.

    DuckDB reads a file with one line ending, decided from its first lines, and stops
    at a line ending the other way with only "the CSV parser reached an invalid state":
    a file pasted together from a Windows and a Unix export. Lines are counted
    physically, a quoted newline included. Reads the whole file: for an error message
    only.
    """
    first: bytes | None = None
    with path.open("rb") as fh:
        for number, line in enumerate(fh, start=1):
            ending = _ending(line)
            if ending is None:  # the last line, without an ending
                return None
            if first is None:
                first = ending
            elif ending != first:
                return MalformedRecord(
                    number,
                    f"this line ends with {_ENDINGS[ending]} but line 1 ends "
                    f"with {_ENDINGS[first]}: the file mixes line endings (lines pasted "
                    "from another export?); save it again so every line ends alike",
                )
    return None


def _ending(line: bytes) -> bytes | None:
    if line.endswith(b"\r\n"):
        return b"\r\n"
    if line.endswith(b"\n"):
        return b"\n"
    return None


class BadQuoting(ValueError):
    """A record whose quotes Python's ``csv`` cannot read, with the line it starts on."""

    def __init__(self, line: int, exc: csv.Error) -> None:
        self.line = line
        self.reason = (
            f"badly quoted record ({exc}): a quote opened on this line is not closed, or a "
            'quote inside a quoted value is not doubled ("")'
        )
        super().__init__(f"line {line}: {self.reason}")


def records(path: Path, layout: CsvLayout) -> Iterator[tuple[int, list[str]]]:
    """Each non-blank data record with the line it starts on (the header is skipped).

    Raises :class:`BadQuoting` at a record Python's ``csv`` cannot read. A byte that is
    not UTF-8 is kept as a lone surrogate (``\udc80``-``\udcff``), which
    :func:`column_of_bad_byte` looks for.
    """
    with path.open(newline="", encoding=ENCODING, errors="surrogateescape") as fh:
        for _ in range(layout.skip):  # blank lines and a sep= line, as DuckDB skips them
            fh.readline()
        reader = layout.reader(fh)
        start, header = layout.skip + 1, True
        while True:
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise BadQuoting(start, exc) from exc
            if fields and not header:
                yield start, fields
            header, start = False, layout.skip + reader.line_num + 1


def _count_reason(found: int, layout: CsvLayout) -> str:
    width = len(layout.columns)
    fields = "field" if found == 1 else "fields"
    shown = "TAB" if layout.delimiter == "\t" else f"'{layout.delimiter}'"
    return (
        f"this line has {found} {fields} but the header has {width} "
        f"({', '.join(layout.columns)}), separated by {shown}: a value containing "
        f"{shown} must be quoted, and every line needs a value (possibly empty) for "
        "every column"
    )


@dataclass(frozen=True)
class Located:
    """Where a data record is: its file, the line it starts on (``None`` when it cannot
    be found) and its fields (empty when not found)."""

    path: Path
    line: int | None
    fields: tuple[str, ...] = ()

    @property
    def only_separators(self) -> bool:
        """The record has every field, each empty: a line such as ``;;;;``, which a
        spreadsheet leaves below its data. DuckDB reads it as a row of NULLs."""
        return len(self.fields) > 1 and not any(self.fields)


def locate_record(paths: Sequence[Path], layout: CsvLayout, data_row: int) -> Located:
    """The file and the line on which data record ``data_row`` starts, and its fields,
    counting the records of ``paths`` one file after the other, in the order DuckDB
    reads them (as it numbers a glob's rows)."""
    before = 0
    for path in paths:
        count = 0
        try:
            for count, (start, fields) in enumerate(records(path, layout), start=1):
                if before + count == data_row:
                    return Located(path, start, tuple(fields))
        except BadQuoting:
            return Located(path, None)
        before += count
    return Located(paths[-1], None)


def only_separators_reason() -> str:
    """What is wrong with a line made only of separators (:attr:`Located.only_separators`)."""
    return (
        "this line is empty (only separators): delete it (a spreadsheet may leave such "
        "lines below its data)"
    )


def column_of_bad_byte(path: Path, layout: CsvLayout, line: int) -> str | None:
    """The column of the field holding the first byte that is not UTF-8, on ``line`` (as
    :func:`fidelite.textfile.first_not_utf8` found it); ``None`` when no field of a
    record starting by then holds one, or the file cannot be split into records. Reads
    the file up to that record: for an error message only."""
    try:
        for start, fields in records(path, layout):
            if start > line:
                return None
            for index, value in enumerate(fields):
                if not value.isascii() and _holds_bad_byte(value):
                    return layout.columns[index] if index < len(layout.columns) else None
    except BadQuoting:
        return None
    return None


def _holds_bad_byte(value: str) -> bool:
    try:
        value.encode("utf-8")  # a lone surrogate, from surrogateescape, cannot be encoded
    except UnicodeEncodeError:
        return True
    return False
