"""``fidelite db``: create or upgrade the program database."""

from __future__ import annotations

import typer

from fidelite.cli.options import DbOption, TableJsonOption
from fidelite.cli.output import OutputFormat, console, fail, print_json
from fidelite.store import Database
from fidelite.store.migrate import current_revision, head_revision

app = typer.Typer(
    help="Program database: create, upgrade, inspect.\n\nExample: fidelite db upgrade --db shop.db",
    no_args_is_help=True,
)


@app.command()
def upgrade(db: str | None = DbOption, fmt: OutputFormat = TableJsonOption) -> None:
    """Create the database or bring it to the newest schema (safe to re-run).

    Example: fidelite db upgrade --db shop.db
    """
    try:
        database = Database(db)
        database.upgrade()
        revision = current_revision(database)
    except Exception as exc:  # infrastructure: unreachable server, bad URL, read-only file
        fail(
            f"cannot upgrade {db or 'fidelite.db'}: {str(exc).splitlines()[0]}", code="db", fmt=fmt
        )
    if fmt is OutputFormat.json:
        print_json({"database": database.url, "revision": revision})
    else:
        console.print(f"database [bold]{database.url}[/] is at revision [bold]{revision}[/]")


@app.command()
def status(db: str | None = DbOption, fmt: OutputFormat = TableJsonOption) -> None:
    """Show the schema revision of the database and the newest one available.

    Example: fidelite db status --format json
    """
    database = Database(db)
    try:
        current = current_revision(database)
    except Exception as exc:
        fail(f"cannot open {database.url}: {str(exc).splitlines()[0]}", code="db", fmt=fmt)
    head = head_revision(database)
    payload = {
        "database": database.url,
        "revision": current,
        "head": head,
        "current": current == head,
    }
    if fmt is OutputFormat.json:
        print_json(payload)
    else:
        state = "up to date" if current == head else "needs `fidelite db upgrade`"
        console.print(f"{database.url}: revision {current or 'none'} (newest {head}) — {state}")
    if current != head:
        raise typer.Exit(code=1)
