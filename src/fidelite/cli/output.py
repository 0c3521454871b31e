"""Rendering shared by every command: tables for people, JSON/CSV for machines.

Every command that prints data takes ``--format table|json`` (some add ``csv``) and
passes its rows here, so the machine formats stay identical across commands. Only a
command whose output is a list of records (printed with :func:`print_rows`) takes
``csv``; the others refuse it with :func:`refuse_csv` as a usage error before doing
anything, rather than printing a table or a sentence a CSV reader would misread.
"""

from __future__ import annotations

import csv
import json
import os
import re
import sys
from collections.abc import Collection, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from enum import Enum, StrEnum
from typing import Any, NoReturn

import typer
from rich.cells import cell_len
from rich.console import Console, ConsoleDimensions
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text


class _Stdout(Console):
    """The console of stdout. Into a pipe or a file a sentence stays one line, however
    long (Rich would wrap it at 80 columns there, as if a terminal were that wide); at a
    terminal it wraps at the terminal's width, and ``COLUMNS``, when set, is obeyed.
    Tables keep their own layout either way (see :func:`print_table`)."""

    def print(self, *objects: Any, soft_wrap: bool | None = None, **options: Any) -> None:
        if soft_wrap is None:
            soft_wrap = not self.is_terminal and not os.environ.get("COLUMNS")
        super().print(*objects, soft_wrap=soft_wrap, **options)

    @property
    def size(self) -> ConsoleDimensions:
        """Rich takes 80 columns at a terminal whose ``TERM`` is ``dumb``, however wide;
        the terminal's own width is asked for instead (``COLUMNS`` still wins)."""
        if self.is_dumb_terminal and self._width is None:
            try:
                width, height = os.get_terminal_size(self.file.fileno())
            except (AttributeError, ValueError, OSError):
                return super().size
            return ConsoleDimensions(width, self._height or height)
        return super().size

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        self._width, self._height = new_size

    def on_broken_pipe(self) -> None:
        """The reader of stdout has gone (``| head``): end quietly with status 141, as
        every other format does (Rich's own way is status 1, a real error's)."""
        from fidelite.cli.entry import quit_closed_output

        self.quiet = True
        quit_closed_output()


console = _Stdout()
err_console = Console(stderr=True)


class OutputFormat(StrEnum):
    """Output formats accepted by ``--format``."""

    table = "table"
    json = "json"
    csv = "csv"


TABLE_OR_JSON = (OutputFormat.table, OutputFormat.json)
"""The formats of a command whose output is not a list of records (no csv)."""


def refuse_csv(value: OutputFormat | str) -> OutputFormat:
    """``--format`` of a command whose output is not a list of records: table or json.

    The option's parser, so the value reaches the command as the same
    :class:`OutputFormat` member every command compares against. Anything else, csv
    included, is a usage error (exit status 2, naming the option and the two formats it
    takes) raised while the command line is read, before anything is opened, read or
    written. Matching is exact, as for every other ``--format``.
    """
    fmt = next((f for f in TABLE_OR_JSON if value == f.value), None)
    if fmt is not None:
        return fmt
    choices = ", ".join(repr(f.value) for f in TABLE_OR_JSON)
    why = ": this command's output is not a list of rows" if value == OutputFormat.csv else "."
    raise typer.BadParameter(f"{str(value)!r} is not one of {choices}{why}")


def table_or_json_completion(incomplete: str) -> list[str]:
    """What the shell completes ``--format`` to where csv is refused."""
    return [f.value for f in TABLE_OR_JSON if f.value.startswith(incomplete)]


