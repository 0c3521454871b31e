"""`fidelite import` commands: bulk import of events through the program's rules."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

from fidelite.cli.output import OutputFormat, console, fail, print_json, print_rows
from fidelite.processing import EventProcessor
from fidelite.processing.importer import ImportFileError, count_rows, import_events, write_rejects
from fidelite.program import ProgramError, load_program
from fidelite.store import Database

app = typer.Typer(help="Bulk import.", no_args_is_help=True)


@app.command("events")
def events(
    file: Path = typer.Argument(..., help="Events file: CSV or Parquet."),
    program_file: Path = typer.Option(..., "--program", "-p", help="Program file (YAML)."),
    db: str | None = typer.Option(None, "--db", help="Database URL (default: $FIDELITE_DB)."),
    rejects: Path | None = typer.Option(
        None, "--rejects", help="Write rejected rows here (default: FILE.rejects.csv)."
    ),
    fmt: OutputFormat = typer.Option(OutputFormat.table, "--format", "-f", help="table or json."),
    announce: bool = typer.Option(
        True,
        "--announce/--no-announce",
        help="Send webhook events for the imported events (--no-announce: loading history).",
    ),
) -> None:
    """Process every event of a file through the program; re-running it changes nothing.

    Bad rows are skipped and listed, with their row number and reason, in the rejects
    file; the exit status is 0 even when some rows were rejected.

    Example: fidelite import events sales.csv --program program.yaml --db sqlite:///shop.db
    """
    try:
        program = load_program(program_file)
    except ProgramError as exc:
        fail(str(exc), code="invalid_program", fmt=fmt)
    database = Database.from_url(db)
    database.upgrade()
    processor = EventProcessor(database, program, announce=announce)
    try:
        total = count_rows(file)
        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=console,
            disable=fmt is OutputFormat.json,
        ) as bar:
            task = bar.add_task(f"Importing {file.name}", total=total)
            report = import_events(processor, file, progress=lambda _row: bar.advance(task))
    except (ImportFileError, OSError) as exc:
        fail(str(exc), code="invalid_file", fmt=fmt)
    finally:
        database.dispose()
    rejects_path = rejects or file.with_name(file.name + ".rejects.csv")
    if report.rejected:
        write_rejects(rejects_path, report.rejected)
    summary = report.summary()
    summary["rejects_file"] = str(rejects_path) if report.rejected else None
    if fmt is OutputFormat.json:
        print_json(summary)
        return
    rows = [{"": k, "count": v} for k, v in summary.items() if isinstance(v, int)]
    rows += [
        {"": f"rejected: {code}", "count": n} for code, n in summary["rejected_by_code"].items()
    ]
    print_rows(rows, OutputFormat.table, title=f"Import of {file.name}")
    if report.rejected:
        console.print(f"Rejected rows written to {rejects_path}")
