"""Options shared by command groups, declared once so their names and help agree."""

from __future__ import annotations

from pathlib import Path

import typer

from fidelite.cli.output import TABLE_OR_JSON, OutputFormat, refuse_csv, table_or_json_completion
from fidelite.program import ProgramError, load_program

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
CurrencyOption = typer.Option("points", "--currency", "-c", help="Point currency.")
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
