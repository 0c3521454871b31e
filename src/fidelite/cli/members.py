"""``fidelite member``: enrol and look up members."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import typer

from fidelite.cli.common import open_ledger, run
from fidelite.cli.options import DbOption, ProgramOption, TableJsonOption
from fidelite.cli.output import OutputFormat, console, fail, print_json
from fidelite.privacy import Erasure, erase_member, export_member

app = typer.Typer(help="Members: enrol, show, export, erase.", no_args_is_help=True)


@app.command("add")
def add(
    ref: str = typer.Argument(..., help="The member's reference (card number, customer id)."),
    program: str = ProgramOption,
    key: str | None = typer.Option(None, help="Idempotency key (default: member:<REF>)."),
    db: str | None = DbOption,
    fmt: OutputFormat = TableJsonOption,
) -> None:
    """Enrol a member in a program (re-running with the same key is harmless).

    Example: fidelite member add CARD-0001 --program default
    """
    ledger = open_ledger(db, fmt)
    info = run(lambda: ledger.create_member(program, ref, key=key), fmt)
    if fmt is OutputFormat.json:
        print_json(asdict(info))
    else:
        state = "already enrolled" if info.replayed else "enrolled"
        console.print(
            f"member [bold]{info.ref}[/] {state} in program {program} (id {info.member_id})"
        )


@app.command("show")
def show(
    ref: str = typer.Argument(..., help="The member's reference."),
    program: str = ProgramOption,
    db: str | None = DbOption,
    fmt: OutputFormat = TableJsonOption,
) -> None:
    """Show a member.

    Example: fidelite member show CARD-0001 --format json
    """
    ledger = open_ledger(db, fmt)
    info = run(lambda: ledger.get_member(program, ref), fmt)
    if fmt is OutputFormat.json:
        print_json(asdict(info))
    else:
        console.print(f"{info.ref}: {info.status}, enrolled {info.created_at:%Y-%m-%d}")


@app.command("export")
def export(
    ref: str = typer.Argument(..., help="The member's reference."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write to this file."),
    program: str = ProgramOption,
    db: str | None = DbOption,
    fmt: OutputFormat = TableJsonOption,
) -> None:
    """Export everything held on a member as JSON (data protection: right of access).

    The document is JSON whatever --format says (--format json only changes how
    errors are reported).

    Example: fidelite member export CARD-0001 --program shop -o card-0001.json
    """
    database = open_ledger(db, fmt).db

    def read() -> dict[str, Any]:
        with database.read() as conn:
            return export_member(conn, program, ref)

    document = run(read, fmt)
    if output is None:
        print_json(document)
    else:
        output.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
        console.print(f"exported member {ref} to {output}")


@app.command("erase")
def erase(
    ref: str = typer.Argument(..., help="The member's reference."),
    reason: str = typer.Option("data subject request", help="Why (kept on the record)."),
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
    program: str = ProgramOption,
    db: str | None = DbOption,
    fmt: OutputFormat = TableJsonOption,
) -> None:
    """Erase a member's personal data; their points history stays, under a tombstone.

    Example: fidelite member erase CARD-0001 --reason "request 2026-118" --yes
    """
    database = open_ledger(db, fmt).db
    if not yes and not typer.confirm(f"Erase the personal data of {ref}? This cannot be undone"):
        fail("not confirmed (pass --yes)", code="usage", fmt=fmt)

    def write() -> Erasure:
        with database.write() as conn:
            return erase_member(conn, program, ref, reason=reason)

    done = run(write, fmt)
    if fmt is OutputFormat.json:
        print_json(done.as_dict())
    else:
        state = "was already erased" if done.replayed else "erased"
        console.print(f"member {ref} {state}; now known as {done.tombstone}")
