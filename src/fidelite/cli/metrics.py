"""`fidelite metrics NAME --input FILE`: one loyalty metric from a transactions file.

Every command prints ``{"metric", "definition", "parameters", "rows"}`` (plus
``summary`` for some) with ``--format json`` (rates are percentages 0-100), a table
with the summary and definition underneath by default, or with ``--format csv`` the
rows as plain CSV on standard output (a header line, then the rows: any CSV reader
takes it) and ``#`` lines holding the metric, definition, summary and parameters on
standard error, so the terminal still states what was computed and how.

With ``--segment-col`` or ``--segments`` a transactions metric, a survey metric or
``mrr`` runs once per customer segment (:mod:`fidelite.analytics.segments`), its rows
led by the segment.

The input options (time zone, date format, delimiter, column names) are declared once
in :mod:`fidelite.cli.inputs`; the checks on each number option are there or beside
the option, so a bad value is a usage error before anything is read.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import typer
from rich.markup import escape
from sqlalchemy.exc import SQLAlchemyError

from fidelite.analytics.answers import AnswerColumns
from fidelite.analytics.engine import Dataset, EngineName, open_dataset
from fidelite.analytics.errors import InputError
from fidelite.analytics.io import FIRST_DAY, LAST_DAY, MAX_DAYS, LoadOptions
from fidelite.analytics.metrics.period import Period
from fidelite.analytics.metrics.result import (
    MAX_MONEY_PLACES,
    MONEY_PLACES,
    MetricResult,
    money_places,
)
from fidelite.analytics.segments import SegmentBy
from fidelite.analytics.subscriptions import SubscriptionColumns
from fidelite.cli.inputs import (
    DATE_FORMAT,
    TIMEZONE,
    answer_segment_options,
    number_range,
    one_of,
    option_error,
    program_database,
    program_transaction_options,
    segmented_transaction_options,
    subscription_options,
    subscription_segment_options,
    survey_options,
    transactions_input,
)
from fidelite.cli.output import (
    OutputFormat,
    console,
    err_console,
    fail,
    print_json,
    print_rows,
    to_jsonable,
)

if TYPE_CHECKING:
    import pyarrow as pa

    from fidelite.program import ProgramDefinition

PERIODS: dict[str, Period] = {
    "day": "day", "week": "week", "month": "month", "quarter": "quarter", "year": "year"
}  # fmt: skip

app = typer.Typer(
    help="Loyalty metrics from a transactions file (CSV or Parquet) or a program database.\n\n"
    "Per segment (--segment-col COLUMN or --segments FILE), a metric is computed once for "
    "each segment of customers, its rows starting with the segment.\n\n"
    "Example: fidelite metrics retention --input tx.csv --period month --format json\n\n"
    "Example: fidelite metrics retention --input tx.csv --segment-col channel",
    no_args_is_help=True,
)

INPUT = typer.Option(
    ...,
    "--input",
    "-i",
    help="Transactions file (.csv or .parquet), or a program database: "
    "sqlite:///fidelite.db, a SQLite file path, postgresql+psycopg://..., optionally "
    "ending in #PROGRAM.",
)
ENGINE = typer.Option(
    "duckdb",
    "--engine",
    callback=one_of("duckdb", "spark"),
    help="duckdb (embedded) or spark (local mode).",
)
FORMAT = typer.Option(
    OutputFormat.table,
    "--format",
    "-f",
    help="table, json or csv (csv: the rows alone on stdout; the metric, definition, "
    "summary and parameters as '#' lines on stderr).",
    is_eager=True,  # parsed first: the other options' checks answer in this format
)
PERIOD = typer.Option(
    "month", "--period", callback=one_of(*PERIODS), help="day, week, month, quarter or year."
)
OPT_PERIOD = typer.Option(
    None,
    "--period",
    callback=one_of(*PERIODS),
    help="day, week, month, quarter or year; whole file if omitted.",
)
LONG_PERIOD = typer.Option(
    "month", "--period", callback=one_of("month", "quarter", "year"), help="month, quarter or year."
)
MONEY_PLACES_OPTION = typer.Option(
    MONEY_PLACES,
    "--money-places",
    callback=number_range(0, MAX_MONEY_PLACES),
    help="Decimals money is shown with: the minor unit of the file's money (2: cents; 0: "
    "JPY, KRW; 3: KWD, BHD). Stated in the output's parameters.",
)
"""``--money-places`` of the metrics that print money: a transactions file does not say
its money, so its minor unit is the user's to give (default 2, cents)."""
# A cohort is the day, week or month of a first purchase: coarser cohorts would hide
# the ages (periods after the first) that a retention matrix is read for.
COHORT_PERIOD = typer.Option(
    "month",
    "--period",
    callback=one_of("day", "week", "month"),
    help="day, week or month of the first purchase (the cohort).",
)


