"""`fidelite metrics NAME --input FILE`: one loyalty metric from a transactions file.

Every command prints ``{"metric", "definition", "parameters", "rows"}`` with
``--format json`` (rates are percentages 0-100), the rows as CSV with ``--format csv``,
or a table with the definition underneath.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import typer

from fidelite.analytics.engine import Dataset, EngineName, open_dataset
from fidelite.analytics.errors import InputError
from fidelite.analytics.io import ColumnMapping, LoadOptions, Source
from fidelite.analytics.metrics.period import Period
from fidelite.analytics.metrics.result import MetricResult
from fidelite.analytics.programdb import is_program_source, read_program_source
from fidelite.cli.output import OutputFormat, console, err_console, fail, print_json, print_rows

app = typer.Typer(
    help="Loyalty metrics from a transactions file (CSV or Parquet).\n\n"
    "Example: fidelite metrics retention --input tx.csv --period month --format json",
    no_args_is_help=True,
)

INPUT = typer.Option(
    ...,
    "--input",
    "-i",
    help="Transactions file (.csv or .parquet), or a program database: "
    "sqlite:///fidelite.db, postgresql+psycopg://..., optionally ending in #PROGRAM.",
)
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
    source: str | Path,
    engine: str,
    options: LoadOptions,
    compute: Callable[[Dataset], MetricResult],
) -> None:
    """Load, compute and print; any input problem is one clear error, nothing printed."""
    if engine not in ("duckdb", "spark"):
        fail(f"unknown engine '{engine}' (duckdb or spark)", code="usage", fmt=fmt)
    try:
        with _progress(fmt, f"Reading {source}"):
            ds = open_dataset(_source(source), engine=_engine(engine), options=options)
        with _progress(fmt, "Computing"):
            result = compute(ds)
    except InputError as exc:
        fail(str(exc), code="bad_input", fmt=fmt, file=exc.file, row=exc.row, column=exc.column)
    except ValueError as exc:
        fail(str(exc), code="usage", fmt=fmt)
    render(result, fmt)


def _source(text: str | Path) -> Source:
    """A transactions file path, or the transactions read from a program database."""
    return read_program_source(str(text)) if is_program_source(str(text)) else Path(text)


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
    input: str = INPUT,
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
    input: str = INPUT,
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
    input: str = INPUT,
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
    input: str = INPUT,
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
    input: str = INPUT,
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
    input: str = INPUT,
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
    input: str = INPUT,
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


@app.command("loyalty-kinds")
def loyalty_kinds_cmd(
    input: str = INPUT,
    surveys: Path | None = typer.Option(
        None, "--surveys", "-s", help="Survey answers (nps/recommend, csat, program questions)."
    ),
    min_orders: int = typer.Option(3, "--min-orders", help="Orders that make a repeat buyer."),
    active_days: int = typer.Option(
        90, "--active-days", help="Most days since the last order for a repeat buyer."
    ),
    price_share: float = typer.Option(
        50.0, "--price-share", help="% of orders with a coupon that marks low-price loyalty."
    ),
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
    """Kinds of loyal customers (truly, low-price, program, convenience loyal; satisfied).

    One row per customer with the facts that decided its kind; counts per kind.

    Example: fidelite metrics loyalty-kinds -i tx.csv --surveys answers.csv --format json
    """
    from fidelite.analytics.metrics.loyalty import Thresholds, loyalty_kinds

    rules = Thresholds(min_orders, active_days, price_share)

    def compute(ds: Dataset) -> MetricResult:
        from fidelite.analytics.answers import load_answers
        from fidelite.analytics.metrics.surveys import Answers

        said = None
        if surveys is not None:
            said = Answers(load_answers(surveys, timezone=tz, date_format=date_format), ds.engine)
        return loyalty_kinds(ds, said, rules)

    opts = _options(tz, date_format, customer, time, amount, order, product, refund, delimiter)
    _run(fmt, input, engine, opts, compute)


@app.command("pareto")
def pareto_cmd(
    input: str = INPUT,
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
    input: str = INPUT,
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


@app.command("engagement")
def engagement_cmd(
    input: str = typer.Option(
        ..., "--input", "-i", help="Program database: URL or SQLite file, optionally #PROGRAM."
    ),
    period: str = PERIOD,
    fmt: OutputFormat = FORMAT,
    tz: str = TZ,
) -> None:
    """Member engagement per period: interactions of every kind, multi-kind members.

    Example: fidelite metrics engagement --input sqlite:///fidelite.db#cafe --period week
    """
    from fidelite.analytics.engagement import engagement
    from fidelite.analytics.programdb import program_source

    p = _period(period)
    try:
        with _progress(fmt, f"Reading {input}"):
            result = engagement(*program_source(input), p, tz)
    except InputError as exc:
        fail(str(exc), code="bad_input", fmt=fmt, file=exc.file)
    render(result, fmt)


SURVEYS = typer.Option(
    ...,
    "--surveys",
    "-s",
    help="Survey answers file (.csv or .parquet): customer_id, timestamp, question, score.",
)
OPT_PERIOD = typer.Option(None, "--period", help="Per period; whole file if omitted.")


def _survey_metric(
    name: str,
    surveys: Path,
    period: str | None,
    engine: str,
    fmt: OutputFormat,
    tz: str,
    date_format: str | None,
) -> None:
    """Load answers, compute survey metric ``name`` and print it."""
    from fidelite.analytics.answers import load_answers
    from fidelite.analytics.metrics import surveys as survey_metrics

    compute = {
        "nps": survey_metrics.nps,
        "csat": survey_metrics.csat,
        "ces": survey_metrics.ces,
        "loyalty-index": survey_metrics.loyalty_index,
        "share-of-wallet": survey_metrics.share_of_wallet,
    }[name]
    p = _period(period) if period else None
    if engine not in ("duckdb", "spark"):
        fail(f"unknown engine '{engine}' (duckdb or spark)", code="usage", fmt=fmt)
    try:
        with _progress(fmt, f"Reading {surveys}"):
            loaded = load_answers(surveys, timezone=tz, date_format=date_format)
        with _progress(fmt, "Computing"):
            result = compute(survey_metrics.Answers(loaded, _engine(engine)), p)
    except InputError as exc:
        fail(str(exc), code="bad_input", fmt=fmt, file=exc.file, row=exc.row, column=exc.column)
    render(result, fmt)


@app.command("nps")
def nps_cmd(
    surveys: Path = SURVEYS,
    period: str | None = OPT_PERIOD,
    engine: str = ENGINE,
    fmt: OutputFormat = FORMAT,
    tz: str = TZ,
    date_format: str | None = DATE_FMT,
) -> None:
    """Net Promoter Score: % promoters (9-10) - % detractors (0-6).

    Example: fidelite metrics nps --surveys answers.csv --period month --format json
    """
    _survey_metric("nps", surveys, period, engine, fmt, tz, date_format)


@app.command("csat")
def csat_cmd(
    surveys: Path = SURVEYS,
    period: str | None = OPT_PERIOD,
    engine: str = ENGINE,
    fmt: OutputFormat = FORMAT,
    tz: str = TZ,
    date_format: str | None = DATE_FMT,
) -> None:
    """Customer satisfaction: % of csat answers that are 4 or 5, and the mean.

    Example: fidelite metrics csat --surveys answers.csv --period quarter
    """
    _survey_metric("csat", surveys, period, engine, fmt, tz, date_format)


@app.command("ces")
def ces_cmd(
    surveys: Path = SURVEYS,
    period: str | None = OPT_PERIOD,
    engine: str = ENGINE,
    fmt: OutputFormat = FORMAT,
    tz: str = TZ,
    date_format: str | None = DATE_FMT,
) -> None:
    """Customer effort score: the mean 1-7 answer (7 = very easy) and % easy.

    Example: fidelite metrics ces --surveys answers.csv --format json
    """
    _survey_metric("ces", surveys, period, engine, fmt, tz, date_format)


@app.command("loyalty-index")
def loyalty_index_cmd(
    surveys: Path = SURVEYS,
    period: str | None = OPT_PERIOD,
    engine: str = ENGINE,
    fmt: OutputFormat = FORMAT,
    tz: str = TZ,
    date_format: str | None = DATE_FMT,
) -> None:
    """Customer loyalty index: mean NPS-style score of recommend, repurchase, upsell.

    Example: fidelite metrics loyalty-index --surveys answers.csv --period year
    """
    _survey_metric("loyalty-index", surveys, period, engine, fmt, tz, date_format)


@app.command("share-of-wallet")
def share_of_wallet_cmd(
    surveys: Path = SURVEYS,
    period: str | None = OPT_PERIOD,
    engine: str = ENGINE,
    fmt: OutputFormat = FORMAT,
    tz: str = TZ,
    date_format: str | None = DATE_FMT,
) -> None:
    """Share of wallet: the mean stated share (%) of category spending that comes to us.

    Example: fidelite metrics share-of-wallet --surveys answers.csv --format json
    """
    _survey_metric("share-of-wallet", surveys, period, engine, fmt, tz, date_format)


@app.command("mrr")
def mrr_cmd(
    subscriptions: Path = typer.Option(
        ...,
        "--subscriptions",
        help="Subscriptions file (.csv or .parquet): customer_id, mrr, start, end, plan.",
    ),
    period: str = typer.Option("month", "--period", help="month, quarter or year."),
    engine: str = ENGINE,
    fmt: OutputFormat = FORMAT,
    date_format: str | None = DATE_FMT,
) -> None:
    """Recurring revenue: MRR movements, MRR churn, net revenue retention, negative churn.

    Example: fidelite metrics mrr --subscriptions subs.csv --period month --format json
    """
    from fidelite.analytics.metrics.mrr import Subscriptions, mrr
    from fidelite.analytics.subscriptions import load_subscriptions

    p = _period(period)
    if engine not in ("duckdb", "spark"):
        fail(f"unknown engine '{engine}' (duckdb or spark)", code="usage", fmt=fmt)
    try:
        with _progress(fmt, f"Reading {subscriptions}"):
            loaded = load_subscriptions(subscriptions, date_format=date_format)
        with _progress(fmt, "Computing"):
            result = mrr(Subscriptions(loaded, _engine(engine)), p)
    except InputError as exc:
        fail(str(exc), code="bad_input", fmt=fmt, file=exc.file, row=exc.row, column=exc.column)
    except ValueError as exc:
        fail(str(exc), code="usage", fmt=fmt)
    render(result, fmt)


BY = typer.Option("product", "--by", help="product or category.")


def _level(value: str) -> Literal["product", "category"]:
    if value == "product":
        return "product"
    if value == "category":
        return "category"
    raise typer.BadParameter("--by must be product or category")


@app.command("multi-product")
def multi_product_cmd(
    input: str = INPUT,
    by: str = BY,
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
    """Multi-product buyers: repeat customers who bought more than one product (category).

    Example: fidelite metrics multi-product --input tx.csv --by category --format json
    """
    from fidelite.analytics.metrics.products import multi_product

    level = _level(by)
    opts = _options(tz, date_format, customer, time, amount, order, product, refund, delimiter)
    _run(fmt, input, engine, opts, lambda ds: multi_product(ds, level))


@app.command("basket")
def basket_cmd(
    input: str = INPUT,
    by: str = BY,
    min_support: float = typer.Option(1.0, "--min-support", help="Minimum support, %."),
    top: int = typer.Option(50, "--top", help="Pairs listed."),
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
    """Basket affinity: product pairs bought together (support, confidence, lift).

    Example: fidelite metrics basket --input tx.csv --min-support 0.5 --top 20 --format json
    """
    from fidelite.analytics.metrics.products import basket_affinity

    level = _level(by)
    opts = _options(tz, date_format, customer, time, amount, order, product, refund, delimiter)
    _run(
        fmt,
        input,
        engine,
        opts,
        lambda ds: basket_affinity(ds, by=level, min_support=min_support, top=top),
    )


@app.command("program-kpis")
def program_kpis_cmd(
    db: str = typer.Option(
        ..., "--db", help="Program database: URL or SQLite file, optionally #PROGRAM."
    ),
    period: str = typer.Option("month", "--period", help="month, quarter or year."),
    currency: str | None = typer.Option(None, "--currency", help="Point currency."),
    point_value: str | None = typer.Option(
        None, "--point-value", help="Money value of one point, for the liability (e.g. 0.01)."
    ),
    input: str | None = typer.Option(
        None,
        "--input",
        "-i",
        help="All customers' transactions: adds members vs non-members, incremental "
        "revenue, cost of rewards and ROI.",
    ),
    margin: float = typer.Option(
        100.0, "--margin", help="Gross margin % applied to incremental revenue in the ROI."
    ),
    fmt: OutputFormat = FORMAT,
    tz: str = TZ,
) -> None:
    """Program KPIs: members, earn and burn, breakage, liability, redemptions, spend, ROI.

    Example: fidelite metrics program-kpis --db sqlite:///shop.db#cafe --point-value 0.01
    --input all-customers.csv --margin 30
    """
    from decimal import Decimal, InvalidOperation

    from fidelite.analytics.kpis import program_kpis
    from fidelite.analytics.programdb import program_source

    p = _period(period)
    try:
        value = Decimal(point_value) if point_value is not None else None
    except InvalidOperation:
        fail(f"--point-value: not a number: {point_value!r}", code="usage", fmt=fmt)
    try:
        with _progress(fmt, f"Reading {db}"):
            url, program_id = program_source(db)
            ds = open_dataset(_source(input), options=LoadOptions(timezone=tz)) if input else None
            result = program_kpis(
                url,
                program_id,
                period=p,
                timezone=tz,
                currency=currency,
                value=value,
                transactions=ds,
                margin=margin / 100,
            )
    except InputError as exc:
        fail(str(exc), code="bad_input", fmt=fmt, file=exc.file, row=exc.row, column=exc.column)
    except ValueError as exc:
        fail(str(exc), code="usage", fmt=fmt)
    render(result, fmt)


@app.command("benchmark")
def benchmark_cmd(
    column: str = typer.Option(..., "--column", help="The column to compare, e.g. retention_rate."),
    reference: float = typer.Option(..., "--reference", help="The reference value."),
    label: str = typer.Option("reference", "--label", help="What the reference is."),
    result: Path | None = typer.Option(
        None, "--result", help="A metric's JSON output (default: read it from stdin)."
    ),
    fmt: OutputFormat = FORMAT,
) -> None:
    """Compare any metric's JSON output with a reference value (norm, target, competitor).

    Example: fidelite metrics retention -i tx.csv -f json | fidelite metrics benchmark
    --column retention_rate --reference 85 --label "industry norm" -f json
    """
    import json
    import sys

    from fidelite.analytics.benchmark import compare
    from fidelite.analytics.metrics.result import MetricResult

    name = str(result) if result else "<stdin>"
    try:
        text = result.read_text(encoding="utf-8") if result else sys.stdin.read()
        data = json.loads(text)
        compared = compare(data, column, reference, label, source=name)
    except (OSError, json.JSONDecodeError) as exc:
        fail(f"{name}: cannot read a metric result: {exc}", code="bad_input", fmt=fmt)
    except InputError as exc:
        fail(str(exc), code="bad_input", fmt=fmt, file=exc.file, column=exc.column)
    render(
        MetricResult(
            compared["metric"],
            compared["definition"],
            compared["parameters"],
            compared["rows"],
            compared.get("summary", {}),
        ),
        fmt,
    )


@app.command("coupons")
def coupons_cmd(
    input: str = INPUT,
    targeting: Path = typer.Option(
        ..., "--targeting", help="CSV: customer_id, campaign, group (treatment or holdout)."
    ),
    start: str = typer.Option(..., "--from", help="First day of the campaign (YYYY-MM-DD)."),
    end: str = typer.Option(..., "--to", help="Last day of the campaign (YYYY-MM-DD)."),
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
    """Coupon and offer effectiveness: redemption rate and incremental revenue vs a holdout.

    Example: fidelite metrics coupons -i tx.csv --targeting groups.csv --from 2024-03-01
    --to 2024-03-31 --format json
    """
    from datetime import date

    from fidelite.analytics.metrics.coupons import coupon_effectiveness, load_targeting

    try:
        first, last = date.fromisoformat(start), date.fromisoformat(end)
    except ValueError:
        fail(
            f"--from/--to: expected dates YYYY-MM-DD, got {start!r}, {end!r}", code="usage", fmt=fmt
        )
    try:
        groups = load_targeting(targeting)
    except InputError as exc:
        fail(str(exc), code="bad_input", fmt=fmt, file=exc.file, row=exc.row, column=exc.column)
    opts = _options(tz, date_format, customer, time, amount, order, product, refund, delimiter)
    _run(fmt, input, engine, opts, lambda ds: coupon_effectiveness(ds, groups, first, last))
