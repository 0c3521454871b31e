"""`fidelite import` commands: bulk import of events (through the program's rules) and of
members."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import typer

from fidelite.cli.common import upgrade_database
from fidelite.cli.interrupt import Interrupt, stop_on_interrupt
from fidelite.cli.options import TableJsonOption
from fidelite.cli.output import (
    OutputFormat,
    console,
    err_console,
    fail,
    print_json,
    print_rows,
)
from fidelite.cli.processor import progress_bar
from fidelite.processing import EventProcessor
from fidelite.processing.importer import (
    EVENT_COLUMNS,
    MEMBER_COLUMNS,
    DatabaseStopped,
    ImportFileError,
    ImportReport,
    MemberImportReport,
    RejectedRow,
    check_rejects_path,
    clear_rejects,
    count_rows,
    import_events,
    import_members,
    write_rejects,
)
from fidelite.processing.rows import Columns
from fidelite.program import ProgramError, load_program

app = typer.Typer(
    help="Bulk import.\n\n"
    "Example: fidelite import events sales.csv --program program.yaml --db sqlite:///shop.db",
    no_args_is_help=True,
)
_Report = TypeVar("_Report", ImportReport, MemberImportReport)

RejectsOption = typer.Option(
    None,
    "--rejects",
    help="Write rejected rows here (default: FILE.rejects.csv). After a run the file holds "
    "that run's rejected rows only: it is there if and only if the run rejected rows "
    "(one left by an earlier run is removed). It must be a regular file or a path where "
    "nothing is yet: a directory, a device, a named pipe or a symbolic link is refused.",
)


@app.command("events")
def events(
    file: Path = typer.Argument(..., help="Events file: CSV or Parquet."),
    program_file: Path = typer.Option(..., "--program", "-p", help="Program file (YAML)."),
    db: str | None = typer.Option(None, "--db", help="Database URL (default: $FIDELITE_DB)."),
    rejects: Path | None = RejectsOption,
    fmt: OutputFormat = TableJsonOption,
    announce: bool = typer.Option(
        True,
        "--announce/--no-announce",
        help="Send webhook events for the imported events (--no-announce: loading history).",
    ),
    chunk: int = typer.Option(
        1000,
        "--chunk",
        min=1,
        help="Rows committed per transaction. A crash loses the chunk in progress only, "
        "which a re-run imports.",
    ),
) -> None:
    """Process every event of a file through the program; re-running it changes nothing.

    Bad rows are skipped and listed, with their row number and reason, in the rejects
    file; the exit status is 0 even when some rows were rejected. The rejects file is
    this run's only: one an earlier run left at its path is removed as the import
    starts, and it is written when rows are rejected, so it is there if and only if
    this run rejected rows (the summary's rejects_file is its path, or null). The
    summary also says
    how many refunds were applied and what they could not take back (points written
    off, clawed back into debt, or already expired, per currency). Rows are applied in file
    order: sort the file by time per member; the summary warns (out_of_order: how many
    rows, the first row numbers) of rows dated before an earlier row of their member.
    A refund listed before the row of its purchase waits for the last row of that
    purchase's id and is applied right after it.
    A file that cannot be read (not
    UTF-8, missing columns) or a rejects path that cannot be written stops the command
    before anything is imported (exit status 1). A database that cannot be written (a
    full disk, an I/O error, a read-only or locked database, a lost connection) stops
    the import at once (exit status 1, error database_unwritable): no row is rejected
    for it, the message says which rows are committed, and running the same command
    again once the database can be written imports the rest.

    Ctrl-C stops the import after the chunk in progress (a second Ctrl-C aborts that
    chunk, which is rolled back): the command says which rows are committed, writes
    their rejects and exits with status 130. SIGTERM (kill, a service manager, a
    container's stop) does the same and exits with status 143. Running the same command
    again resumes:
    the rows already imported count as duplicates, nothing is applied twice. A crash or
    kill -9 loses at most the chunk in progress; the re-run imports it. Once every row
    is committed, Ctrl-C no longer stops anything: the import finishes (statistics
    refresh, summary, rejects file) and exits with status 0.

    Example: fidelite import events sales.csv --program program.yaml --db sqlite:///shop.db

    Example: fidelite import events sales.parquet -p program.yaml --rejects bad.csv -f json
    """
    rejects_path = _rejects_path(file, rejects, fmt)
    total = _checked_rows(file, EVENT_COLUMNS, fmt)
    with (
        _processor(program_file, db, announce, fmt) as processor,
        _interruptible(chunk) as interrupt,
    ):
        _clear_rejects(rejects_path, fmt)
        tally = _Tally(total, interrupt)

        def run(advance: Callable[[int], None]) -> ImportReport:
            return import_events(processor, file, progress=advance, chunk=chunk,
                                 stop=interrupt, committed=tally)  # fmt: skip

        try:
            report = _imported(file, total, fmt, run, tally, RESUME)
        except DatabaseStopped as exc:
            _unwritable(exc, _event_counts, tally, file, rejects_path, "event_id", RESUME, fmt)
        _write_rejects(rejects_path, report.rejected, "event_id", fmt)
        summary = report.summary()
        if report.stopped:
            summary["interrupted"] = _interrupted(report.rows, report.last_row, total)
        _print_summary(summary, rejects_path if report.rejected else None, file, fmt)
    if report.stopped:
        _stopped(report.rows, report.last_row, _event_counts(report), total, RESUME,
                 interrupt.exit_status)  # fmt: skip


@app.command("members")
def members(
    file: Path = typer.Argument(..., help="Members file: CSV or Parquet."),
    program_file: Path = typer.Option(..., "--program", "-p", help="Program file (YAML)."),
    db: str | None = typer.Option(None, "--db", help="Database URL (default: $FIDELITE_DB)."),
    rejects: Path | None = RejectsOption,
    fmt: OutputFormat = TableJsonOption,
    announce: bool = typer.Option(
        True, "--announce/--no-announce", help="Send member.created webhook events."
    ),
    chunk: int = typer.Option(
        500,
        "--chunk",
        min=1,
        help="Rows committed per transaction. A crash loses the chunk in progress only, "
        "which a re-run imports.",
    ),
) -> None:
    """Enrol new members and update existing ones; re-running the file changes nothing.

    Columns: member (required); joined_at (ISO 8601 with offset, new members only;
    default now), birth_date (YYYY-MM-DD, from 1900-01-01; an earlier one the member
    already has is no change), segments (JSON list or names separated by ';'),
    attributes (JSON object). Bad rows are skipped and listed
    in the rejects file, which holds this run's rejects only, as for events: it is there
    if and only if this run rejected rows (one an earlier run left is removed;
    rejects_file is then null).

    Rows are applied in file order: a member listed on several rows ends with the last
    row's values (a cell it leaves empty keeps the earlier row's). The summary warns
    (listed_again: how many rows, the first row numbers) of rows naming a member an
    earlier row named: a re-run applies them again, so rows that differ count as
    updated each time, not unchanged; keep one row per member.

    Ctrl-C stops the import after the chunk in progress (a second Ctrl-C aborts that
    chunk, which is rolled back), as for events: the command says which rows are
    committed, writes their rejects and exits with status 130 (143 for SIGTERM, which
    stops it the same way); running it again
    resumes (the rows already imported count as unchanged, except those of a member
    the file lists more than once, listed_again: they count as updated when they
    differ). Once every row is committed, Ctrl-C no longer stops anything, as for
    events. A database that cannot be written (a full disk, a lost connection...)
    stops the import at once with exit status 1, as for events; the same command
    resumes.

    Example: fidelite import members crm.csv --program program.yaml --db sqlite:///shop.db

    Example: fidelite import members crm.parquet -p program.yaml --no-announce -f json
    """
    now = datetime.now(UTC)
    rejects_path = _rejects_path(file, rejects, fmt)
    total = _checked_rows(file, MEMBER_COLUMNS, fmt)
    with (
        _processor(program_file, db, announce, fmt) as processor,
        _interruptible(chunk) as interrupt,
    ):
        _clear_rejects(rejects_path, fmt)
        tally = _Tally(total, interrupt)

        def run(advance: Callable[[int], None]) -> MemberImportReport:
            return import_members(processor, file, now=now, progress=advance, chunk=chunk,
                                  stop=interrupt, committed=tally)  # fmt: skip

        try:
            report = _imported(file, total, fmt, run, tally, RESUME_MEMBERS)
        except DatabaseStopped as exc:
            _unwritable(exc, _member_counts, tally, file, rejects_path, "member",
                        RESUME_MEMBERS, fmt)  # fmt: skip
        _write_rejects(rejects_path, report.rejected, "member", fmt)
        summary = report.summary()
        if report.stopped:
            summary["interrupted"] = _interrupted(report.rows, report.last_row, total)
        _print_summary(summary, rejects_path if report.rejected else None, file, fmt)
    if report.stopped:
        _stopped(report.rows, report.last_row, _member_counts(report), total, RESUME_MEMBERS,
                 interrupt.exit_status)  # fmt: skip


def _event_counts(report: ImportReport) -> str:
    """What became of the rows done, in the words of the summary."""
    counts = (f"{report.processed} processed, {report.duplicates} duplicates, "
              f"{len(report.rejected)} rejected")  # fmt: skip
    if report.refunds_waiting:  # listed before their purchase, whose row is not done
        counts += (f", {len(report.refunds_waiting)} refunds waiting for the later row "
                   "of their purchase")  # fmt: skip
    return counts


def _member_counts(report: MemberImportReport) -> str:
    """What became of the rows done, in the words of the summary."""
    return (f"{report.created} created, {report.updated} updated, {report.unchanged} "
            f"unchanged, {len(report.rejected)} rejected")  # fmt: skip


def _unwritable(
    exc: DatabaseStopped,
    counts: Callable[[Any], str],
    tally: _Tally,
    file: Path,
    rejects_path: Path,
    key: str,
    resume: str,
    fmt: OutputFormat,
) -> NoReturn:
    """The database could not be written (a full disk, an I/O error, a lost
    connection...): the import stopped at once. Say why, which rows are committed (as
    the importer told them, ``tally``), with the summary of the rows counted so far (its
    rejects are written: rows refused for their own reasons; no row is rejected for the
    database's failure), and that the same command resumes. Exit status 1; with JSON,
    the error object (``database_unwritable``) holds the summary."""
    report, total = exc.report, tally.total
    rows, last = max(tally.rows, (report.rows, report.last_row))
    tally.interrupt.hold(STOPPED)
    if rows:
        done = f"the first {rows} of {total} rows (up to row {last}) are done and committed"
        if rows == report.rows:
            done += f" ({counts(report)})"
        done += f"; the {total - rows} rows after them were not imported"
    else:
        done = f"none of the {total} rows was imported"
    written, kept = "", False
    if report.rejected:
        try:
            write_rejects(rejects_path, report.rejected, key=key)
            written = (f" The {len(report.rejected)} row(s) rejected before it are in "
                       f"{rejects_path}.")  # fmt: skip
            kept = True
        except OSError as error:
            written = (f" The {len(report.rejected)} row(s) rejected before it could not be "
                       f"written to {rejects_path}: {error.strerror}.")  # fmt: skip
    message = (f"The database could not be written: {exc.failure}. The import stopped: "
               f"{done}, and no row was rejected for this.{written} Once the database can "
               f"be written again (free disk space, ...), r{resume[1:]}")  # fmt: skip
    summary = report.summary()
    summary["interrupted"] = _interrupted(rows, last, total)
    if fmt is not OutputFormat.json:
        _print_summary(summary, rejects_path if kept else None, file, fmt)
    else:
        summary["rejects_file"] = str(rejects_path) if kept else None
    fail(message, code="database_unwritable", fmt=fmt, reason=exc.failure.reason,
         driver_code=exc.failure.code, rows_committed=rows, last_row=last,
         rows_left=total - rows, summary=summary)  # fmt: skip


RESUME = ("Run the same command again to import the rest: the rows already imported "
          "are counted as duplicates, nothing is applied twice.")  # fmt: skip


RESUME_MEMBERS = ("Run the same command again to import the rest: the rows already "
                  "imported are counted as unchanged, except those of a member the file "
                  "lists more than once (listed_again), which count as updated when they "
                  "differ.")  # fmt: skip

FINISHED = ("every row is committed: finishing the import (statistics, summary, rejects "
            "file); it ends complete")  # fmt: skip
"""What a Ctrl-C is told once nothing is left to stop (:meth:`Interrupt.hold`)."""

STOPPED = "the import is stopped: writing the summary and rejects file of the rows done"


@contextmanager
def _interruptible(chunk: int) -> Iterator[Interrupt]:
    """Ctrl-C handled for the whole command, output included (see :mod:`.interrupt`)."""
    with stop_on_interrupt(f"the chunk in progress ({chunk} rows at most)") as interrupt:
        yield interrupt


class _Tally:
    """The rows committed so far, as the importer tells them
    (:data:`~fidelite.processing.importer.Committed`), for a second Ctrl-C's message.

    ``rows`` is one pair, set in one assignment: an interrupt finds the previous pair or
    the new one, never half of each. Once every row is committed the interrupt is held
    first (nothing is left to abort), so no interrupt can follow that count."""

    def __init__(self, total: int, interrupt: Interrupt) -> None:
        self.total = total
        self.interrupt = interrupt
        self.rows = (0, 0)  # (rows committed, the last of them)

    def __call__(self, rows: int, last_row: int) -> None:
        if rows >= self.total:
            self.interrupt.hold(FINISHED)
        self.rows = (rows, last_row)


def _imported(
    file: Path,
    total: int,
    fmt: OutputFormat,
    run: Callable[[Callable[[int], None]], _Report],
    tally: _Tally,
    resume: str,
) -> _Report:
    """The import's report; a second Ctrl-C while rows are left aborts the command,
    saying what ``tally`` counts committed. Afterwards Ctrl-C is held until the command
    ends: the summary and rejects file are written whole."""
    try:
        report: _Report = _with_progress(file, total, fmt, run)
    except KeyboardInterrupt:
        rows, last = tally.rows
        _aborted(rows, last, total, fmt, resume, tally.interrupt.exit_status)
    tally.interrupt.hold(STOPPED if report.stopped else FINISHED)
    return report


def _interrupted(rows: int, last_row: int, total: int) -> dict[str, int]:
    """The summary's ``interrupted`` field: the rows done, the last of them, the rest."""
    return {"rows_done": rows, "last_row": last_row, "rows_left": total - rows}


def _stopped(
    rows: int, last_row: int, counts: str, total: int, resume: str, status: int
) -> NoReturn:
    """Ctrl-C stopped the import between two chunks: say exactly which rows are done
    (``counts``: what became of them, in the words of the summary)."""
    if rows:
        done = (f"the first {rows} of {total} rows (up to row {last_row}) are done and "
                f"committed ({counts})")  # fmt: skip
    else:
        done = f"none of the {total} rows was imported"
    err_console.print(f"Interrupted: {done}; the {total - rows} rows after them were "
                      f"not imported. {resume}", highlight=False, soft_wrap=True)  # fmt: skip
    raise typer.Exit(status)


def _aborted(
    done: int, last: int, total: int, fmt: OutputFormat, resume: str, status: int
) -> NoReturn:
    """A second Ctrl-C aborted the chunk in progress: the rows the importer told
    committed (``done``, up to row ``last``) are; the aborted chunk is rolled back,
    unless the interrupt came in the few instructions between its commit and the
    importer's telling (then it is committed whole: never part of it; a chunk applied
    again one row per transaction tells each row). With JSON, an error object on
    stdout too (``import_aborted``), as :func:`fail` writes."""
    upto = f"the first {done} of {total} rows (up to row {last})" if done else "no row"
    message = (f"Aborted: {upto} committed; the chunk in progress was rolled back (or "
               f"committed whole, had it just finished). No rejects file was written. "
               f"{resume}")  # fmt: skip
    if fmt is OutputFormat.json:
        print_json({"error": {"code": "import_aborted", "message": message,
                              "rows_committed": done, "last_row": last}})  # fmt: skip
    err_console.print(message, highlight=False, soft_wrap=True)
    raise typer.Exit(status)


def _rejects_path(file: Path, given: Path | None, fmt: OutputFormat) -> Path:
    """Where rejected rows go, checked writable before anything is imported."""
    path = given or file.with_name(file.name + ".rejects.csv")
    if path.resolve() == file.resolve():
        fail(f"--rejects {path}: that is the file to import; choose another path",
             code="invalid_rejects_path", fmt=fmt)  # fmt: skip
    try:
        check_rejects_path(path)
    except ImportFileError as exc:
        message = f"--rejects {exc}" if given else f"{exc} (choose a place with --rejects)"
        fail(message, code="invalid_rejects_path", fmt=fmt)
    return path


def _checked_rows(file: Path, columns: Columns, fmt: OutputFormat) -> int:
    """The file's number of rows, once it is known readable (encoding, columns)."""
    try:
        return count_rows(file, columns)
    except ImportFileError as exc:
        fail(str(exc), code="invalid_file", fmt=fmt)


def _clear_rejects(path: Path, fmt: OutputFormat) -> None:
    """Remove the rejects file an earlier run left at ``path``, as the import starts:
    afterwards the path holds this run's rejects, or nothing (never stale rows). Only a
    regular file is removed (checked again: see
    :func:`~fidelite.processing.importer.check_rejects_path`)."""
    try:
        clear_rejects(path)
    except ImportFileError as exc:
        fail(str(exc), code="invalid_rejects_path", fmt=fmt)
    except OSError as exc:
        fail(f"{path}: cannot remove the rejects file of an earlier run: {exc.strerror}",
             code="invalid_rejects_path", fmt=fmt)  # fmt: skip


def _write_rejects(path: Path, rejected: list[RejectedRow], key: str, fmt: OutputFormat) -> None:
    if not rejected:
        return
    try:
        write_rejects(path, rejected, key=key)
    except OSError as exc:
        fail(f"{path}: the import is done, but its {len(rejected)} rejected row(s) could not "
             f"be written: {exc.strerror}", code="rejects_not_written", fmt=fmt)  # fmt: skip


@contextmanager
def _processor(
    program_file: Path, db: str | None, announce: bool, fmt: OutputFormat
) -> Iterator[EventProcessor]:
    """The program's processor on an upgraded database, disposed of afterwards."""
    try:
        program = load_program(program_file)
    except ProgramError as exc:
        fail(str(exc), code="invalid_program", fmt=fmt)
    database = upgrade_database(db, fmt)
    try:
        yield EventProcessor(database, program, announce=announce)
    finally:
        database.dispose()


def _with_progress(
    file: Path, total: int, fmt: OutputFormat, run: Callable[[Callable[[int], None]], Any]
) -> Any:
    """Run an import with a progress bar over the file's rows: on stderr, none for JSON
    (see :func:`fidelite.cli.processor.progress_bar`), so stdout holds the summary only."""
    try:
        with progress_bar(f"Importing {file.name}", fmt) as advance:
            done = 0

            def step(_row: int) -> None:
                nonlocal done
                done += 1
                advance(done, total)

            return run(step)
    except (ImportFileError, OSError) as exc:
        fail(str(exc), code="invalid_file", fmt=fmt)


def _print_summary(
    summary: dict[str, Any], rejects_path: Path | None, file: Path, fmt: OutputFormat
) -> None:
    summary["rejects_file"] = str(rejects_path) if rejects_path else None
    if fmt is OutputFormat.json:
        print_json(summary)
        return
    rows = [{"": k, "count": v} for k, v in summary.items() if isinstance(v, int)]
    rows += [
        {"": f"rejected: {code}", "count": n} for code, n in summary["rejected_by_code"].items()
    ]
    for key, label in (("points_written_off", "points written off"),
                       ("points_into_debt", "points clawed back into debt"),
                       ("points_already_expired", "points already expired")):  # fmt: skip
        rows += [{"": f"{label} ({c})", "count": n} for c, n in summary.get(key, {}).items()]
    print_rows(rows, OutputFormat.table, title=f"Import of {file.name}")
    again = summary.get("listed_again")
    if again:
        console.print(f"Warning: {again['rows']} row(s) name a member an earlier row of the "
                      f"file names ({_row_numbers(again)}); "
                      "rows are applied in file order, so the last row's values win, and a "
                      "re-run applies them again (rows that differ count as updated each "
                      "time); keep one row per member")  # fmt: skip
    late = summary.get("out_of_order")
    if late:
        console.print(f"Warning: {late['rows']} row(s) dated before an earlier row of the same "
                      f"member ({_row_numbers(late)}) were "
                      "applied in file order; sort the file by time per member")  # fmt: skip
    if rejects_path:
        console.print(f"Rejected rows written to {rejects_path}")


def _row_numbers(warning: dict[str, Any]) -> str:
    """The rows a warning names, as a person reads them: ``row 4``, ``rows 4, 6``, or
    ``first rows 4, 6, ...`` when the summary shows only the first of them."""
    shown = warning["first_rows"]
    listed = ", ".join(map(str, shown))
    if warning["rows"] == 1:
        return f"row {listed}"
    return f"rows {listed}" if warning["rows"] <= len(shown) else f"first rows {listed}, ..."