def _run(
    fmt: OutputFormat,
    source: str,
    engine: str,
    options: LoadOptions,
    compute: Callable[[Dataset], MetricResult],
    also: tuple[pa.Table, str] | None = None,
    places: int | None = None,
) -> None:
    """Load, compute and print; any input problem is one clear error, nothing printed.
    ``also``: customers the metric counts besides the transactions' (and their file),
    whose segments are computed too (:func:`fidelite.analytics.segments.by_segment`).
    ``places``: the decimals money is rounded to (``--money-places``), stated in the
    parameters as ``money_places``; ``None`` for a metric that prints no money."""
    try:
        with _progress(fmt, f"Reading {source}"):
            data, named = transactions_input(source, options)
            ds = open_dataset(data, engine=_engine(engine), options=named)
        warn_dates(fmt, ds.loaded.date_warning)
        with money_places(MONEY_PLACES if places is None else places):
            if ds.loaded.segmentation is None:
                with _progress(fmt, "Computing"):
                    result = compute(ds)
            else:
                result = _per_segment(fmt, ds, compute, also)
        if places is not None:
            result.parameters["money_places"] = places
    except InputError as exc:
        fail(str(exc), code="bad_input", fmt=fmt, file=exc.file, row=exc.row, column=exc.column)
    except SQLAlchemyError as exc:
        fail(f"cannot read the program database: {_first_line(exc)}", code="bad_input", fmt=fmt)
    except ValueError as exc:
        fail(str(exc), code="usage", fmt=fmt)
    render(result, fmt)


def _per_segment(
    fmt: OutputFormat,
    ds: Dataset,
    compute: Callable[[Dataset], MetricResult],
    also: tuple[pa.Table, str] | None,
) -> MetricResult:
    """``compute`` once per segment, with the segment being computed shown on stderr."""
    from fidelite.analytics.segments import by_segment

    if fmt is not OutputFormat.table:
        return by_segment(ds, compute, also=also)
    with err_console.status("Computing") as status:
        return by_segment(
            ds,
            compute,
            lambda value, i, n: status.update(f"Computing segment {value} ({i}/{n})"),
            also=also,
        )


def _engine(name: str) -> EngineName:
    return "spark" if name == "spark" else "duckdb"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def warn_dates(fmt: OutputFormat, warning: str | None) -> None:
    """Say on stderr when the dates could be read two ways (JSON has it in parameters)."""
    if warning and fmt is not OutputFormat.json:
        err_console.print(f"[yellow]warning[/] {warning}", highlight=False, markup=True)


def warn_survey_dates(fmt: OutputFormat, source: str, warning: str | None) -> None:
    """:func:`warn_dates` for a survey answers file read beside the transactions, whose
    --date-format reads the transactions only: the file named, and no advice to pass it."""
    from fidelite.report.notices import for_other_file

    if warning:
        warn_dates(fmt, f"dates of the survey answers file {source}: {for_other_file(warning)}")


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
    if fmt is OutputFormat.csv:
        _csv_preamble(result)
    # no rows: the metric's columns, so that a CSV output still has its header line
    columns = None if result.rows else result.columns
    print_rows(result.rows, fmt, title=result.metric, columns=columns)
    if fmt is OutputFormat.table:
        for key, value in result.summary.items():
            if isinstance(value, dict):  # a summary per segment: its figures as JSON
                shown = json.dumps(to_jsonable(value), ensure_ascii=False)
                console.print(f"{key}: {shown}", markup=False, highlight=False)
            else:
                console.print(f"{key}: {value}")
        console.print(f"[dim]{result.definition}[/]", highlight=False)
        console.print(f"[dim]{_parameters_line(result.parameters)}[/]", highlight=False)


def _parameters_line(parameters: dict[str, Any]) -> str:
    """How the table was computed, on one line: the input file, the time zone, the
    engine and every other parameter, as the JSON and CSV outputs state them (the
    numbers of most metrics change with the zone, so a table must say which it used)."""
    shown = [
        f"{key.replace('_', ' ')}: {_plain(value)}"
        for key, value in parameters.items()
        if value is not None
    ]
    return "parameters — " + "; ".join(shown)


def _plain(value: Any) -> str:
    """A parameter value as a person reads it: lists comma-separated, the rest as JSON."""
    value = to_jsonable(value)
    if isinstance(value, list):
        return ", ".join(_plain(item) for item in value) if value else "(none)"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _csv_preamble(result: MetricResult) -> None:
    """The ``#`` lines beside the CSV rows: what was computed, how, and the headline
    figures (``summary``), one line per figure named by its path in the JSON
    (``summary.top_revenue_share``; per segment ``summary.web.top_revenue_share``, as
    without segments). Values are JSON. On standard error: standard output stays a
    plain CSV file that any reader takes as it is."""
    lines = [f"metric: {result.metric}", f"definition: {result.definition}"]
    lines += [
        f"{path}: {json.dumps(to_jsonable(value), ensure_ascii=False)}"
        for key, figure in result.summary.items()
        for path, value in _figures(f"summary.{key}", figure)
    ]
    lines.append(f"parameters: {json.dumps(to_jsonable(result.parameters), ensure_ascii=False)}")
    for line in lines:
        sys.stderr.write("# " + " ".join(line.splitlines()) + "\n")


def _figures(path: str, value: Any) -> Iterator[tuple[str, Any]]:
    """``value`` as (path, value) pairs, a dict's entries each under ``path.key``
    (recursively): a segment's summary is one line per figure, not one JSON object."""
    if not isinstance(value, dict) or not value:
        yield path, value
        return
    for key, item in value.items():
        yield from _figures(f"{path}.{key}", item)


