"""`fidelite report INPUT --out DIR`: the complete loyalty report, HTML and JSON."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from fidelite.analytics.errors import InputError
from fidelite.analytics.io import ColumnMapping, LoadOptions
from fidelite.cli.output import OutputFormat, err_console, fail, print_json


def report(
    input: Path = typer.Argument(..., help="Transactions file (.csv or .parquet)."),
    out: Path = typer.Option(..., "--out", "-o", help="Directory for report.html and report.json."),
    engine: str = typer.Option("duckdb", "--engine", help="duckdb or spark."),
    fmt: OutputFormat = typer.Option(OutputFormat.table, "--format", "-f", help="table or json."),
    tz: str = typer.Option("UTC", "--timezone", help="Business time zone (IANA)."),
    date_format: str | None = typer.Option(None, "--date-format", help="strptime format."),
    customer: str = typer.Option("customer_id", "--customer-col", help="Customer column."),
    time: str = typer.Option("timestamp", "--time-col", help="Timestamp column."),
    amount: str = typer.Option("amount", "--amount-col", help="Amount column."),
    order: str = typer.Option("order_id", "--order-col", help="Order id column."),
    product: str = typer.Option("product_id", "--product-col", help="Product column."),
    refund: str = typer.Option("refund", "--refund-col", help="Refund flag column."),
    surveys: Path | None = typer.Option(
        None, "--surveys", help="Survey answers file: adds the NPS trend."
    ),
    subscriptions: Path | None = typer.Option(
        None, "--subscriptions", help="Subscriptions file: adds recurring revenue (MRR)."
    ),
    memory_limit: str | None = typer.Option(
        None,
        "--memory-limit",
        help="DuckDB memory cap, e.g. 4GB (default $FIDELITE_MEMORY_LIMIT or 1GB); "
        "beyond it DuckDB spills to a temporary directory.",
    ),
) -> None:
    """Write report.html (opens offline) and report.json with every number.

    Example: fidelite report tx.csv --out report/ --timezone Europe/Paris --surveys answers.csv
    """
    from fidelite.report.build import build_report

    if engine not in ("duckdb", "spark"):
        fail(f"unknown engine '{engine}' (duckdb or spark)", code="usage", fmt=fmt)
    cols = ColumnMapping(
        customer_id=customer,
        timestamp=time,
        amount=amount,
        order_id=order,
        product_id=product,
        refund=refund,
    )
    opts = LoadOptions(columns=cols, timezone=tz, date_format=date_format)
    if memory_limit is not None:
        opts = replace(opts, memory_limit=memory_limit)
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=err_console,
        disable=fmt is not OutputFormat.table,
    )
    try:
        with progress:
            task = progress.add_task("Starting", total=None)
            build_report(
                input,
                out,
                engine="spark" if engine == "spark" else "duckdb",
                options=opts,
                on_step=lambda label: progress.update(task, description=label),
                surveys=surveys,
                subscriptions=subscriptions,
            )
    except InputError as exc:
        fail(str(exc), code="bad_input", fmt=fmt, file=exc.file, row=exc.row, column=exc.column)
    except ValueError as exc:
        fail(str(exc), code="usage", fmt=fmt)
    files = {"html": str(out / "report.html"), "json": str(out / "report.json")}
    if fmt is OutputFormat.json:
        print_json({"report": files})
    else:
        err_console.print(f"Report written: {files['html']} and {files['json']}")