def to_jsonable(value: Any) -> Any:
    """Convert dates, decimals and enums so ``json.dumps`` keeps exact values."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    return value


def print_json(payload: Any) -> None:
    """Print ``payload`` as JSON on stdout (no Rich markup, safe for pipes)."""
    sys.stdout.write(json.dumps(to_jsonable(payload), indent=2, ensure_ascii=False) + "\n")


def print_rows(
    rows: Sequence[Mapping[str, Any]],
    fmt: OutputFormat,
    *,
    title: str | None = None,
    columns: Sequence[str] | None = None,
    free_text: Collection[str] = (),
) -> None:
    """Print rows as a Rich table, a JSON list or CSV.

    In CSV, the ``free_text`` columns (text people type, e.g. a key's label) are
    written as :func:`csv_cell` makes them safe for a spreadsheet; the other columns
    (ids, codes, figures) are written exactly, so that a file joined back to other data
    by ``customer_id`` finds ``-bob`` as ``-bob``."""
    cols = list(columns) if columns else (list(rows[0].keys()) if rows else [])
    if fmt is OutputFormat.json:
        print_json(list(rows))
    elif fmt is OutputFormat.csv:
        writer = csv.DictWriter(sys.stdout, fieldnames=cols, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: csv_cell(row.get(k)) if k in free_text
                             else to_jsonable(row.get(k)) for k in cols})  # fmt: skip
    else:
        cells = [["" if row.get(c) is None else str(to_jsonable(row.get(c))) for c in cols]
                 for row in rows]  # fmt: skip
        _print_cells(cols, cells, title)


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def csv_cell(value: Any) -> Any:
    """``value`` as a CSV cell: text a spreadsheet would run as a formula (starting with
    ``=``, ``+``, ``-``, ``@``, a tab or a carriage return: a key label
    ``=HYPERLINK(...)``) is written after a ``'``, which spreadsheets show as text.
    Numbers, negative ones included (also written as text, e.g. ``-12.50``), stay
    numbers."""
    cell = to_jsonable(value)
    if (
        isinstance(value, str)
        and value.startswith(_FORMULA_START)
        and not _PLAIN_NUMBER.fullmatch(value)
    ):
        return "'" + value
    return cell


_FREE_WORD = 20
"""In a column of free text (values with spaces), how long a word may be before it is
folded onto the next line rather than widening the column; other values (numbers,
dates, ids) are never broken."""
_HEADER_PART = re.compile(r".+?(?:[_\s-]|$)")


def _header_parts(header: str) -> list[str]:
    """A column name cut after each ``_``, ``-`` or space, where it may wrap."""
    return [part for part in _HEADER_PART.findall(header) if part] or [header]


def _wrap_header(header: str, width: int) -> str:
    lines: list[str] = []
    current = ""
    for part in _header_parts(header):
        if current and cell_len((current + part).rstrip()) > width:
            lines.append(current.rstrip())
            current = part
        else:
            current += part
    lines.append(current.rstrip())
    return "\n".join(lines)


def _fit(cols: Sequence[str], cells: Sequence[Sequence[str]], width: int) -> list[int] | None:
    """Each column's width for a table of at most ``width`` columns in which no number,
    date or id is cut (a header may wrap at ``_``, free text at its spaces), or None
    when no such table fits."""
    overhead = 3 * len(cols) + 1  # a border and two spaces of padding per column
    natural: list[int] = []
    least: list[int] = []
    for i, header in enumerate(cols):
        values = [row[i] for row in cells]
        natural.append(max([cell_len(header), *(cell_len(v) for v in values)]))
        need = max(cell_len(part.rstrip()) for part in _header_parts(header))
        for value in values:
            words = value.split()
            if len(words) > 1:
                need = max(need, min(_FREE_WORD, max(cell_len(w) for w in words)))
            else:
                need = max(need, cell_len(value))
        least.append(need)
    if sum(natural) + overhead <= width:
        return natural
    room = width - overhead - sum(least)
    if room < 0:
        return None
    widths = list(least)
    for i in sorted(range(len(cols)), key=lambda i: natural[i] - least[i]):
        more = min(natural[i] - least[i], room)
        widths[i] += more
        room -= more
    return widths


def _print_cells(cols: Sequence[str], cells: Sequence[Sequence[str]], title: str | None) -> None:
    """Rows as a table whose values are all whole: fitted to the terminal (or
    ``COLUMNS``) when one fits, else one record per block of ``column: value`` lines;
    into a pipe or a file, at the table's own width."""
    fitted = console.is_terminal or bool(os.environ.get("COLUMNS"))
    widths = _fit(cols, cells, console.width if fitted else 1 << 16)
    if widths is None:
        _print_records(cols, cells, title)
        return
    table = Table(title=title)
    for i, (header, width) in enumerate(zip(cols, widths, strict=True)):
        free = any(len(row[i].split()) > 1 for row in cells)
        table.add_column(Text(_wrap_header(header, width)), width=width, no_wrap=not free,
                         overflow="fold")  # fmt: skip
    for row in cells:
        table.add_row(*(Text(value) for value in row))
    print_table(table)


def _print_records(cols: Sequence[str], cells: Sequence[Sequence[str]], title: str | None) -> None:
    """Rows too wide for the terminal as a table: each a block of ``column: value``
    lines, blocks apart by a blank line; a long value runs on, whole."""
    if title:
        console.print(Text(title, style="italic"))
    if not cells:
        console.print(Text(f"no rows (columns: {', '.join(cols)})"), soft_wrap=True)
    pad = max(cell_len(c) for c in cols) + 1 if cols else 0
    pad = pad if pad <= console.width // 2 else 0
    for n, row in enumerate(cells):
        if n:
            console.print()
        for header, value in zip(cols, row, strict=True):
            label = f"{header}:"
            console.print(Text(f"{label}{' ' * (pad - cell_len(label))} {value}"), soft_wrap=True)


def print_table(table: Table) -> None:
    """Print ``table`` on stdout: at a terminal, fitted to its width (Rich's way); into a
    pipe or a file, at the table's own width, so no value is cut to ``clien…`` or
    wrapped. Rich takes 80 columns when stdout is not a terminal, and a table written
    to a file or read in ``less`` is for reading whole. ``COLUMNS``, when set, is obeyed.
    """
    if console.is_terminal or os.environ.get("COLUMNS"):
        console.print(table)
        return
    natural = Measurement.get(console, console.options.update_width(1 << 16), table).maximum
    width = console.width
    console.width = max(width, natural)
    try:
        console.print(table)
    finally:
        console.width = width


def fail(
    message: str, *, code: str = "error", fmt: OutputFormat | None = None, **extra: Any
) -> NoReturn:
    """Report an error and exit non-zero.

    With ``--format json`` the error is a JSON object on stdout (``{"error": {...}}``)
    so scripts can read the code; otherwise red text on stderr, never wrapped at the
    terminal's width, so each line of ``message`` stays one line (``file:line:column:``
    problems are read one per line by editors and scripts, and stderr is often a file).
    """
    if fmt is OutputFormat.json:
        print_json({"error": {"code": code, "message": message, **extra}})
    else:
        err_console.print(
            f"[bold red]error[/] {escape(f'[{code}]')} {escape(message)}",
            highlight=False,
            soft_wrap=True,
        )
    raise typer.Exit(code=1 if code != "usage" else 2)