def _period(value: str) -> Period:
    """The period a checked ``--period`` names."""
    return PERIODS[value]


def _days_check(ctx: typer.Context, param: typer.CallbackParam, value: str) -> str:
    if any(not x.strip() for x in value.split(",")):
        option_error(ctx, param, f"an empty item in '{value}': give whole days above 0 "
                     "separated by commas, e.g. 30,60,90")  # fmt: skip
    try:
        days = _days(value)
    except ValueError:
        days = []
    if not days or any(d <= 0 for d in days):
        option_error(ctx, param, f"expected whole days above 0 separated by commas, not '{value}'")
    _refuse_too_long(ctx, param, max(days), value)
    return value


def _refuse_too_long(ctx: typer.Context, param: typer.CallbackParam, days: int, value: str) -> None:
    """A window longer than the supported days could never be reached."""
    if days > MAX_DAYS:
        option_error(ctx, param, f"must be at most {MAX_DAYS} days (from {FIRST_DAY} to "
                     f"{LAST_DAY}, the supported days), got {days} in '{value}'")  # fmt: skip


def _days(value: str) -> list[int]:
    return [int(x) for x in value.split(",")]


@app.command("retention")
@segmented_transaction_options
def retention_cmd(
    input: str = INPUT,
    period: str = PERIOD,
    engine: str = ENGINE,
    fmt: OutputFormat = FORMAT,
    *,
    load: LoadOptions,
) -> None:
    """Customer retention (E-N)/S and churn per period (per segment with --segment-col).

    Example: fidelite metrics retention --input tx.csv --period month --segment-col channel
    """
    from fidelite.analytics.metrics.retention import retention

    p = _period(period)
    _run(fmt, input, engine, load, lambda ds: retention(ds, p))


@app.command("churn")
@segmented_transaction_options
def churn_cmd(
    input: str = INPUT,
    period: str = PERIOD,
    engine: str = ENGINE,
    fmt: OutputFormat = FORMAT,
    *,
    load: LoadOptions,
) -> None:
    """Churn rate (lost / S) per period, with the retention figures beside it.

    Example: fidelite metrics churn --input tx.csv --period quarter
    """
    from fidelite.analytics.metrics.retention import churn

    p = _period(period)
    _run(fmt, input, engine, load, lambda ds: churn(ds, p))


@app.command("new-vs-returning")
@segmented_transaction_options
def new_returning_cmd(
    input: str = INPUT,
    period: str = PERIOD,
    engine: str = ENGINE,
    fmt: OutputFormat = FORMAT,
    *,
    load: LoadOptions,
) -> None:
    """New vs returning customers per period.

    Example: fidelite metrics new-vs-returning --input tx.csv --period week
    """
    from fidelite.analytics.metrics.retention import new_vs_returning

    p = _period(period)
    _run(fmt, input, engine, load, lambda ds: new_vs_returning(ds, p))


@app.command("repeat-rate")
@segmented_transaction_options
def repeat_rate_cmd(
    input: str = INPUT,
    period: str | None = OPT_PERIOD,
    engine: str = ENGINE,
    fmt: OutputFormat = FORMAT,
    *,
    load: LoadOptions,
) -> None:
    """Repeat purchase rate: customers with 2+ orders / customers with 1+.

    Without an order_id column each row is one order (two purchases on one day are two).

    Example: fidelite metrics repeat-rate --input tx.csv --period year --format json
    """
    from fidelite.analytics.metrics.repeat import repeat_rate

    p = _period(period) if period else None
    _run(fmt, input, engine, load, lambda ds: repeat_rate(ds, p))


@app.command("repurchase")
@segmented_transaction_options
def repurchase_cmd(
    input: str = INPUT,
    days: str = typer.Option(
        "30,60,90,180,360", "--days", callback=_days_check, help="Comma-separated windows."
    ),
    per_product: bool = typer.Option(False, "--per-product", help="Same product again."),
    engine: str = ENGINE,
    fmt: OutputFormat = FORMAT,
    *,
    load: LoadOptions,
) -> None:
    """Repurchase rate within D days by monthly first-purchase cohort.

    Example: fidelite metrics repurchase --input tx.csv --days 30,60,90 --format json
    """
    from fidelite.analytics.metrics.repurchase import repurchase

    windows = _days(days)
    _run(fmt, input, engine, load, lambda ds: repurchase(ds, windows, per_product=per_product))


def _brackets(value: str) -> list[tuple[int, int]]:
    """Day brackets ``A-B,C-D``; ``None`` when they do not read so."""
    try:
        spans = [tuple(int(x) for x in part.split("-")) for part in value.split(",")]
    except ValueError:
        return []
    if any(len(s) != 2 or s[0] > s[1] for s in spans):
        return []
    return [(s[0], s[1]) for s in spans]


