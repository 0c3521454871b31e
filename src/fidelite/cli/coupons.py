"""``fidelite coupon``: issue a campaign's single-use codes in bulk, into a CSV file; list
a campaign's codes; show one code.

The file and the database agree: the codes are written to a file beside the one asked
for (``.NAME.<key digest>.part``, in the same directory), flushed to disk, and only then
is the transaction that stores them committed; the file is then given its name (linked
into place: an existing file is never written over). If the file cannot be written the
codes are not stored, and if they cannot be stored the file is removed: no code exists
that nobody received, and no code is handed out that the till would not know.

A run killed (SIGKILL, a crash, a power cut) leaves no file under the name asked for.
Codes are random, so issuing is not idempotent by itself: the command takes ``--key``,
and the codes and the answer kept under the key commit together. A retry with the key
issues nothing and prints the first answer (how many codes, and the file they went to);
if the first run was killed after its codes were stored but before the file got its
name, the retry gives it its name (the codes the killed run stored). If it was killed
before, nothing was stored, and the retry issues the codes.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import hashlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, NoReturn

import typer
from sqlalchemy import Connection

from fidelite.cli.options import DbOption, FormatOption, TableJsonOption
from fidelite.cli.output import (
    OutputFormat,
    console,
    err_console,
    fail,
    print_json,
    print_rows,
)
from fidelite.cli.processor import (
    REPLAYED,
    KeyOption,
    ProgramFileOption,
    answered,
    apply,
    once,
    open_processor,
    progress_bar,
)
from fidelite.engine.coupon import normalise, parse_code, refusal_detail
from fidelite.processing import EventProcessor
from fidelite.processing.coupon_codes import campaign_codes, campaign_counts, find_code
from fidelite.processing.processor import MAX_COUPONS

app = typer.Typer(
    help="Coupons: issue a campaign's codes in bulk, list them, show one code.\n\n"
    "Example: fidelite coupon issue vip_welcome --count 5000 --out welcome.csv -k wel-1 "
    "-p program.yaml\n\n"
    "Example: fidelite coupon list vip_welcome --status used -p program.yaml\n\n"
    "Example: fidelite coupon show VIPWELC-7KQ2-M9XD-4HRT-J -p program.yaml",
    no_args_is_help=True,
)
HEADER = ["code", "campaign", "member"]


@app.command("issue")
def issue(
    campaign: str = typer.Argument(..., help="The coupon campaign's id, as in the program file."),
    count: int = typer.Option(..., "--count", "-n", help=f"How many codes (1 to {MAX_COUPONS:,})."),
    member: str | None = typer.Option(
        None, "--member", help="Issue the codes to this enrolled member: only they may use them."
    ),
    out: Path = typer.Option(
        ...,
        "--out",
        "-o",
        help="CSV file to write the codes to (code,campaign,member); it must not exist yet "
        "(a retry with the same --key creates no file).",
    ),
    key: str = KeyOption,
    program_file: Path = ProgramFileOption,
    db: str | None = DbOption,
    fmt: OutputFormat = TableJsonOption,
) -> None:
    """Issue new single-use codes of a campaign into a CSV file.

    Codes are random (60 bits from the system's secure generator) with a check symbol
    that catches typos. An existing file is never overwritten; if the file cannot be
    written, no code is stored. Codes of a campaign whose window has closed could
    never be used: they are refused, nothing written (campaign_ended). Codes for a
    --member in none of the campaign's segments are issued with a warning on stderr
    naming the member and the segments (the till refuses them until the member is in
    one, e.g. after a members import).

    Safe to retry: run again with the same --key, it issues nothing and prints the
    first answer (the same key with another campaign, count or member is refused).

    Examples:

      fidelite coupon issue vip_welcome --count 5000 --out welcome.csv -k wel-1 -p program.yaml

      fidelite coupon issue vip_welcome -n 1 --member CARD-0001 -o c1.csv -k c1 -p program.yaml
    """
    request = {"op": "issue_coupons", "campaign": campaign, "count": count, "member": member}
    with open_processor(program_file, db, fmt) as processor:
        answer = answered(processor, key, request, fmt)
        replayed = answer is not None
        if answer is not None:
            _place_again(Path(answer["file"]), key, fmt)
        else:
            if os.path.lexists(out):
                _exists(out, fmt)
            part = part_file(out, key)
            handle = _create(part, out, fmt)
            stored = done = False
            try:
                answer, replayed = _issue(processor, handle, key, request, out, fmt)
                stored = not replayed
                if stored:
                    _place(part, out, fmt)
                done = True
            finally:
                if done or not stored:  # stored, not named: a retry with the key names it
                    part.unlink(missing_ok=True)  # ours: named after the key, lock held
                with contextlib.suppress(OSError):  # what is still buffered fails to write again
                    handle.close()  # only now: the lock must outlive the part name
            if replayed:  # a run with the key issued meanwhile: it names its own file
                _place_again(Path(answer["file"]), key, fmt)
    summary = {"campaign": campaign, "member": member, **answer}
    if not summary.get("warnings"):  # in JSON only when there are some
        summary.pop("warnings", None)
    for warning in summary.get("warnings", []):  # a replay repeats them
        err_console.print(f"Warning: {warning}", markup=False, highlight=False, soft_wrap=True)
    if fmt is OutputFormat.json:
        print_json(summary | {"replayed": replayed})
        return
    to = f" to member {member}" if member else ""
    console.print(f"issued {summary['count']} code(s) of campaign {campaign}{to}; written to "
                  f"{summary['file']}{REPLAYED if replayed else ''}")  # fmt: skip


def part_file(out: Path, key: str) -> Path:
    """Where a run with ``key`` writes the codes before they are stored and the file is
    given its name ``out``: beside it (a link needs the same file system), hidden, named
    after the key so that a retry with the key finds what a killed run left."""
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]
    return out.with_name(f".{out.name}.{digest}.part")


def _exists(out: Path, fmt: OutputFormat) -> NoReturn:
    fail(f"{out} already exists: choose another --out (codes are never written over "
         "a file)", code="exists", fmt=fmt)  # fmt: skip


def _create(part: Path, out: Path, fmt: OutputFormat) -> IO[str]:
    """Open ``part`` for writing, emptied, with a lock held until it is closed: a file a
    killed run left under that name is reused (its codes were never stored); one a live
    run with the same key is writing is refused."""
    try:
        fd = os.open(part, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
    except OSError as exc:
        fail(f"cannot create {out}: {exc.strerror or exc}", code="invalid_file", fmt=fmt)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        fail(f"another run with this --key is writing {out}: wait for it, then run this "
             "command again to see its answer", code="in_progress", fmt=fmt)  # fmt: skip
    if os.fstat(fd).st_nlink > 1:  # already given its name by a run with this key
        os.close(fd)
        fail(f"another run with this --key has just written {out}: run this command "
             "again to see its answer", code="in_progress", fmt=fmt)  # fmt: skip
    os.ftruncate(fd, 0)
    return os.fdopen(fd, "w", newline="", encoding="utf-8")


def _place(part: Path, out: Path, fmt: OutputFormat) -> None:
    """Give the written (and stored) codes their file name, never over an existing file."""
    try:
        os.link(part, out)
    except FileExistsError:
        keep = _keep(part)
        fail(f"{out} was created by something else while the codes were issued: the codes "
             f"are stored, and written to {keep}", code="exists", fmt=fmt)  # fmt: skip
    except OSError as exc:
        keep = _keep(part)
        fail(f"cannot name the file {out}: {exc.strerror or exc}; the codes are stored, and "
             f"written to {keep}", code="invalid_file", fmt=fmt)  # fmt: skip
    _sync_directory(out)


def _keep(part: Path) -> Path:
    """The codes' file kept under a name no later run removes (``NAME.<digest>.csv``)."""
    kept = part.with_name(part.name.lstrip(".").removesuffix(".part") + ".csv")
    with contextlib.suppress(OSError):
        os.link(part, kept)
        return kept
    return part


def _place_again(out: Path, key: str, fmt: OutputFormat) -> None:
    """On a retry: the file of a run killed after its codes were stored and before its
    file got its name gets it now (what is left under the part name is that file)."""
    part = part_file(out, key)
    if not part.exists():
        return
    try:
        fd = os.open(part, os.O_RDONLY)
    except OSError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # the run that stored the codes is still naming its file
        os.close(fd)
        return
    try:
        if not os.path.lexists(out):
            _place(part, out, fmt)
        elif not os.path.samefile(part, out):  # another run (another key) took the name
            keep = _keep(part)
            if keep == part:
                fail(f"{out} holds other codes: the codes this --key stored are in {part}",
                     code="exists", fmt=fmt)  # fmt: skip
            err_console.print(f"Warning: {out} holds other codes: the codes this --key "
                              f"stored are in {keep}", markup=False, highlight=False,
                              soft_wrap=True)  # fmt: skip
        part.unlink(missing_ok=True)
    finally:
        os.close(fd)


def _sync_directory(path: Path) -> None:
    """Make a new name in ``path``'s directory durable (best effort)."""
    with contextlib.suppress(OSError):
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _issue(
    processor: EventProcessor,
    handle: IO[str],
    key: str,
    request: dict[str, Any],
    out: Path,
    fmt: OutputFormat,
) -> tuple[dict[str, Any], bool]:
    """Store the codes and write them, in the storing transaction (committed last),
    with the answer kept under ``key``; or the answer of a run that used it first."""
    campaign, count, member = request["campaign"], request["count"], request["member"]
    now = datetime.now(UTC)
    with progress_bar(f"Issuing {campaign} codes", fmt) as advance:

        def act(conn: Connection) -> dict[str, Any]:
            warnings: list[str] = []
            codes = processor.issue_coupons(campaign, count, at=now, member_ref=member,
                                            conn=conn, progress=advance,
                                            warnings=warnings)  # fmt: skip
            try:
                writer = csv.writer(handle)
                writer.writerow(HEADER)
                writer.writerows([code, campaign, member or ""] for code in codes)
                handle.flush()
                os.fsync(handle.fileno())  # kept open: its lock holds until it is named
            except OSError as exc:  # e.g. a full disk: the transaction rolls back
                fail(f"cannot write {out}: {exc.strerror or exc}; no code was "
                     "stored", code="invalid_file", fmt=fmt)  # fmt: skip
            return {"count": len(codes), "file": str(out.resolve()), "warnings": warnings}

        return once(processor, key, request, act, fmt)


LIST_COLUMNS = ["code", "campaign", "status", "member", "issued_at", "used_by", "used_event_id",
                "used_at"]  # fmt: skip
"""A code as listed: ``member`` is who it was issued to (empty: anyone); ``used_by``,
``used_event_id`` and ``used_at`` are the event that used it (empty: unused)."""
LIST_LIMIT = (1, 1_000_000)
STATUS_FILTERS = {"unused": "issued", "issued": "issued", "used": "used", "all": None}


def _list_limit(value: int) -> int:
    """``--limit``: within :data:`LIST_LIMIT`, else a usage error (exit 2)."""
    low, high = LIST_LIMIT
    if not low <= value <= high:
        raise typer.BadParameter(f"must be between {low} and {high:,}, got {value}")
    return value


def _status(value: str) -> str:
    """``--status``: unused (or issued), used or all, else a usage error (exit 2)."""
    if value.lower() not in STATUS_FILTERS:
        raise typer.BadParameter(f"{value!r} is not one of unused, used, all (issued = unused)")
    return value.lower()


@app.command("list")
def list_codes(
    campaign: str = typer.Argument(..., help="The coupon campaign's id, as in the program file."),
    status: str = typer.Option(
        "all",
        "--status",
        "-s",
        callback=_status,
        help="unused (issued, or given back by a refund), used, or all.",
    ),
    limit: int = typer.Option(
        1000,
        "--limit",
        "-n",
        callback=_list_limit,
        help=f"At most this many codes ({LIST_LIMIT[0]}-{LIST_LIMIT[1]:,}).",
    ),
    after: str | None = typer.Option(
        None,
        "--after",
        help="Only codes after this one: the next page, as the line on stderr saying more "
        "codes follow gives it.",
    ),
    program_file: Path = ProgramFileOption,
    db: str | None = DbOption,
    fmt: OutputFormat = FormatOption,
) -> None:
    """A campaign's codes in code order: status, the member each was issued to (empty:
    anyone), and for a used code who used it, with which event and when.

    At most --limit codes; when more follow, a line on stderr gives the --after value of
    the next page (with --format json: {"next_cursor": CODE}); stdout keeps the rows
    only, so `--format csv --limit 1000000 > codes.csv` exports a campaign's codes. A
    table ends with the campaign's counts (unused, used) on stderr.

    Examples:

      fidelite coupon list vip_welcome -p program.yaml

      fidelite coupon list spring -s unused -f csv -n 1000000 -p program.yaml > unused.csv

      fidelite coupon list spring --after SPRING-7KQ2-M9XD-4HRT-B -p program.yaml
    """
    with open_processor(program_file, db, fmt) as processor:
        program = processor.program

        def read() -> tuple[list[Any], dict[str, int]]:
            with processor.db.read() as conn:
                found = campaign_codes(conn, program.id, campaign,
                                       status=STATUS_FILTERS[status],
                                       after=normalise(after) if after else None,
                                       limit=limit + 1)  # fmt: skip
                return found, campaign_counts(conn, program.id, campaign)

        found, counts = apply(read, fmt)
    known = {c.id for c in program.coupons}
    if campaign not in known and not any(counts.values()):
        listed = ", ".join(sorted(known)) or "none"
        fail(f"no coupon campaign {campaign!r} (campaigns: {listed})", code="unknown_campaign",
             fmt=fmt)  # fmt: skip
    rows = [c.as_dict() for c in found[:limit]]
    print_rows(rows, fmt, title=f"Codes of campaign {campaign}", columns=LIST_COLUMNS)
    if fmt is OutputFormat.table:
        err_console.print(f"campaign {campaign}: {counts['issued']} unused, {counts['used']} "
                          "used", highlight=False, soft_wrap=True, markup=False)  # fmt: skip
    if len(found) > limit:  # the one more row: another page follows
        cursor = rows[-1]["code"]
        note = (
            json.dumps({"next_cursor": cursor})
            if fmt is OutputFormat.json
            else f"more codes follow: the next page is --after {cursor}"
        )
        err_console.print(note, highlight=False, soft_wrap=True, markup=False)


@app.command("show")
def show(
    code: str = typer.Argument(
        ..., help="The code, as printed or as typed (any case, with or without dashes)."
    ),
    program_file: Path = ProgramFileOption,
    db: str | None = DbOption,
    fmt: OutputFormat = TableJsonOption,
) -> None:
    """One code: its campaign, status, the member it was issued to (none: anyone), when it
    was issued, who used it (member, event, when), and its campaign's validity window and
    segments.

    A mistyped code (its check symbol does not match) is refused with coupon_invalid and
    says so; a well-formed code never issued is coupon_unknown (exit status 1).

    Examples:

      fidelite coupon show VIPWELC-7KQ2-M9XD-4HRT-J -p program.yaml

      fidelite coupon show vipwelc7kq2m9xd4hrtj -p program.yaml --format json
    """
    canonical = normalise(code)
    if parse_code(canonical) is None:
        fail(f"{code!r} is not a valid coupon code: {refusal_detail('coupon_invalid', code)}",
             code="coupon_invalid", fmt=fmt)  # fmt: skip
    with open_processor(program_file, db, fmt) as processor:
        program = processor.program

        def read() -> Any:
            with processor.db.read() as conn:
                return find_code(conn, program.id, canonical)

        found = apply(read, fmt)
    if found is None:
        fail(f"no code {canonical} in program {program.id!r}: it was never issued",
             code="coupon_unknown", fmt=fmt)  # fmt: skip
    shown = found.as_dict()
    campaign = next((c for c in program.coupons if c.id == found.campaign), None)
    window = campaign.window if campaign is not None else None
    shown["valid_from"] = window.start if window is not None else None
    shown["valid_until"] = window.end if window is not None else None
    shown["segments"] = list(campaign.segments) if campaign is not None else None
    if fmt is OutputFormat.json:
        print_json(shown)
        return
    cells = {**shown, "member": shown["member"] or "(anyone)",
             "segments": " ".join(shown["segments"] or []) or
             ("(anyone)" if campaign is not None else "(campaign not in the program)")}  # fmt: skip
    print_rows([{"field": k, "value": v} for k, v in cells.items()], fmt, title=f"Code {canonical}")
