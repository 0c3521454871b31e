"""``fidelite member``: enrol and look up members."""

from __future__ import annotations

from dataclasses import asdict

import typer

from fidelite.cli.common import open_ledger, run
from fidelite.cli.options import DbOption, FormatOption, ProgramOption
from fidelite.cli.output import OutputFormat, console, print_json

app = typer.Typer(help="Members: enrol, show.", no_args_is_help=True)


@app.command("add")
def add(
    ref: str = typer.Argument(..., help="The member's reference (card number, customer id)."),
    program: str = ProgramOption,
    key: str | None = typer.Option(None, help="Idempotency key (default: member:<REF>)."),
    db: str | None = DbOption,
    fmt: OutputFormat = FormatOption,
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
    fmt: OutputFormat = FormatOption,
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