def _brackets_check(ctx: typer.Context, param: typer.CallbackParam, value: str) -> str:
    if any(not x.strip() for x in value.split(",")):
        option_error(ctx, param, f"an empty item in '{value}': brackets look like 1-7,8-30,31-90")
    spans = _brackets(value)
    if not spans:
        option_error(ctx, param, f"brackets look like 1-7,8-30,31-90, not '{value}'")
    _refuse_too_long(ctx, param, max(hi for _, hi in spans), value)
    if any(lo < 1 for lo, _ in spans):
        option_error(
            ctx,
            param,
            f"brackets count days after the first purchase, from day 1 (day 0 is the first "
            f"purchase itself, so every customer is in it), not '{value}'",
        )
    twice = [f"{lo}-{hi}" for lo, hi in sorted({s for s in spans if spans.count(s) > 1})]
    if twice:
        named = f"bracket {twice[0]} is" if len(twice) == 1 else f"brackets {', '.join(twice)} are"
        option_error(ctx, param, f"{named} given twice in '{value}'")
    return value


@app.command("cohorts")
@segmented_transaction_options
def cohorts_cmd(
    input: str = INPUT,
    period: str = COHORT_PERIOD,
    kind: str = typer.Option(
        "n-day",
        "--kind",
        callback=one_of("n-day", "unbounded", "bracket"),
        help="n-day, unbounded or bracket.",
    ),
    brackets: str = typer.Option(
        "1-7,8-30,31-90",
        "--brackets",
        callback=_brackets_check,
        help="Day brackets A-B,... counted from the first purchase day; day 1 or later.",
    ),
    engine: str = ENGINE,
    fmt: OutputFormat = FORMAT,
    *,
    load: LoadOptions,
) -> None:
    """Cohort retention matrix (N-period, unbounded or bracket retention).

    Example: fidelite metrics cohorts --input tx.csv --period week --kind unbounded
    """
    from fidelite.analytics.metrics.cohorts import cohorts

    spans = _brackets(brackets)
    p = _period(period)
    _run(fmt, input, engine, load, lambda ds: cohorts(ds, p, kind, spans))  # type: ignore[arg-type]


@app.command("rfm")
@segmented_transaction_options
def rfm_cmd(
    input: str = INPUT,
    quantiles: int = typer.Option(
        5, "--quantiles", callback=number_range(2), help="Score levels (5 = quintiles)."
    ),
    places: int = MONEY_PLACES_OPTION,
    engine: str = ENGINE,
    fmt: OutputFormat = FORMAT,
    *,
    load: LoadOptions,
) -> None:
    """RFM values, scores and segment, one row per customer.

    Example: fidelite metrics rfm --input tx.parquet --format csv
    """
    from fidelite.analytics.metrics.rfm import rfm

    _run(fmt, input, engine, load, lambda ds: rfm(ds, quantiles), places=places)


@app.command("loyalty-kinds")
@survey_options
@segmented_transaction_options
def loyalty_kinds_cmd(
    input: str = INPUT,
    surveys: Path | None = typer.Option(
        None, "--surveys", "-s", help="Survey answers (nps/recommend, csat, program questions)."
    ),
    min_orders: int = typer.Option(
        3, "--min-orders", callback=number_range(1), help="Orders that make a repeat buyer."
    ),
    active_days: int = typer.Option(
        90,
        "--active-days",
        callback=number_range(0),
        help="Most days since the last order for a repeat buyer.",
    ),
    price_share: float = typer.Option(
        50.0,
        "--price-share",
        callback=number_range(0, 100),
        help="% of orders with a coupon that marks low-price loyalty.",
    ),
    engine: str = ENGINE,
    fmt: OutputFormat = FORMAT,
    *,
    load: LoadOptions,
    survey_columns: AnswerColumns,
) -> None:
    """Kinds of loyal customers (truly, low-price, program, convenience loyal; satisfied).

    One row per customer with the facts that decided its kind; counts per kind. The
    survey file's dates are detected (--date-format is for the transactions).

    Example: fidelite metrics loyalty-kinds -i tx.csv --surveys answers.csv --format json
    """
    from fidelite.analytics.metrics.loyalty import Thresholds, loyalty_kinds

    rules = Thresholds(min_orders, active_days, price_share)

    def compute(ds: Dataset) -> MetricResult:
        from fidelite.analytics.answers import load_answers
        from fidelite.analytics.metrics.surveys import Answers

        said = None
        if surveys is not None:
            answers = load_answers(surveys, columns=survey_columns, timezone=load.timezone)
            warn_survey_dates(fmt, answers.source, answers.date_warning)
            said = Answers(answers, ds.engine)
        return loyalty_kinds(ds, said, rules)

    _run(fmt, input, engine, load, compute)


@app.command("pareto")
@segmented_transaction_options
def pareto_cmd(
    input: str = INPUT,
    top: float = typer.Option(
        20.0,
        "--top",
        callback=number_range(0, 100, low_open=True),
        help="Top percent of customers (above 0, at most 100).",
    ),
    limit: int = typer.Option(
        100, "--limit", callback=number_range(0), help="Top customers listed (0 = all)."
    ),
    places: int = MONEY_PLACES_OPTION,
    engine: str = ENGINE,
    fmt: OutputFormat = FORMAT,
    *,
    load: LoadOptions,
) -> None:
    """Revenue share of the top customers, and who they are.

    Example: fidelite metrics pareto --input tx.csv --top 20 --format json
    """
    from fidelite.analytics.metrics.pareto import pareto

    _run(fmt, input, engine, load, lambda ds: pareto(ds, top, limit or None), places=places)


