"""``fidelite member``: enrol and look up members.

With the program file (``--program shop.yaml``) a member is enrolled as the API's
``POST /v1/members`` and ``fidelite import members`` enrol one: in the ledger and in
the program (its first tier and join date), so the API, the exports and the metrics
see it at once; ``member show`` then answers what ``GET /v1/members/{id}`` answers.
A program known by its id only (``--program shop``, e.g. a program opened with
``fidelite ledger open`` and no file) has no definition to read the first tier from:
the member is enrolled in the ledger only and gets its program state at its first event.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import typer
from sqlalchemy import Connection, Table, delete

from fidelite.cli.common import open_ledger, run
from fidelite.cli.options import DbOption, TableJsonOption, is_program_id, program_id
from fidelite.cli.options import ProgramOption as ProgramIdOption
from fidelite.cli.output import OutputFormat, console, fail, print_json, to_jsonable
from fidelite.cli.processor import apply, open_processor
from fidelite.ledger import Ledger, MemberInfo, Rejected
from fidelite.privacy import Erasure, erase_member, export_member
from fidelite.privacy.export import member_row
from fidelite.processing import MemberProfile
from fidelite.store import Database
from fidelite.store.tables import IdempotencyRecord

_IDEMPOTENCY: Table = IdempotencyRecord.__table__  # type: ignore[assignment]

app = typer.Typer(
    help="Members: enrol, show, export, erase.\n\n"
    "Example: fidelite member show CARD-0001 --program program.yaml --format json",
    no_args_is_help=True,
)


def _id_or_checked_file(value: str) -> str:
    """``--program`` as given, once a program file it names is known to be valid."""
    program_id(value)
    return value


ProgramOrFileOption = typer.Option(
    "default",
    "--program",
    "-p",
    help="The program file (YAML), or the program id. With the file the member also gets "
    "its program state (first tier, join date), as the API enrols; with an id only, "
    "the ledger alone knows the member until its first event.",
    callback=_id_or_checked_file,
)
PROFILE_FIELDS = ("tier", "tier_since", "segments", "attributes", "purchases", "joined_at",
                  "birth_date")  # fmt: skip
"""The member's program state, as ``GET /v1/members/{id}`` answers it."""


@app.command("add")
def add(
    ref: str = typer.Argument(
        ...,
        help="The member's reference (card number, customer id): "
        "1 to 128 characters, no '/', no control characters, no "
        "spaces at either end, as the API's member ids.",
    ),
    program: str = ProgramOrFileOption,
    key: str | None = typer.Option(None, help="Idempotency key (default: member:<REF>)."),
    db: str | None = DbOption,
    fmt: OutputFormat = TableJsonOption,
) -> None:
    """Enrol a member in a program (re-running with the same key is harmless).

    With the program file the member is enrolled as the API enrols one: it has its
    first tier and join date (now) at once. Re-running it for a member the ledger alone
    knew gives that member its program state.

    Example: fidelite member add CARD-0001 --program program.yaml
    """
    if is_program_id(program):
        ledger = open_ledger(db, fmt)

        def create() -> MemberInfo:
            with ledger.db.write() as conn:
                return _created(ledger, conn, program, ref, key)

        info = run(create, fmt)
    else:
        info = _enrol(Path(program), ref, key, db, fmt)
    if fmt is OutputFormat.json:
        print_json(asdict(info))
    else:
        state = "already enrolled" if info.replayed else "enrolled"
        console.print(
            f"member [bold]{info.ref}[/] {state} in program {info.program_id} (id {info.member_id})"
        )


def _enrol(
    program_file: Path, ref: str, key: str | None, db: str | None, fmt: OutputFormat
) -> MemberInfo:
    """Enrol ``ref`` in the ledger (once per ``key``) and in the program, in one
    transaction: the program state is the processor's, as for the API and imports."""
    with open_processor(program_file, db, fmt) as processor:

        def write() -> MemberInfo:
            with processor.db.write() as conn:
                info = _created(processor.ledger, conn, processor.program.id, ref, key)
                processor.save_member(ref, MemberProfile(), at=datetime.now(UTC), conn=conn)
            return info

        return apply(write, fmt)


