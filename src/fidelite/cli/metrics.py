"""`fidelite metrics NAME --input FILE`: one loyalty metric from a transactions file.

Every command prints ``{"metric", "definition", "parameters", "rows"}`` with
``--format json`` (rates are percentages 0-100), the rows as CSV with ``--format csv``,
or a table with the definition underneath.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import typer

from fidelite.analytics.engine import Dataset, EngineName, open_dataset
from fidelite.analytics.errors import InputError
from fidelite.analytics.io import ColumnMapping, LoadOptions
from fidelite.analytics.metrics.period import Period
from fidelite.analytics.metrics.result import MetricResult
from fidelite.cli.output import OutputFormat, console, err_console, fail, print_json, print_rows

app = typer.Typer(
    help="Loyalty metrics from a transactions file (CSV or Parquet).\n\n"
    "Example: fidelite metrics retention --input tx.csv --period month --format json",
    no_args_is_help=True,
)

INPUT = typer.Option(..., "--input", "-i", help="Transactions file (.csv or .parquet).")
ENGINE = typer.Option("duckdb", "--engine", help="duckdb (embedded) or spark (local mode).")
FORMAT = typer.Option(OutputFormat.table, "--format", "-f", help="table, json or csv.")
TZ = typer.Option("UTC", "--timezone", help="Business time zone (IANA), decides the local day.")
DATE_FMT = typer.Option(None, "--date-format", help="strptime format, e.g. %d/%m/%Y.")
CUSTOMER = typer.Option("customer_id", "--customer-col", help="Customer column.")
TIME = typer.Option("timestamp", "--time-col", help="Timestamp column.")
AMOUNT = typer.Option("amount", "--amount-col", help="Amount column.")
ORDER = typer.Option("order_id", "--order-col", help="Order id column (optional in the file).")
PRODUCT = typer.Option("product_id", "--product-col", help="Product column (optional).")
REFUND = typer.Option("refund", "--refund-col", help="Refund flag column (optional).")
DELIM = typer.Option(None, "--delimiter", help="CSV delimiter (detected when omitted).")
PERIOD = typer.Option("month", "--period", help="day, week, month, quarter or year.")


def _run(
    fmt: OutputFormat,
    source: Path,
    engine: str,
    options: LoadOptions,
    compute: Callable[[Dataset], MetricResult],
) -> None:
    """Load, compute and print; any input problem is one clear error, nothing printed."""
    if engine not in ("duckdb", "spark"):
        fail(f"unknown engine '{engine}' (duckdb or spark)", code="usage", fmt=fmt)
    try:
        with _progress(fmt, f"Reading {source}"):
            ds = open_dataset(source, engine=_engine(engine), options=options)
        with _progress(fmt, "Computing"):
            result = compute(ds)
    except InputError as exc:
        fail(str(exc), code="bad_input", fmt=fmt, file=exc.file, row=exc.row, column=exc.column)
    except ValueError as exc:
        fail(str(exc), code="usage", fmt=fmt)
    render(result, fmt)


def _engine(name: str) -> EngineName:
    return "spark" if name == "spark" else "duckdb"


@contextmanager
def _progress(fmt: OutputFormat, label: str) -> Iterator[None]:
    """A spinner on stderr for humans; silent for machine formats."""
    if fmt is OutputFormat.table:
        with err_console.status(label):
            yield
    else:
        yield


def render(result: MetricResult, fmt: OutputFormat) -> None:
    """Print a metric result in the chosen format."""
    if fmt is OutputFormat.json:
        print_json(result.to_dict())
        return
    print_rows(result.rows, fmt, title=result.metric)
    if fmt is OutputFormat.table:
        for key, value in result.summary.items():
            console.print(f"{key}: {value}")
        console.print(f"[dim]{result.definition}[/]")


def _options(
    tz: str,
    date_format: str | None,
    customer: str,
    time: str,
    amount: str,
    order: str,
    product: str,
    refund: str,
    delimiter: str | None,
) -> LoadOptions:
    cols = ColumnMapping(
        customer_id=customer,
        timestamp=time,
        amount=amount,
        order_id=order,
        product_id=product,
        refund=refund,
    )
    return LoadOptions(columns=cols, timezone=tz, date_format=date_format, delimiter=delimiter)


def _period(value: str) -> Period:
    periods: dict[str, Period] = {
        "day": "day",
        "week": "week",
        "month": "month",
        "quarter": "quarter",
        "year": "year",
    }
    if value not in periods:
        raise typer.BadParameter("period must be day, week, month, quarter or year")
    return periods[value]


def _ints(value: str) -> list[int]:
    try:
        return [int(x) for x in value.split(",") if x.strip()]
    except ValueError as exc:
        raise typer.BadParameter(f"expected a comma-separated list of days, got {value!r}") from exc


@app.command("retention")
def retention_cmd(
    input: Path = INPUT,
    period: str = PERIOD,
    engine: str = ENGINE,
    fmt: OutputFormat = FORMAT,
    tz: str = TZ,
    date_format: str | None = DATE_FMT,
    customer: str = CUSTOMER,
    time: str = TIME,
    amount: str = AMOUNT,
    order: str = ORDER,
    product: str = PRODUCT,
    refund: str = REFUND,
    delimiter: str | None = DELIM,
) -> None:
    """Customer retention (E-N)/S and churn per period.

    Example: fidelite metrics retention --input tx.csv --period month --format json
    """
    from fidelite.analytics.metrics.retention import retention

    p = _period(period)
    opts = _options(tz, date_format, customer, time, amount, order, product, refund, delimiter)
    _run(fmt, input, engine, opts, lambda ds: retention(ds, p))


@app.command("churn")
def churn_cmd(
    input: Path = INPUT,
    period: str = PERIOD,
    engine: str = ENGINE,
    fmt: OutputFormat = FORMAT,
    tz: str = TZ,
    date_format: str | None = DATE_FMT,
    customer: str = CUSTOMER,
    time: str = TIME,
    amount: str = AMOUNT,
    order: str = ORDER,
    product: str = PRODUCT,
    refund: str = REFUND,
    delimiter: str | None = DELIM,
) -> None:
    """Churn rate (lost / S) per period, with the retention figures beside it.

    Example: fidelite metrics churn --input tx.csv --period quarter
    """
    from fidelite.analytics.metrics.retention import churn

    p = _period(period)
    opts = _options(tz, date_format, customer, time, amount, order, product, refund, delimiter)
    _run(fmt, input, engine, opts, lambda ds: churn(ds, p))


@app.command("new-vs-returning")
def new_returning_cmd(
    input: Path = INPUT,
    period: str = PERIOD,
    engine: str = ENGINE,
    fmt: OutputFormat = FORMAT,
    tz: str = TZ,
    date_format: str | None = DATE_FMT,
    customer: str = CUSTOMER,
    time: str = TIME,
    amount: str = AMOUNT,
    order: str = ORDER,
    product: str = PRODUCT,
    refund: str = REFUND,
    delimiter: str | None = DELIM,
) -> None:
    """New vs returning customers per period.

    Example: fidelite metrics new-vs-returning --input tx.csv --period week
    """
    from fidelite.analytics.metrics.retention import new_vs_returning

    p = _period(period)
    opts = _options(tz, date_format, customer, time, amount, order, product, refund, delimiter)
    _run(fmt, input, engine, opts, lambda ds: new_vs_returning(ds, p))


@app.command("repeat-rate")
def repeat_rate_cmd(
    input: Path = INPUT,
    period: str | None = typer.Option(None, "--period", help="Per period; whole file if omitted."),
    engine: str = ENGINE,
    fmt: OutputFormat = FORMAT,
    tz: str = TZ,
    date_format: str | None = DATE_FMT,
    customer: str = CUSTOMER,
    time: str = TIME,
    amount: str = AMOUNT,
    order: str = ORDER,
    product: str = PRODUCT,
    refund: str = REFUND,
    delimiter: str | None = DELIM,
) -> None:
    """Repeat purchase rate: customers with 2+ orders / customers with 1+.

    Example: fidelite metrics repeat-rate --input tx.csv --period year --format json
    """
    from fidelite.analytics.metrics.repeat import repeat_rate

    p = _period(period) if period else None
    opts = _options(tz, date_format, customer, time, amount, order, product, refund, delimiter)
    _run(fmt, input, engine, opts, lambda ds: repeat_rate(ds, p))


@app.command("repurchase")
def repurchase_cmd(
    input: Path = INPUT,
    days: str = typer.Option("30,60,90,180,360", "--days", help="Comma-separated windows."),
    per_product: bool = typer.Option(False, "--per-product", help="Same product again."),
    engine: str = ENGINE,
    fmt: OutputFormat = FORMAT,
    tz: str = TZ,
    date_format: str | None = DATE_FMT,
    customer: str = CUSTOMER,
    time: str = TIME,
    amount: str = AMOUNT,
    order: str = ORDER,
    product: str = PRODUCT,
    refund: str = REFUND,
    delimiter: str | None = DELIM,
) -> None:
    """Repurchase rate within D days by monthly first-purchase cohort.

    Example: fidelite metrics repurchase --input tx.csv --days 30,60,90 --format json
    """
    from fidelite.analytics.metrics.repurchase import repurchase

    windows = _ints(days)
    opts = _options(tz, date_format, customer, time, amount, order, product, refund, delimiter)
    _run(fmt, input, engine, opts, lambda ds: repurchase(ds, windows, per_product=per_product))


@app.command("cohorts")
def cohorts_cmd(
    input: Path = INPUT,
    period: str = PERIOD,
    kind: str = typer.Option("n-day", "--kind", help="n-day, unbounded or bracket."),
    brackets: str = typer.Option("1-7,8-30,31-90", "--brackets", help="Day brackets A-B,..."),
    engine: str = ENGINE,
    fmt: OutputFormat = FORMAT,
    tz: str = TZ,
    date_format: str | None = DATE_FMT,
    customer: str = CUSTOMER,
    time: str = TIME,
    amount: str = AMOUNT,
    order: str = ORDER,
    product: str = PRODUCT,
    refund: str = REFUND,
    delimiter: str | None = DELIM,
) -> None:
    """Cohort retention matrix (N-period, unbounded or bracket retention).

    Example: fidelite metrics cohorts --input tx.csv --period week --kind unbounded
    """
    from fidelite.analytics.metrics.cohorts import cohorts

    if kind not in ("n-day", "unbounded", "bracket"):
        raise typer.BadParameter("kind must be n-day, unbounded or bracket")
    spans = _brackets(brackets)
    p = _period(period)
    opts = _options(tz, date_format, customer, time, amount, order, product, refund, delimiter)
    _run(fmt, input, engine, opts, lambda ds: cohorts(ds, p, kind, spans))  # type: ignore[arg-type]


def _brackets(value: str) -> list[tuple[int, int]]:
    try:
        spans = [tuple(int(x) for x in part.split("-")) for part in value.split(",")]
    except ValueError as exc:
        raise typer.BadParameter("brackets look like 1-7,8-30,31-90") from exc
    if any(len(s) != 2 or s[0] > s[1] for s in spans):
        raise typer.BadParameter("brackets look like 1-7,8-30,31-90")
    return [(s[0], s[1]) for s in spans]


@app.command("rfm")
def rfm_cmd(
    input: Path = INPUT,
    quantiles: int = typer.Option(5, "--quantiles", help="Score levels (5 = quintiles)."),
    engine: str = ENGINE,
    fmt: OutputFormat = FORMAT,
    tz: str = TZ,
    date_format: str | None = DATE_FMT,
    customer: str = CUSTOMER,
    time: str = TIME,
    amount: str = AMOUNT,
    order: str = ORDER,
    product: str = PRODUCT,
    refund: str = REFUND,
    delimiter: str | None = DELIM,
) -> None:
    """RFM values, scores and segment, one row per customer.

    Example: fidelite metrics rfm --input tx.parquet --format csv
    """
    from fidelite.analytics.metrics.rfm import rfm

    opts = _options(tz, date_format, customer, time, amount, order, product, refund, delimiter)
    _run(fmt, input, engine, opts, lambda ds: rfm(ds, quantiles))


@app.command("pareto")
def pareto_cmd(
    input: Path = INPUT,
    top: float = typer.Option(20.0, "--top", help="Top percent of customers."),
    limit: int = typer.Option(100, "--limit", help="Top customers listed (0 = all)."),
    engine: str = ENGINE,
    fmt: OutputFormat = FORMAT,
    tz: str = TZ,
    date_format: str | None = DATE_FMT,
    customer: str = CUSTOMER,
    time: str = TIME,
    amount: str = AMOUNT,
    order: str = ORDER,
    product: str = PRODUCT,
    refund: str = REFUND,
    delimiter: str | None = DELIM,
) -> None:
    """Revenue share of the top customers, and who they are.

    Example: fidelite metrics pareto --input tx.csv --top 20 --format json
    """
    from fidelite.analytics.metrics.pareto import pareto

    opts = _options(tz, date_format, customer, time, amount, order, product, refund, delimiter)
    _run(fmt, input, engine, opts, lambda ds: pareto(ds, top, limit or None))


@app.command("clv")
def clv_cmd(
    input: Path = INPUT,
    lifespan: float | None = typer.Option(None, "--lifespan-years", help="Known lifespan."),
    engine: str = ENGINE,
    fmt: OutputFormat = FORMAT,
    tz: str = TZ,
    date_format: str | None = DATE_FMT,
    customer: str = CUSTOMER,
    time: str = TIME,
    amount: str = AMOUNT,
    order: str = ORDER,
    product: str = PRODUCT,
    refund: str = REFUND,
    delimiter: str | None = DELIM,
) -> None:
    """Simple CLV: average order value x purchases per year x lifespan in years.

    Example: fidelite metrics clv --input tx.csv --lifespan-years 3
    """
    from fidelite.analytics.metrics.clv import simple_clv

    opts = _options(tz, date_format, customer, time, amount, order, product, refund, delimiter)
    _run(fmt, input, engine, opts, lambda ds: simple_clv(ds, lifespan))
