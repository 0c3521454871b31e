"""Options shared by command groups, declared once so their names and help agree."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from sqlalchemy import text

from fidelite.cli.output import (
    TABLE_OR_JSON,
    OutputFormat,
    fail,
    refuse_csv,
    table_or_json_completion,
)
from fidelite.program import ProgramError, load_program

if TYPE_CHECKING:
    from fidelite.cli.policy import JobProgram
    from fidelite.ledger import Ledger

PROGRAM_FILE_SUFFIXES = (".yaml", ".yml", ".json")


def is_program_id(value: str) -> bool:
    """Whether ``--program`` names a program by id rather than by its file.

    A file is named by its suffix (``shop.yaml``, ``.yml``, ``.json``) or a path
    (``programs/shop``); anything else is an id, passed on as given: the ledger accepts
    ids such as ``Cafe-Club`` that a program file could not declare, and they must stay
    reachable.
    """
    return not (value.lower().endswith(PROGRAM_FILE_SUFFIXES) or "/" in value or "\\" in value)


def missing_program_file(value: str) -> str:
    """The message for a ``--program`` that names a program file which does not exist."""
    return (
        f"no program file {value!r} (a program id has no dot-suffix or slash; "
        "a program file must exist)"
    )


def program_id(value: str | None) -> str | None:
    """``--program`` as an id: an id is kept; a program file gives the id it declares.

    Some commands take the program file and others only the id; accepting the file
    everywhere lets a user pass the same ``--program shop.yaml`` to every command.
    """
    if value is None or is_program_id(value):
        return value
    path = Path(value)
    if not path.is_file():
        raise typer.BadParameter(missing_program_file(value))
    try:
        return load_program(path).id
    except ProgramError as exc:
        raise typer.BadParameter(str(exc)) from exc


PROGRAM_HELP = "Program id, or the program file (YAML) whose id to use."

DbOption = typer.Option(
    None,
    "--db",
    envvar="FIDELITE_DB",
    help="Database URL or SQLite file (default: fidelite.db; env FIDELITE_DB). "
    "PostgreSQL: postgresql+psycopg://user@host/db",
    show_envvar=True,
)
ProgramOption = typer.Option("default", "--program", "-p", help=PROGRAM_HELP, callback=program_id)
OnlyProgramOption = typer.Option(
    None, "--program", "-p", help=f"Only this program. {PROGRAM_HELP}", callback=program_id
)
CurrencyOption = typer.Option(
    None,
    "--currency",
    "-c",
    help="Point currency (default: the program file's first currency; without the program "
    "file, the database's only currency of the program).",
)
"""``--currency`` of the ledger's member commands: ``None`` when not given, resolved by
:func:`ledger_currencies` (every currency, for a balance) or :func:`ledger_currency`."""
FormatOption = typer.Option(
    OutputFormat.table, "--format", "-f", help="table, json or csv (one line per row)."
)
TableJsonOption = typer.Option(
    OutputFormat.table,
    "--format",
    "-f",
    help="table or json (csv is refused: the output is not a list of rows).",
    parser=refuse_csv,
    metavar=f"<{'|'.join(f.value for f in TABLE_OR_JSON)}>",
    autocompletion=table_or_json_completion,
    is_eager=True,  # parsed first: the other options' checks answer in this format
)
"""``--format`` of a command that prints a sentence or one object, not rows: no csv.

The commands keep their ``OutputFormat`` annotation, so Typer would list the enum's
three formats; the parser accepts table and json only (giving back the same
``OutputFormat`` members), and the metavar and completion show those two, so the help
does not offer a choice the command refuses.
"""


def ledger_currencies(
    currency: str | None, target: JobProgram, ledger: Ledger, fmt: OutputFormat
) -> list[str]:
    """The currencies a ledger member command is about: ``--currency`` when given; else
    every currency the program file declares, the default (its first) first; else, with
    a program id only, the program's currencies in the database (first opened first).

    A program whose currencies the database does not hold gives ``["points"]`` (the
    ledger's default when opening a program): the ledger's own refusal then names it.
    """
    if currency is not None:
        return [currency]
    if target.file is not None:
        try:
            return [c.id for c in load_program(target.file).currencies]
        except ProgramError as exc:  # job_program read it already; not expected
            fail(str(exc), code="invalid_program", fmt=fmt, field="program_file")
    with ledger.db.read() as conn:
        codes = [
            str(row[0])
            for row in conn.execute(
                text(
                    "SELECT c.code FROM currencies c LEFT JOIN accounts a "
                    "ON a.program_id = c.program_id AND a.currency = c.code "
                    "AND a.member_id IS NULL WHERE c.program_id = :p "
                    "GROUP BY c.code ORDER BY min(a.id) IS NULL, min(a.id), c.code"
                ),
                {"p": target.id},
            )
        ]
    return codes or ["points"]


def ledger_currency(
    currency: str | None, target: JobProgram, ledger: Ledger, fmt: OutputFormat
) -> str:
    """The one currency a ledger move (earn, spend, adjust) is in: ``--currency`` when
    given, else the program's default currency, the first the program file declares
    (as rules, rewards and the API use it). With a program id only, the database's
    currency of the program when it has one; with several, ``--currency`` is required:
    the database does not know which one the program file declares first.
    """
    held = ledger_currencies(currency, target, ledger, fmt)
    if currency is None and target.file is None and len(held) > 1:
        fail(
            f"program {target.id!r} has several currencies ({', '.join(held)}): give "
            "--currency, or the program file (--program FILE or --program-file) to use "
            "its first currency",
            code="usage",
            fmt=fmt,
            field="currency",
        )
    return held[0]