def _created(
    ledger: Ledger, conn: Connection, program_id: str, ref: str, key: str | None
) -> MemberInfo:
    """Enrol ``ref`` under ``key`` in ``conn``'s transaction. A key whose record still
    names a member erased since (left by an erasure of an earlier version, which kept
    ``--key`` records) is taken as the erasure now takes it: the record goes and the
    reference is enrolled anew; replaying it would show the erased member's tombstone
    and enrol nobody in the ledger."""
    info = ledger.create_member(program_id, ref, key=key, conn=conn)
    if not (info.replayed and info.status == "erased" and key is not None):
        return info
    conn.execute(delete(_IDEMPOTENCY).where(_IDEMPOTENCY.c.program_id == program_id,
                                            _IDEMPOTENCY.c.key == key))  # fmt: skip
    return ledger.create_member(program_id, ref, key=key, conn=conn)


def _member_json(info: MemberInfo) -> dict[str, Any]:
    """The ledger's view of a member (no ``replayed``: a read repeats nothing)."""
    return {"member_id": info.member_id, "program_id": info.program_id, "ref": info.ref,
            "status": info.status}  # fmt: skip


@app.command("show")
def show(
    ref: str = typer.Argument(..., help="The member's reference."),
    program: str = ProgramOrFileOption,
    db: str | None = DbOption,
    fmt: OutputFormat = TableJsonOption,
) -> None:
    """Show a member: status, and with the program file what the API shows of it (join
    date, tier, segments, attributes, purchases, birth date; dates in the program's
    time zone: with -f json, joined_at and tier_since are instants with the program's
    offset, e.g. 2026-02-11T00:30:00+01:00).

    Example: fidelite member show CARD-0001 --program program.yaml --format json
    """
    if is_program_id(program):
        ledger = open_ledger(db, fmt)
        info = run(lambda: ledger.get_member(program, ref), fmt)
        profile, zone = None, None
    else:
        with open_processor(Path(program), db, fmt) as processor:
            info = run(lambda: processor.ledger.get_member(processor.program.id, ref), fmt)
            profile, zone = processor.member_profile(ref), processor.program.zone
    if fmt is OutputFormat.json:
        known = profile or dict.fromkeys(PROFILE_FIELDS)
        print_json(_member_json(info) | {k: _in_zone(known[k], zone) for k in PROFILE_FIELDS})
        return
    console.print(f"[bold]{info.ref}[/]: {info.status} (id {info.member_id})", highlight=False)
    for line in _profile_lines(profile, zone):
        console.print(f"  {line}", highlight=False, markup=False, soft_wrap=True)


def _in_zone(value: Any, zone: ZoneInfo | None) -> Any:
    """An instant (``tier_since``, ``joined_at``) with the program's offset, as the table
    shows its day: ``2026-02-11T00:30:00+01:00`` rather than the same instant in UTC,
    whose date is the day before. Other values as they are."""
    return value.astimezone(zone) if zone is not None and isinstance(value, datetime) else value


def _profile_lines(profile: dict[str, Any] | None, zone: ZoneInfo | None) -> list[str]:
    """The program state as lines of ``label  value``; dates are the program's days."""
    if zone is None:
        return ["program state: give the program file (--program FILE) to show it"]
    if profile is None:
        return [
            "no program state yet: tier and join date come with its first event "
            "(or `fidelite member add` with the program file)"
        ]

    def day(value: datetime | None) -> str:
        return "-" if value is None else f"{value.astimezone(zone):%Y-%m-%d}"

    tier = profile["tier"] or "-"
    if profile["tier"] is not None and profile["tier_since"] is not None:
        tier += f" since {day(profile['tier_since'])}"
    lines = [f"joined      {day(profile['joined_at'])} ({zone.key})", f"tier        {tier}",
             f"purchases   {profile['purchases']}"]  # fmt: skip
    if profile["segments"]:
        lines.append(f"segments    {', '.join(profile['segments'])}")
    if profile["attributes"]:
        pairs = (f"{k}={v}" for k, v in sorted(profile["attributes"].items()))
        lines.append(f"attributes  {', '.join(pairs)}")
    if profile["birth_date"] is not None:
        lines.append(f"birth date  {profile['birth_date']:%Y-%m-%d}")
    return lines


