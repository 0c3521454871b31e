"""`fidelite report INPUT --out DIR`: the complete loyalty report, HTML and JSON.

``INPUT`` is what ``fidelite metrics --input`` takes: a transactions file or a program
database (one whose program has no purchases yet gives the program's KPIs and
engagement, the purchase-based sections listed in ``not_included`` with why). The
input options (time zone, date format, delimiter, every column name of the
transactions, survey and subscriptions files) are the ones the metrics commands declare
(:mod:`fidelite.cli.inputs`). Every input is read and checked before anything is
written.
"""

from __future__ import annotations

from dataclasses import replace
from enum import StrEnum
from pathlib import Path

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from sqlalchemy.exc import SQLAlchemyError

from fidelite.analytics.answers import AnswerColumns, LoadedAnswers
from fidelite.analytics.errors import InputError
from fidelite.analytics.io import LoadOptions, Source
from fidelite.analytics.programdb import NoPurchases, program_source_name
from fidelite.analytics.subscriptions import LoadedSubscriptions, SubscriptionColumns
from fidelite.cli.inputs import (
    number_range,
    one_of,
    program_database,
    segmented_transaction_options,
    subscription_options,
    survey_options,
    transactions_input,
)
from fidelite.cli.output import OutputFormat, console, err_console, fail, print_json


class ReportFormat(StrEnum):
    """What the command prints (the report itself is always HTML and JSON files)."""

    table = "table"
    json = "json"


@subscription_options
@survey_options
@segmented_transaction_options
def report(
    input: str = typer.Argument(
        ...,
        help="Transactions file (.csv or .parquet), or a program database: "
        "sqlite:///fidelite.db, a SQLite file path, postgresql+psycopg://..., optionally "
        "ending in #PROGRAM.",
    ),
    out: Path = typer.Option(
        ..., "--out", "-o", help="Directory for report.html and report.json (created if missing)."
    ),
    engine: str = typer.Option(
        "duckdb", "--engine", callback=one_of("duckdb", "spark"), help="duckdb or spark."
    ),
    fmt: ReportFormat = typer.Option(
        ReportFormat.table,
        "--format",
        "-f",
        help="What is printed: table (a line for people) or json (the files written, or "
        "the error).",
        is_eager=True,  # parsed first: the other options' checks answer in this format
    ),
    surveys: Path | None = typer.Option(
        None, "--surveys", help="Survey answers file: adds the NPS trend (dates detected)."
    ),
    subscriptions: Path | None = typer.Option(
        None,
        "--subscriptions",
        help="Subscriptions file: adds recurring revenue (MRR) (dates detected).",
    ),
    lifespan: float | None = typer.Option(
        None,
        "--lifespan-years",
        callback=number_range(0, low_open=True),
        help="Known customer lifespan in years (above 0) for the simple CLV of the key "
        "figures, as in fidelite metrics clv; without it the lifespan comes from monthly "
        "churn.",
    ),
    memory_limit: str | None = typer.Option(
        None,
        "--memory-limit",
        help="DuckDB memory cap, e.g. 4GB (default $FIDELITE_MEMORY_LIMIT or 1GB); "
        "beyond it DuckDB spills to a temporary directory.",
    ),
    *,
    load: LoadOptions,
    survey_columns: AnswerColumns,
    subscription_columns: SubscriptionColumns,
) -> None:
    """Write report.html (opens offline) and report.json with every number.

    Example: fidelite report tx.csv --out report/ --timezone Europe/Paris --surveys answers.csv

    Example: fidelite report sqlite:///fidelite.db#cafe --out report/

    Example: fidelite report tx.csv --out report/ --segment-col channel

    The last one adds a table of each channel's repeat purchase rate and monthly retention.
    """
    from fidelite.report.build import build_report

    shown = OutputFormat(fmt.value)
    if out.exists() and not out.is_dir():
        fail(
            f"--out {out} is a file: give a directory (it is created when missing)",
            code="usage",
            fmt=shown,
        )
    opts = load if memory_limit is None else replace(load, memory_limit=memory_limit)
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,  # the spinner disappears: only the result or the error stays
        # a redirected stderr (a log file) gets no spinner line, only what is printed
        disable=shown is not OutputFormat.table or not err_console.is_terminal,
    )
    try:
        with progress:
            task = progress.add_task("Reading the inputs", total=None)
            source, named, program_db = _transactions(input, opts)
            answers = _answers(surveys, survey_columns, opts.timezone)
            subs = _subscriptions(subscriptions, subscription_columns, opts.timezone)
            written = build_report(
                source,
                out,
                engine="spark" if engine == "spark" else "duckdb",
                options=named,
                on_step=lambda label: progress.update(task, description=label),
                surveys=answers,
                subscriptions=subs,
                program_db=program_db,
                lifespan_years=lifespan,
            )
    except InputError as exc:
        fail(str(exc), code="bad_input", fmt=shown, file=exc.file, row=exc.row, column=exc.column)
    except SQLAlchemyError as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        fail(f"cannot read the program database: {first}", code="bad_input", fmt=shown)
    except OSError as exc:
        fail(f"--out {out}: cannot write the report{_where(exc, out)}: {exc.strerror or exc}",
             code="io", fmt=shown)  # fmt: skip
    except ValueError as exc:
        fail(str(exc), code="usage", fmt=shown)
    files = {"html": str(out / "report.html"), "json": str(out / "report.json")}
    warnings = written["warnings"]
    if shown is OutputFormat.json:
        print_json({"report": files, "warnings": warnings})
    else:
        # the command's result, on standard output (warnings go to standard error)
        console.print(
            f"Report written: {files['html']} and {files['json']}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        for warning in warnings:
            err_console.print(f"Warning: {warning}", markup=False, highlight=False)


def _where(exc: OSError, out: Path) -> str:
    """The file standing where one of ``out``'s parent folders should be, when
    creating ``out`` failed because of it ("" otherwise)."""
    if exc.filename is None or Path(exc.filename) != out:
        return ""  # a file in out: the message names it or out is the place to look
    blocking = [p for p in reversed(out.parents) if p.exists() and not p.is_dir()]
    return f" ({blocking[0]} is a file)" if blocking else ""


def _transactions(
    text: str, options: LoadOptions
) -> tuple[Source | None, LoadOptions, tuple[str, str] | None]:
    """The transactions ``text`` names, the options naming them, and ``(url, program id)``
    when it is a program database. A program without any purchase gives no
    transactions (``None``): the report then holds the program's own sections and
    says why the purchase-based ones are left out."""
    try:
        source, named = transactions_input(text, options)
    except NoPurchases:
        program_db = program_database(text)
        return None, replace(options, source_name=program_source_name(*program_db)), program_db
    return source, named, None if isinstance(source, Path) else program_database(text)


def _answers(path: Path | None, columns: AnswerColumns, timezone: str) -> LoadedAnswers | None:
    """The survey answers, read with the user's column names (checked before writing)."""
    from fidelite.analytics.answers import load_answers

    return None if path is None else load_answers(path, columns=columns, timezone=timezone)


def _subscriptions(
    path: Path | None, columns: SubscriptionColumns, timezone: str
) -> LoadedSubscriptions | None:
    """The subscriptions, read with the user's column names (checked before writing)."""
    from fidelite.analytics.subscriptions import load_subscriptions

    return None if path is None else load_subscriptions(path, columns=columns, timezone=timezone)
