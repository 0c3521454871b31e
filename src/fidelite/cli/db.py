"""``fidelite db``: create or upgrade the program database."""

from __future__ import annotations

import typer

from fidelite.cli.common import database_label, open_database, schema_revision, upgrade_database
from fidelite.cli.options import DbOption, TableJsonOption
from fidelite.cli.output import OutputFormat, console, print_json
from fidelite.store.migrate import head_revision

app = typer.Typer(
    help="Program database: create, upgrade, inspect.\n\nExample: fidelite db upgrade --db shop.db",
    no_args_is_help=True,
)


@app.command()
def upgrade(db: str | None = DbOption, fmt: OutputFormat = TableJsonOption) -> None:
    """Create the database or bring it to the newest schema (safe to re-run).

    Example: fidelite db upgrade --db shop.db
    """
    database = upgrade_database(db, fmt)
    try:
        revision = schema_revision(database, db, fmt)
    finally:
        database.dispose()
    if fmt is OutputFormat.json:
        print_json({"database": database_label(db), "revision": revision})
    else:
        console.print(f"database [bold]{database_label(db)}[/] is at revision [bold]{revision}[/]")


@app.command()
def status(db: str | None = DbOption, fmt: OutputFormat = TableJsonOption) -> None:
    """Show the schema revision of the database and the newest one available.

    A SQLite file that does not exist is reported, not created. A database upgraded by
    a newer fidelite (at a revision this one does not know) is an error.

    Example: fidelite db status --format json
    """
    database = open_database(db, fmt)
    try:
        current = schema_revision(database, db, fmt)
    finally:
        database.dispose()
    head = head_revision(database)
    name = database_label(db)
    payload = {
        "database": name,
        "revision": current,
        "head": head,
        "current": current == head,
    }
    if fmt is OutputFormat.json:
        print_json(payload)
    else:
        state = "up to date" if current == head else "needs `fidelite db upgrade`"
        console.print(
            f"{database_label(db)}: revision {current or 'none'} (newest {head}) — {state}"
        )
    if current != head:
        raise typer.Exit(code=1)