@app.command("clv")
@segmented_transaction_options
def clv_cmd(
    input: str = INPUT,
    lifespan: float | None = typer.Option(
        None,
        "--lifespan-years",
        callback=number_range(0, low_open=True),
        help="Known lifespan in years (above 0).",
    ),
    places: int = MONEY_PLACES_OPTION,
    engine: str = ENGINE,
    fmt: OutputFormat = FORMAT,
    *,
    load: LoadOptions,
) -> None:
    """Simple CLV: average order value x purchases per year x lifespan in years.

    Example: fidelite metrics clv --input tx.csv --lifespan-years 3
    """
    from fidelite.analytics.metrics.clv import simple_clv

    _run(fmt, input, engine, load, lambda ds: simple_clv(ds, lifespan), places=places)


@app.command("engagement")
def engagement_cmd(
    input: str = typer.Option(
        ..., "--input", "-i", help="Program database: URL or SQLite file, optionally #PROGRAM."
    ),
    period: str = PERIOD,
    engine: str = typer.Option(
        "duckdb",
        "--engine",
        help="duckdb only: engagement reads the program database's events directly, not "
        "through the engine layer, so spark is refused.",
    ),
    fmt: OutputFormat = FORMAT,
    tz: str = TIMEZONE,
) -> None:
    """Member engagement per period: interactions of every kind, multi-kind members.

    Example: fidelite metrics engagement --input sqlite:///fidelite.db#cafe --period week
    """
    from fidelite.analytics.engagement import engagement

    p = _period(period)
    if engine != "duckdb":
        fail(
            "engagement runs on DuckDB only: it reads the program database's events "
            "directly, not through the Spark engine; leave out --engine spark",
            code="usage",
            fmt=fmt,
        )
    try:
        with _progress(fmt, f"Reading {input}"):
            result = engagement(*program_database(input), p, tz)
    except InputError as exc:
        fail(str(exc), code="bad_input", fmt=fmt, file=exc.file, row=exc.row, column=exc.column)
    except SQLAlchemyError as exc:
        fail(f"cannot read the program database: {_first_line(exc)}", code="bad_input", fmt=fmt)
    render(result, fmt)


SURVEYS = typer.Option(
    ...,
    "--surveys",
    "-s",
    help="Survey answers file (.csv or .parquet): customer_id, timestamp, question, score.",
)


def _survey_metric(
    name: str,
    surveys: Path,
    period: str | None,
    engine: str,
    fmt: OutputFormat,
    tz: str,
    date_format: str | None,
    columns: AnswerColumns,
    segment_by: SegmentBy,
) -> None:
    """Load answers, compute survey metric ``name`` (per segment if asked) and print it."""
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
    try:
        with _progress(fmt, f"Reading {surveys}"):
            loaded = load_answers(surveys, columns=columns, timezone=tz, date_format=date_format,
                                  segment_column=segment_by.column)  # fmt: skip
        warn_dates(fmt, loaded.date_warning)

        whole = loaded if segment_by.given else None  # every segment: the file's periods

        def one(table: str) -> MetricResult:
            answers = survey_metrics.Answers(replace(loaded, table=table), _engine(engine), whole)
            return compute(answers, p)

        result = _table_segments(fmt, loaded.connection, loaded.table, loaded.source,
                                 segment_by, ("instant", "answer"), one)  # fmt: skip
    except InputError as exc:
        fail(str(exc), code="bad_input", fmt=fmt, file=exc.file, row=exc.row, column=exc.column)
    render(result, fmt)


def _table_segments(
    fmt: OutputFormat,
    con: Any,
    table: str,
    name: str,
    segment_by: SegmentBy,
    first: tuple[str, str],
    compute: Callable[[str], MetricResult],
) -> MetricResult:
    """``compute(table)``, or once per segment of ``table``'s customers when
    ``segment_by`` is given (:func:`fidelite.analytics.segments.by_table_segment`),
    showing the segment being computed."""
    from fidelite.analytics.segments import by_table_segment, segment_table

    if not segment_by.given:
        with _progress(fmt, "Computing"):
            return compute(table)
    with _progress(fmt, "Computing segments"):
        segmentation = segment_table(con, table, name, segment_by, first=first)
    if fmt is not OutputFormat.table:
        return by_table_segment(con, table, segmentation, compute)
    with err_console.status("Computing") as status:
        return by_table_segment(
            con,
            table,
            segmentation,
            compute,
            lambda value, i, n: status.update(f"Computing segment {value} ({i}/{n})"),
        )


@app.command("nps")
@answer_segment_options
@survey_options
def nps_cmd(
    surveys: Path = SURVEYS,
    period: str | None = OPT_PERIOD,
    engine: str = ENGINE,
    fmt: OutputFormat = FORMAT,
    tz: str = TIMEZONE,
    date_format: str | None = DATE_FORMAT,
    *,
    survey_columns: AnswerColumns,
    segment_by: SegmentBy,
) -> None:
    """Net Promoter Score: % promoters (9-10) - % detractors (0-6).

    Example: fidelite metrics nps --surveys answers.csv --period month --format json

    Per RFM segment: fidelite metrics nps --surveys answers.csv --segments rfm.csv
    """
    _survey_metric("nps", surveys, period, engine, fmt, tz, date_format, survey_columns, segment_by)


