"""The program file for jobs that apply the program's expiry policy.

The program database keeps ids, members and the books, not the program definition:
the YAML file is the one source of the rules, read by ``import`` and ``serve`` as
``--program FILE``. The ledger and webhook commands name a program by id
(``--program ID``), so the expiry jobs take the file as ``--program-file FILE``; the
program id then defaults to the file's ``id``, and an explicit ``--program`` must match it.

A job that writes (``ledger expire``, ``ledger release-due``, ``tier review``,
``webhooks expiring``) takes its ``--as-of`` through :func:`job_as_of`, which refuses a
moment later than now: the job would apply that future at once and for good.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import typer

from fidelite.cli.options import is_program_id, missing_program_file
from fidelite.cli.output import OutputFormat, fail
from fidelite.cli.processor import moment
from fidelite.program import ProgramError, load_program
from fidelite.program.policy import ExpiryPolicy

DEFAULT_PROGRAM = "default"
UTC_ZONE = ZoneInfo("UTC")
JOB_AS_OF_HELP = (
    "a date is its midnight in the program's time zone when the program file is given "
    "(--program FILE or --program-file), as for `fidelite tier review`; else midnight UTC."
)

JOB_NOT_LATER = " Not later than now: the job applies its date at once, for good."
"""Appended to the ``--as-of`` help of the jobs that write (:func:`job_as_of`)."""

JobProgramOption = typer.Option(
    None,
    "--program",
    "-p",
    help="Program id (default: the --program-file's id, else 'default'), or the program "
    "file itself, which then stands for --program-file.",
)
ProgramFileOption = typer.Option(
    None,
    "--program-file",
    "-P",
    help="Program definition (YAML): apply its expiry policy (inactivity months, warn_days, "
    "time zone).",
)


@dataclass(frozen=True)
class JobProgram:
    """The program a job runs on, and its expiry policy when the file was given."""

    id: str
    policy: ExpiryPolicy | None
    zone: ZoneInfo | None
    file: Path | None


def job_program(program: str | None, program_file: Path | None, fmt: OutputFormat) -> JobProgram:
    """Resolve ``--program`` and ``--program-file``; exit with a clear error if they disagree
    or the file is not a valid program.

    A ``--program`` that is not an id names the program file, as it does for the
    commands that need the file (``import``, ``tier review``): ``--program shop.yaml``
    works the same with every command.
    """
    if program is not None and not is_program_id(program):
        if program_file is not None:
            fail(
                f"--program {program!r} is a file, and --program-file {str(program_file)!r} "
                "is given too: give one of them",
                code="usage",
                fmt=fmt,
                field="program",
            )
        program_file, program = Path(program), None
        if not program_file.is_file():
            fail(
                f"--program: {missing_program_file(str(program_file))}",
                code="usage",
                fmt=fmt,
                field="program",
            )
    if program_file is None:
        return JobProgram(program or DEFAULT_PROGRAM, None, None, None)
    try:
        definition = load_program(program_file)
    except ProgramError as exc:
        fail(str(exc), code="invalid_program", fmt=fmt, field="program_file")
    if program is not None and program != definition.id:
        fail(
            f"--program {program!r} does not match the id {definition.id!r} of {program_file}",
            code="program_mismatch",
            fmt=fmt,
            field="program",
        )
    return JobProgram(definition.id, definition.expiry, definition.zone, program_file)


def job_moment(text: str, target: JobProgram, fmt: OutputFormat) -> datetime:
    """A job's ``--as-of`` in UTC: a date is its midnight in the program's time zone
    when the program file is known (the days the program's expiry dates, holds and tier
    reviews fall on, as ``tier review`` reads it), else midnight UTC (a program id alone
    does not tell the zone); a time keeps its offset, and one without offset is a usage
    error naming the option (the machine's zone would decide it silently)."""
    return moment(text, "--as-of", target.zone or UTC_ZONE, fmt)


LEDGER_LOOK_AHEAD = "use `fidelite ledger balance MEMBER --as-of DATE` to look ahead"
"""What a refused ledger or webhooks job suggests instead: the read-only look at a date."""


def job_as_of(
    text: str | None, zone: ZoneInfo | None, now: datetime, fmt: OutputFormat, look_ahead: str
) -> datetime:
    """The moment a job that writes applies: ``now`` without ``--as-of``, else
    ``--as-of`` as :func:`job_moment` reads it, refused as a usage error naming the
    option, both moments and ``look_ahead`` when it is later than ``now``.

    Why: a job applies everything due by its date at once and for good (points due in
    a year expire today, a manual tier ends months early), and nothing undoes it. The
    events refuse a date in the future alike (:mod:`fidelite.processing.future`), but
    with no tolerance here: ``now`` is the clock of the machine that runs the job, read
    by the caller (the CLI, or the processor's clock), never by the ledger or the
    engine, which take time as an input. Invariants: the refusal comes before the job
    reads or writes the books; a moment at exactly ``now`` is applied; the read-only looks
    (``ledger balance --as-of``) do not come here and may look ahead.
    """
    if text is None:
        return now
    when = moment(text, "--as-of", zone or UTC_ZONE, fmt)
    if when <= now:
        return when
    at, processed = _utc(when), _utc(now)
    fail(
        f"--as-of {text.strip()} ({at}) is later than now ({processed}): a job applies its "
        f"date at once and cannot be undone; run it on or after that date, or {look_ahead}",
        code="usage",
        fmt=fmt,
        field="as_of",
        as_of=at,
        now=processed,
    )


def _utc(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
