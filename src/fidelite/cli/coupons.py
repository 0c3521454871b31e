"""``fidelite coupon``: issue a campaign's single-use codes in bulk, into a CSV file.

The file and the database agree: the file is created (never overwritten) before any
code is stored; the codes are written to it, flushed to disk, and only then is the
transaction that stores them committed. If the file cannot be written the codes are
not stored, and if they cannot be stored the file is removed: no code exists that
nobody received, and no code is handed out that the till would not know.

Codes are random, so issuing is not idempotent by itself: the command takes ``--key``,
and the codes and the answer kept under the key commit together. A retry with the key
issues nothing and prints the first answer (how many codes, and the file they went to),
before any file is created.
"""

from __future__ import annotations

import contextlib
import csv
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import typer
from sqlalchemy import Connection

from fidelite.cli.options import DbOption, TableJsonOption
from fidelite.cli.output import OutputFormat, console, err_console, fail, print_json
from fidelite.cli.processor import (
    REPLAYED,
    KeyOption,
    ProgramFileOption,
    answered,
    once,
    open_processor,
    progress_bar,
)
from fidelite.processing import EventProcessor
from fidelite.processing.processor import MAX_COUPONS

app = typer.Typer(
    help="Coupons: issue a campaign's codes in bulk.\n\n"
    "Example: fidelite coupon issue vip_welcome --count 5000 --out welcome.csv -k wel-1 "
    "-p program.yaml",
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
        if answer is None:
            handle = _create(out, fmt)
            try:
                answer, replayed = _issue(processor, handle, key, request, out, fmt)
            except BaseException:
                with contextlib.suppress(OSError):  # what is still buffered fails to write again
                    handle.close()
                out.unlink(missing_ok=True)  # ours: created above, never someone else's file
                raise
            if replayed:  # a run with the key issued meanwhile: our file is still empty
                handle.close()
                out.unlink()
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


def _create(out: Path, fmt: OutputFormat) -> IO[str]:
    """Create ``out`` for writing, refusing an existing file (exclusive creation)."""
    try:
        return out.open("x", newline="", encoding="utf-8")
    except FileExistsError:
        fail(f"{out} already exists: choose another --out (codes are never written over "
             "a file)", code="exists", fmt=fmt)  # fmt: skip
    except OSError as exc:
        fail(f"cannot create {out}: {exc.strerror or exc}", code="invalid_file", fmt=fmt)


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
                os.fsync(handle.fileno())
                handle.close()
            except OSError as exc:  # e.g. a full disk: the transaction rolls back
                fail(f"cannot write {handle.name}: {exc.strerror or exc}; no code was "
                     "stored", code="invalid_file", fmt=fmt)  # fmt: skip
            return {"count": len(codes), "file": str(out), "warnings": warnings}

        return once(processor, key, request, act, fmt)