@app.command("csat")
@answer_segment_options
@survey_options
def csat_cmd(
    surveys: Path = SURVEYS,
    period: str | None = OPT_PERIOD,
    engine: str = ENGINE,
    fmt: OutputFormat = FORMAT,
    tz: str = TIMEZONE,
    date_format: str | None = DATE_FORMAT,
    *,
    survey_columns: AnswerColumns,
    segment_by: SegmentBy,
) -> None:
    """Customer satisfaction: % of csat answers that are 4 or 5, and the mean.

    Example: fidelite metrics csat --surveys answers.csv --period quarter
    """
    _survey_metric(
        "csat", surveys, period, engine, fmt, tz, date_format, survey_columns, segment_by
    )


@app.command("ces")
@answer_segment_options
@survey_options
def ces_cmd(
    surveys: Path = SURVEYS,
    period: str | None = OPT_PERIOD,
    engine: str = ENGINE,
    fmt: OutputFormat = FORMAT,
    tz: str = TIMEZONE,
    date_format: str | None = DATE_FORMAT,
    *,
    survey_columns: AnswerColumns,
    segment_by: SegmentBy,
) -> None:
    """Customer effort score: the mean 1-7 answer (7 = very easy) and % easy.

    Example: fidelite metrics ces --surveys answers.csv --format json
    """
    _survey_metric("ces", surveys, period, engine, fmt, tz, date_format, survey_columns, segment_by)


@app.command("loyalty-index")
@answer_segment_options
@survey_options
def loyalty_index_cmd(
    surveys: Path = SURVEYS,
    period: str | None = OPT_PERIOD,
    engine: str = ENGINE,
    fmt: OutputFormat = FORMAT,
    tz: str = TIMEZONE,
    date_format: str | None = DATE_FORMAT,
    *,
    survey_columns: AnswerColumns,
    segment_by: SegmentBy,
) -> None:
    """Customer loyalty index: mean NPS-style score of recommend, repurchase, upsell.

    Example: fidelite metrics loyalty-index --surveys answers.csv --period year
    """
    _survey_metric(
        "loyalty-index", surveys, period, engine, fmt, tz, date_format, survey_columns, segment_by
    )


@app.command("share-of-wallet")
@answer_segment_options
@survey_options
def share_of_wallet_cmd(
    surveys: Path = SURVEYS,
    period: str | None = OPT_PERIOD,
    engine: str = ENGINE,
    fmt: OutputFormat = FORMAT,
    tz: str = TIMEZONE,
    date_format: str | None = DATE_FORMAT,
    *,
    survey_columns: AnswerColumns,
    segment_by: SegmentBy,
) -> None:
    """Share of wallet: the mean stated share (%) of category spending that comes to us.

    Example: fidelite metrics share-of-wallet --surveys answers.csv --format json
    """
    _survey_metric(
        "share-of-wallet", surveys, period, engine, fmt, tz, date_format, survey_columns, segment_by
    )


@app.command("mrr")
@subscription_segment_options
@subscription_options
def mrr_cmd(
    subscriptions: Path = typer.Option(
        ...,
        "--subscriptions",
        help="Subscriptions file (.csv or .parquet): customer_id, mrr, start, end, plan.",
    ),
    period: str = LONG_PERIOD,
    places: int = MONEY_PLACES_OPTION,
    engine: str = ENGINE,
    fmt: OutputFormat = FORMAT,
    date_format: str | None = DATE_FORMAT,
    tz: str = TIMEZONE,
    *,
    subscription_columns: SubscriptionColumns,
    segment_by: SegmentBy,
) -> None:
    """Recurring revenue: MRR movements, MRR churn, net revenue retention, negative churn.

    Example: fidelite metrics mrr --subscriptions subs.csv --period month --format json

    Per segment: fidelite metrics mrr --subscriptions subs.csv --segment-col region
    """
    from fidelite.analytics.metrics.mrr import Subscriptions, mrr, span
    from fidelite.analytics.subscriptions import load_subscriptions

    p = _period(period)
    try:
        with _progress(fmt, f"Reading {subscriptions}"):
            loaded = load_subscriptions(
                subscriptions,
                columns=subscription_columns,
                date_format=date_format,
                timezone=tz,
                segment_column=segment_by.column,
            )
        warn_dates(fmt, loaded.date_warning)

        # every segment: the whole file's periods, so the segments add up to the file
        whole = span(Subscriptions(loaded)) if segment_by.given else None

        def one(table: str) -> MetricResult:
            return mrr(Subscriptions(replace(loaded, table=table), _engine(engine), whole), p)

        with money_places(places):
            result = _table_segments(fmt, loaded.connection, loaded.table, loaded.source,
                                     segment_by, ("start_day", "subscription"), one)  # fmt: skip
        result.parameters["money_places"] = places
    except InputError as exc:
        fail(str(exc), code="bad_input", fmt=fmt, file=exc.file, row=exc.row, column=exc.column)
    except ValueError as exc:
        fail(str(exc), code="usage", fmt=fmt)
    render(result, fmt)


