"""The program file for jobs that apply the program's expiry policy.

The program database keeps ids, members and the books, not the program definition:
the YAML file is the one source of the rules, read by ``import`` and ``serve`` as
``--program FILE``. The ledger and webhook commands name a program by id
(``--program ID``), so the expiry jobs take the file as ``--program-file FILE``; the
program id then defaults to the file's ``id``, and an explicit ``--program`` must match it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
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
