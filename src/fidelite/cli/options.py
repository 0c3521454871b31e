"""Options shared by command groups, declared once so their names and help agree."""

from __future__ import annotations

import typer

from fidelite.cli.output import OutputFormat

DbOption = typer.Option(
    None,
    "--db",
    envvar="FIDELITE_DB",
    help="Database URL or SQLite file (default: fidelite.db; env FIDELITE_DB). "
    "PostgreSQL: postgresql+psycopg://user@host/db",
    show_envvar=True,
)
ProgramOption = typer.Option("default", "--program", "-p", help="Program id.")
CurrencyOption = typer.Option("points", "--currency", "-c", help="Point currency.")
FormatOption = typer.Option(OutputFormat.table, "--format", "-f", help="Output format.")