BY = typer.Option(
    "product", "--by", callback=one_of("product", "category"), help="product or category."
)


def _level(value: str) -> Literal["product", "category"]:
    return "category" if value == "category" else "product"


@app.command("multi-product")
@segmented_transaction_options
def multi_product_cmd(
    input: str = INPUT,
    by: str = BY,
    engine: str = ENGINE,
    fmt: OutputFormat = FORMAT,
    *,
    load: LoadOptions,
) -> None:
    """Multi-product buyers: repeat customers who bought more than one product (category).

    Example: fidelite metrics multi-product --input tx.csv --by category --format json
    """
    from fidelite.analytics.metrics.products import multi_product

    level = _level(by)
    _run(fmt, input, engine, load, lambda ds: multi_product(ds, level))


@app.command("basket")
@segmented_transaction_options
def basket_cmd(
    input: str = INPUT,
    by: str = BY,
    min_support: float = typer.Option(
        1.0, "--min-support", callback=number_range(0, 100), help="Minimum support, % (0-100)."
    ),
    top: int = typer.Option(50, "--top", callback=number_range(1), help="Pairs listed."),
    engine: str = ENGINE,
    fmt: OutputFormat = FORMAT,
    *,
    load: LoadOptions,
) -> None:
    """Basket affinity: product pairs bought together (support, confidence, lift).

    Example: fidelite metrics basket --input tx.csv --min-support 0.5 --top 20 --format json
    """
    from fidelite.analytics.metrics.products import basket_affinity

    level = _level(by)
    _run(
        fmt,
        input,
        engine,
        load,
        lambda ds: basket_affinity(ds, by=level, min_support=min_support, top=top),
    )


@app.command("program-kpis")
@program_transaction_options
def program_kpis_cmd(
    ctx: typer.Context,
    db: str = typer.Option(
        ..., "--db", help="Program database: URL or SQLite file, optionally #PROGRAM."
    ),
    period: str = LONG_PERIOD,
    currency: str | None = typer.Option(
        None,
        "--currency",
        help="Point currency (default: the first of the database's currencies that "
        "--program-file declares, else the database's first; named in the output's "
        "parameters).",
    ),
    point_value: str | None = typer.Option(
        None,
        "--point-value",
        help="Money value of one point, for the liability (e.g. 0.01; default: the "
        "currency's value in --program-file).",
    ),
    program_file: Path | None = typer.Option(
        None,
        "--program-file",
        "-P",
        help="Program definition (YAML): its currency's value prices the points (liability, "
        "cost of rewards) and its time zone is the default --timezone.",
    ),
    input: str | None = typer.Option(
        None,
        "--input",
        "-i",
        help="All customers' transactions: adds members vs non-members, incremental "
        "revenue, cost of rewards and ROI.",
    ),
    margin: float = typer.Option(
        100.0,
        "--margin",
        callback=number_range(0, 100, low_open=True),
        help="Gross margin % applied to incremental revenue in the ROI (above 0, at most 100).",
    ),
    places: int | None = typer.Option(
        None,
        "--money-places",
        callback=number_range(0, MAX_MONEY_PLACES),
        help="Decimals money is shown with (default: the minor unit of the currency's money "
        "in --program-file: KWD 3, JPY 0; else 2). Stated in the output's parameters.",
    ),
    engine: str = typer.Option(
        "duckdb",
        "--engine",
        help="duckdb or spark for the --input transactions (members vs non-members); the "
        "database KPIs are always computed in DuckDB, so spark needs --input.",
    ),
    fmt: OutputFormat = FORMAT,
    *,
    load: LoadOptions,
) -> None:
    """Program KPIs: members, earn and burn, breakage, liability, redemptions, spend, ROI.

    Example: fidelite metrics program-kpis --db sqlite:///shop.db#cafe -P cafe.yaml
    --input all-customers.csv --margin 30
    """
    from fidelite.analytics.kpis import program_kpis

    p = _period(period)
    value = _point_value(point_value, fmt)
    program = _program_definition(program_file, fmt)
    timezone: str | None = load.timezone
    if not _given(ctx, "timezone"):  # the program's zone, else UTC: stated in the parameters
        timezone = None
        if program is not None:
            load = replace(load, timezone=program.time_zone)
    if engine == "spark" and input is None:
        fail(
            "--engine spark applies to the --input transactions; the database KPIs are "
            "computed in DuckDB only: give --input or leave out --engine spark",
            code="usage",
            fmt=fmt,
        )
    try:
        with _progress(fmt, f"Reading {db}"):
            url, program_id = program_database(db)
            ds = None
            if input:
                data, named = transactions_input(input, load)
                ds = open_dataset(data, engine=_engine(engine), options=named)
                warn_dates(fmt, ds.loaded.date_warning)
            result = program_kpis(
                url,
                program_id,
                period=p,
                timezone=timezone,
                currency=currency,
                value=value,
                transactions=ds,
                margin=margin / 100,
                program=program,
                program_file=str(program_file) if program_file else None,
                places=places,
            )
    except InputError as exc:
        fail(str(exc), code="bad_input", fmt=fmt, file=exc.file, row=exc.row, column=exc.column)
    except SQLAlchemyError as exc:
        fail(f"cannot read the program database: {_first_line(exc)}", code="bad_input", fmt=fmt)
    except ValueError as exc:
        fail(str(exc), code="usage", fmt=fmt)
    warning = result.parameters.get("money_warning")
    if warning and fmt is not OutputFormat.json:  # JSON has it in parameters
        warn_dates(fmt, escape(str(warning)))
    render(result, fmt)


