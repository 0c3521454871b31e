"""``fidelite coupon``: issue a campaign's single-use codes in bulk, into a CSV file.

The file and the database agree: the file is created (never overwritten) before any
code is stored; the codes are written to it, flushed to disk, and only then is the
transaction that stores them committed. If the file cannot be written the codes are
not stored, and if they cannot be stored the file is removed: no code exists that
nobody received, and no code is handed out that the till would not know.
"""

from __future__ import annotations

import contextlib
import csv
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import typer

from fidelite.cli.options import DbOption, FormatOption
from fidelite.cli.output import OutputFormat, console, fail, print_json
from fidelite.cli.processor import ProgramFileOption, apply, open_processor, progress_bar
from fidelite.processing import EventProcessor
from fidelite.processing.processor import MAX_COUPONS

app = typer.Typer(help="Coupons: issue a campaign's codes in bulk.", no_args_is_help=True)
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
        help="CSV file to write the codes to (code,campaign,member); it must not exist yet.",
    ),
    program_file: Path = ProgramFileOption,
    db: str | None = DbOption,
    fmt: OutputFormat = FormatOption,
) -> None:
    """Issue new single-use codes of a campaign into a CSV file.

    Codes are random (60 bits from the system's secure generator) with a check symbol
    that catches typos. An existing file is never overwritten; if the file cannot be
    written, no code is stored.

    Examples:

      fidelite coupon issue vip_welcome --count 5000 --out welcome.csv -p program.yaml

      fidelite coupon issue vip_welcome -n 1 --member CARD-0001 -o card-0001.csv -p program.yaml
    """
    with open_processor(program_file, db, fmt) as processor:
        handle = _create(out, fmt)
        try:
            codes = _issue(processor, handle, campaign, count, member, fmt)
        except BaseException:
            with contextlib.suppress(OSError):  # what is still buffered fails to write again
                handle.close()
            out.unlink(missing_ok=True)  # ours: created above, never someone else's file
            raise
    summary = {"campaign": campaign, "member": member, "count": len(codes), "file": str(out)}
    if fmt is OutputFormat.json:
        print_json(summary)
        return
    to = f" to member {member}" if member else ""
    console.print(f"issued {len(codes)} code(s) of campaign {campaign}{to}; written to {out}")


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
    campaign: str,
    count: int,
    member: str | None,
    fmt: OutputFormat,
) -> list[str]:
    """Store the codes and write them, in the storing transaction (committed last)."""
    now = datetime.now(UTC)
    with progress_bar(f"Issuing {campaign} codes", fmt) as advance, processor.db.write() as conn:
        codes = apply(
            lambda: processor.issue_coupons(campaign, count, at=now, member_ref=member,
                                            conn=conn, progress=advance),
            fmt,
        )  # fmt: skip
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
    return codes
