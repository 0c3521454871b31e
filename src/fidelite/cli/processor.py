"""What the commands that apply a program share: its processor on a migrated database,
business refusals as clear errors, and times given on the command line.

These commands need the program's definition (its tiers, its coupon campaigns), so
they take ``--program FILE`` as ``fidelite import`` does, and ``--db`` as every
database command does. Unlike an import they never migrate the database: a job run
by a scheduler against a database of another version stops with a clear error.

A change that is not safe to make twice (a manual tier assignment, a batch of coupon
codes) takes ``--key`` as ``fidelite ledger earn`` does (:func:`once`): a script that
retries after a timeout gets the first answer again, and nothing changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from fidelite.cli.common import open_ledger, run
from fidelite.cli.output import OutputFormat, err_console, fail
from fidelite.engine.event import offset_problem
from fidelite.ledger import idempotency
from fidelite.processing import EventProcessor, ProcessingError
from fidelite.program import ProgramError, load_program

T = TypeVar("T")

ProgramFileOption = typer.Option(..., "--program", "-p", help="Program file (YAML).")
KeyOption = typer.Option(
    ...,
    "--key",
    "-k",
    help="Idempotency key: a retry with it changes nothing and prints the first answer; "
    "with another request it is refused.",
)
REPLAYED = " (replayed: already done with this key)"
Advance = Callable[[int, int], None]


@contextmanager
def open_processor(
    program_file: Path, db: str | None, fmt: OutputFormat
) -> Iterator[EventProcessor]:
    """The program's processor on ``db`` (refused if missing or not migrated), closed after."""
    try:
        program = load_program(program_file)
    except ProgramError as exc:
        fail(str(exc), code="invalid_program", fmt=fmt)
    ledger = open_ledger(db, fmt)
    try:
        yield EventProcessor(ledger.db, program, ledger)
    finally:
        ledger.db.dispose()


def apply(action: Callable[[], T], fmt: OutputFormat) -> T:
    """Run a processing call; a business refusal becomes a clear error and exit 1 (with
    ``--format json`` its figures too, e.g. the points available and requested)."""
    try:
        return run(action, fmt)
    except ProcessingError as exc:
        extra = {"detail": exc.detail} if exc.detail else {}
        fail(exc.message, code=exc.code, fmt=fmt, **extra)


def answered(
    processor: EventProcessor, key: str, request: dict[str, Any], fmt: OutputFormat
) -> dict[str, Any] | None:
    """The first answer to ``key`` if this same request was made with it (None: a new
    key); the key of another request is refused (``idempotency_conflict``, exit 1)."""

    def read() -> dict[str, Any] | None:
        with processor.db.read() as conn:
            return idempotency.recorded(conn, processor.program.id, key, request)

    return run(read, fmt)


def once(
    processor: EventProcessor,
    key: str,
    request: dict[str, Any],
    act: Callable[[Connection], dict[str, Any]],
    fmt: OutputFormat,
) -> tuple[dict[str, Any], bool]:
    """``act(conn)`` (a change, returning its answer) at most once per ``key``: the
    change and its answer commit in one transaction. Returns the answer and whether it
    is the first run's (replayed); the key of another request is refused, and a
    business refusal stores nothing (a corrected retry may use the key)."""

    def attempt() -> tuple[dict[str, Any], bool]:
        with processor.db.write() as conn:
            return idempotency.once(conn, processor.program.id, key, request,
                                    lambda: act(conn), datetime.now(UTC))  # fmt: skip

    try:
        return apply(attempt, fmt)
    except IntegrityError:  # a concurrent run claimed the key first, and has committed
        first = answered(processor, key, request, fmt)
        if first is None:
            raise
        return first, True


def moment(text: str, option: str, zone: ZoneInfo, fmt: OutputFormat) -> datetime:
    """``text`` as an instant: ISO 8601 with an offset, or a date meaning its midnight in
    the program's time zone (where tier dates fall). A time without offset is refused:
    the machine's own zone would decide it silently. The separator and the UTC mark may
    be lower case (``2027-04-01t00:00:00z``), as the API, imports and program files read
    them."""
    raw = text.strip()
    try:
        if len(raw) == 10:
            day = date.fromisoformat(raw)
            value = datetime(day.year, day.month, day.day, tzinfo=zone)
        else:  # ISO 8601 holds no letter but T and Z: upper case changes nothing else
            value = datetime.fromisoformat(raw.upper().replace("Z", "+00:00"))
    except ValueError:
        fail(f"{option}: {raw!r} is not an ISO 8601 date or time (e.g. 2026-12-31 or "
             "2026-12-31T18:00:00+01:00)", code="usage", fmt=fmt)  # fmt: skip
    if value.tzinfo is None:  # suggest a form read back as written (20260101+01:00 is not)
        example = f"{value.isoformat()}+01:00"
        if "T" not in raw.upper():  # a date in another spelling (20260101): the day form
            example += f", or {value.date().isoformat()} for midnight in the program's zone"
        fail(f"{option}: {raw!r} needs a UTC offset (e.g. {example})", code="usage", fmt=fmt)
    problem = offset_problem(value)  # -23:59 would move the time by a day, as the API refuses
    if problem is not None:
        fail(f"{option}: {problem}", code="usage", fmt=fmt)
    try:
        return value.astimezone(UTC)
    except OverflowError:  # e.g. midnight of 0001-01-01 east of UTC falls in year 0
        fail(f"{option}: {raw!r} is outside the calendar once in UTC", code="usage", fmt=fmt)


@contextmanager
def progress_bar(description: str, fmt: OutputFormat) -> Iterator[Advance]:
    """A progress bar on stderr, moved by ``advance(done, total)``; it disappears when
    the work is done.

    Stdout carries the command's output only, so a pipe or a file gets nothing else;
    with ``--format json`` or ``csv`` there is no bar at all (a script reads those
    outputs, and its stderr is often a log that a bar would only clutter), nor when
    stderr is not a terminal (a scheduler's log, a file): Rich cannot redraw there and
    would leave a lone empty line in it."""
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
        disable=fmt is not OutputFormat.table or not err_console.is_terminal,
    ) as bar:
        task = bar.add_task(description, total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield advance