def _program_definition(path: Path | None, fmt: OutputFormat) -> ProgramDefinition | None:
    """``--program-file`` loaded and checked, or a failure naming the file."""
    from fidelite.program import ProgramError, load_program

    if path is None:
        return None
    if not path.is_file():
        fail(f"--program-file: no program file {str(path)!r}", code="usage", fmt=fmt)
    try:
        return load_program(path)
    except ProgramError as exc:
        fail(f"--program-file: {exc}", code="bad_input", fmt=fmt, file=str(path))


def _given(ctx: typer.Context, name: str) -> bool:
    """Whether the option ``name`` was given on the command line, not left at its
    default."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name != "DEFAULT"


def _point_value(text: str | None, fmt: OutputFormat) -> Decimal | None:
    """``--point-value`` as a Decimal (money is never a float): finite and not negative,
    nor negative zero (``-0`` would be printed as such and price the liability -0.0)."""
    if text is None:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite() or value.is_signed():
        fail(f"--point-value: expected a money amount such as 0.01, got {text!r}", code="usage",
             fmt=fmt)  # fmt: skip
    return value


@app.command("benchmark")
def benchmark_cmd(
    column: str = typer.Option(..., "--column", help="The column to compare, e.g. retention_rate."),
    reference: float | None = typer.Option(
        None, "--reference", help="The reference value (or --previous)."
    ),
    previous: bool = typer.Option(
        False,
        "--previous",
        help="Compare each period with the one before it (rows with a period column; "
        "within each segment), instead of with --reference.",
    ),
    label: str = typer.Option("reference", "--label", help="What the reference is."),
    result: Path | None = typer.Option(
        None, "--result", help="A metric's JSON output (default: read it from stdin)."
    ),
    fmt: OutputFormat = FORMAT,
) -> None:
    """Compare any metric's JSON output with a reference value (norm, target, competitor)
    or with the previous period.

    Example: fidelite metrics retention -i tx.csv -f json | fidelite metrics benchmark
    --column retention_rate --reference 85 --label "industry norm" -f json

    Example: fidelite metrics repeat-rate -i tx.csv --period month -f json | fidelite
    metrics benchmark --column repeat_purchase_rate --previous
    """
    from fidelite.analytics.benchmark import compare, compare_previous

    name = str(result) if result else "<stdin>"
    if (reference is None) == (not previous):
        fail("give --reference VALUE or --previous (one of them)", code="usage", fmt=fmt)
    if previous and label != "reference":
        fail("--label names a --reference value; with --previous the reference is the "
             "previous period", code="usage", fmt=fmt)  # fmt: skip
    if reference is not None and not math.isfinite(reference):
        fail(f"--reference: expected a number, got {reference}", code="usage", fmt=fmt)
    try:
        text = result.read_text(encoding="utf-8") if result else sys.stdin.read()
        data = json.loads(text)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        fail(f"{name}: cannot read a metric result: {exc}", code="bad_input", fmt=fmt)
    if not isinstance(data, dict):
        fail(
            f"{name}: not a metric result: expected a JSON object with metric and rows, as "
            "`fidelite metrics NAME --format json` prints",
            code="bad_input",
            fmt=fmt,
        )
    try:
        if reference is None:
            compared = compare_previous(data, column, source=name)
        else:
            compared = compare(data, column, reference, label, source=name)
    except InputError as exc:
        fail(str(exc), code="bad_input", fmt=fmt, file=exc.file, row=exc.row,
             column=exc.column)  # fmt: skip
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
@segmented_transaction_options
def coupons_cmd(
    input: str = INPUT,
    targeting: Path = typer.Option(
        ..., "--targeting", help="CSV: customer_id, campaign, group (treatment or holdout)."
    ),
    start: str = typer.Option(..., "--from", help="First day of the campaign (YYYY-MM-DD)."),
    end: str = typer.Option(..., "--to", help="Last day of the campaign (YYYY-MM-DD)."),
    places: int = MONEY_PLACES_OPTION,
    engine: str = ENGINE,
    fmt: OutputFormat = FORMAT,
    *,
    load: LoadOptions,
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
    if first > last:
        fail(f"--from {start} is after --to {end}", code="usage", fmt=fmt)
    try:
        groups = load_targeting(targeting)
    except InputError as exc:
        fail(str(exc), code="bad_input", fmt=fmt, file=exc.file, row=exc.row, column=exc.column)
    _run(
        fmt,
        input,
        engine,
        load,
        lambda ds: coupon_effectiveness(ds, groups, first, last),
        also=(groups, str(targeting)),  # a targeted customer's segment may have no buyer
        places=places,
    )