@app.command("export")
def export(
    ref: str = typer.Argument(..., help="The member's reference."),
    output: Path | None = typer.Option(
        None,
        "--output",
        "-o",
        help="Write the document to this file (UTF-8; an existing file is replaced) "
        "instead of stdout.",
    ),
    program: str = ProgramIdOption,
    db: str | None = DbOption,
    fmt: OutputFormat = TableJsonOption,
) -> None:
    """Export everything held on a member as JSON (data protection: right of access).

    The document is JSON whatever --format says. Without -o it is printed; with -o FILE
    it goes to the file and the command says where: a sentence, or with --format json
    {"member", "program", "file"}. A file that cannot be written (its directory missing,
    a directory given) is an error (invalid_file), exit 1.

    Example: fidelite member export CARD-0001 --program shop -o card-0001.json
    """
    database = open_ledger(db, fmt).db

    def read() -> dict[str, Any]:
        with database.read() as conn:
            return export_member(conn, program, ref)

    document = run(read, fmt)
    if output is None:
        print_json(document)
        return
    text = json.dumps(to_jsonable(document), indent=2, ensure_ascii=False) + "\n"
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        fail(f"cannot write {output}: {exc.strerror or exc}", code="invalid_file", fmt=fmt)
    if fmt is OutputFormat.json:
        print_json({"member": ref, "program": program, "file": str(output)})
    else:
        console.print(f"exported member {ref} to {output}", markup=False, highlight=False,
                      soft_wrap=True)  # fmt: skip


@app.command("erase")
def erase(
    ref: str = typer.Argument(..., help="The member's reference."),
    reason: str = typer.Option("data subject request", help="Why (kept on the record)."),
    yes: bool = typer.Option(
        False,
        "--yes",
        help="Do not ask for confirmation (needed with --format json or when stdin is not "
        "a terminal).",
    ),
    program: str = ProgramIdOption,
    db: str | None = DbOption,
    fmt: OutputFormat = TableJsonOption,
) -> None:
    """Erase a member's personal data; their points history stays, under a tombstone.

    Without --yes it asks first, at a terminal only: with --format json or stdin not a
    terminal it is a usage error (exit 2), nothing erased. An unknown member is refused
    (unknown_member) before anything is asked.

    Example: fidelite member erase CARD-0001 --program shop.yaml --reason "request 118" --yes
    """
    database = open_ledger(db, fmt).db
    if not yes and _would_erase(database, program, ref, fmt):
        if fmt is OutputFormat.json or not sys.stdin.isatty():
            fail(f"erasing {ref} needs --yes: confirmation is asked only at a terminal, "
                 "and not with --format json", code="usage", fmt=fmt)  # fmt: skip
        if not typer.confirm(f"Erase the personal data of {ref}? This cannot be undone"):
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


def _would_erase(database: Database, program: str, ref: str, fmt: OutputFormat) -> bool:
    """Whether erasing ``ref`` would change anything, so needs confirming: the program
    has an active member of that reference. A reference it does not know (an erasure
    then repeats the first one's answer, or is refused as ``unknown_member``) or an
    erased member's tombstone needs no confirmation: nothing is erased."""

    def read() -> bool:
        with database.read() as conn:
            try:
                member = member_row(conn, program, ref)
            except Rejected:
                return False
            return bool(member.status != "erased")

    return run(read, fmt)
