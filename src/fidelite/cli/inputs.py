"""The input options of the analytics commands (``fidelite metrics ...``, ``fidelite report``).

Declared once so every command that reads a transactions, survey or subscriptions file
offers the same options, with the same names, checks and help: a column-mapping option
added here reaches every command. The decorators :func:`transaction_options`,
:func:`survey_options` and :func:`subscription_options` add the options to a command's
signature and hand the command one value (a ``LoadOptions`` or a column mapping)
instead of a dozen parameters.

Values are checked here, where the user typed them (an unknown time zone, a delimiter
of two characters, a negative count), so a mistake is one clear usage error naming the
option, never a traceback from deep in a query.

A program database (``--input sqlite:///shop.db#cafe``, a SQLite file path, a
PostgreSQL URL) is checked before it is read: it must exist and be a fidelite database
at the current schema. Opening a missing SQLite file would create an empty one.
"""

from __future__ import annotations

import functools
import inspect
import math
import sqlite3
from collections.abc import Callable
from contextlib import closing
from dataclasses import replace
from pathlib import Path
from typing import Any, NoReturn, TypeAlias, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from fidelite.analytics.answers import AnswerColumns
from fidelite.analytics.errors import InputError
from fidelite.analytics.io import ColumnMapping, LoadOptions, Source
from fidelite.analytics.programdb import (
    SQLITE_MAGIC,
    database_name,
    is_program_source,
    program_source,
    transactions_from_program,
)
from fidelite.analytics.segments import SegmentBy
from fidelite.analytics.subscriptions import SubscriptionColumns
from fidelite.cli.output import OutputFormat, fail
from fidelite.store import Database
from fidelite.store.migrate import NewerSchema, check_known, current_revision, head_revision

Command = TypeVar("Command", bound=Callable[..., Any])
DATABASE_SUFFIXES = (".db", ".sqlite", ".sqlite3")


# --- value checks (typer callbacks) ---------------------------------------------------
#
# Each check runs while the command line is parsed. ``--format`` is eager (parsed
# first), so a check knows whether the user asked for JSON: then the error is the
# ``{"error": {...}}`` object scripts read, as for every other error; otherwise it is
# click's usage message. Either way the exit code is 2 and nothing is read.

Check: TypeAlias = Callable[[typer.Context, typer.CallbackParam, Any], Any]


def option_error(ctx: typer.Context, param: typer.CallbackParam, message: str) -> NoReturn:
    """Refuse the value of option ``param`` with ``message``, in the requested format."""
    if str(ctx.params.get("fmt")) == OutputFormat.json.value:
        flag = max(param.opts, key=len) if param.opts else str(param.name)
        fail(f"{flag}: {message}", code="usage", fmt=OutputFormat.json)
    raise typer.BadParameter(message)


def time_zone(ctx: typer.Context, param: typer.CallbackParam, value: str) -> str:
    """An IANA time zone name."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        option_error(ctx, param, f"unknown time zone '{value}'")
    return value


def delimiter(ctx: typer.Context, param: typer.CallbackParam, value: str | None) -> str | None:
    """One character (``\\t`` or ``tab`` for a tab)."""
    if value is None:
        return None
    if value in ("\\t", "tab", "TAB"):
        return "\t"
    if len(value) != 1 or value in ('"', "\n", "\r"):
        option_error(
            ctx, param, f"{value!r} is not a delimiter: give one character such as , ; | or tab"
        )
    return value


def one_of(*allowed: str) -> Check:
    """A check that a word (``None``: not given, accepted) is one of ``allowed``."""
    listed = f"{', '.join(allowed[:-1])} or {allowed[-1]}" if len(allowed) > 1 else allowed[0]

    def check(ctx: typer.Context, param: typer.CallbackParam, value: str | None) -> Any:
        if value is not None and value not in allowed:
            option_error(ctx, param, f"must be {listed}, not '{value}'")
        return value

    return check


def number_range(low: float, high: float | None = None, *, low_open: bool = False) -> Check:
    """A check that a number (``None``: not given, accepted) is finite, at least ``low``
    (above it with ``low_open``) and at most ``high``."""
    if high is not None:
        wanted = f"{'above' if low_open else 'at least'} {low:g} and at most {high:g}"
    else:
        wanted = f"above {low:g}" if low_open else f"{low:g} or more"

    def check(ctx: typer.Context, param: typer.CallbackParam, value: float | None) -> Any:
        if value is None:
            return None
        fits = math.isfinite(value) and (value > low if low_open else value >= low)
        if not fits or (high is not None and value > high):
            option_error(ctx, param, f"must be {wanted}, got {value:g}")
        return value

    return check


# --- options ----------------------------------------------------------------------------

TIMEZONE = typer.Option(
    "UTC",
    "--timezone",
    callback=time_zone,
    help="Business time zone (IANA), decides the local day.",
)
PROGRAM_TIMEZONE = typer.Option(
    "UTC",
    "--timezone",
    callback=time_zone,
    show_default=False,
    help="Business time zone (IANA), decides the local day (default: the --program-file's "
    "time zone, else UTC).",
)
DATE_FORMAT = typer.Option(
    None,
    "--date-format",
    help="strptime format of the dates, e.g. %d/%m/%Y (default: ISO 8601 or a common "
    "day/month/year layout, detected).",
)
DELIMITER = typer.Option(
    None,
    "--delimiter",
    callback=delimiter,
    help="CSV delimiter, one character or tab (default: the most frequent of , ; tab | "
    "in the header line).",
)


def _one_segmentation(ctx: typer.Context, param: typer.CallbackParam, value: Any) -> Any:
    """``--segment-col`` and ``--segments`` exclude each other: whichever click reads
    second sees the first in ``ctx.params``."""
    if value is None:
        return None
    source = ctx.meta.get(_SEGMENTED, "transactions file")
    if isinstance(value, str) and not value.strip():
        option_error(ctx, param, f"name a column of the {source}")
    other = "segments" if param.name == "segment_col" else "segment_col"
    if ctx.params.get(other) is not None:
        option_error(
            ctx,
            param,
            f"give either --segment-col (a column of the {source}) or --segments "
            "(a file of customer_id,segment), not both",
        )
    return value


SEGMENT_COL = typer.Option(
    None,
    "--segment-col",
    callback=_one_segmentation,
    help="Compute the metric per segment: a customer's segment is this column's value on "
    "their first purchase (refunds do not count; customers without one: (none)). "
    "E.g. --segment-col channel.",
)
SEGMENTS = typer.Option(
    None,
    "--segments",
    callback=_one_segmentation,
    help="Compute the metric per segment, from a CSV or Parquet file of customer_id,segment "
    "(e.g. the output of `fidelite metrics rfm --format csv`); unlisted customers: (none).",
)


_SEGMENTED = "fidelite.segmented_file"  # ctx.meta: which file --segment-col names


def _segment_col_of(source: str, first: str, example: str) -> Any:
    """``--segment-col`` for a command reading a ``source`` (survey answers,
    subscriptions) file: a customer's segment is the value on their ``first`` row."""

    def check(ctx: typer.Context, param: typer.CallbackParam, value: Any) -> Any:
        ctx.meta[_SEGMENTED] = source
        return _one_segmentation(ctx, param, value)

    return typer.Option(
        None,
        "--segment-col",
        callback=check,
        help=f"Compute the metric per segment: a customer's segment is this column's value "
        f"on their {first} (customers without one: (none)). E.g. --segment-col {example}.",
    )


def _column(flag: str, default: str, what: str) -> Any:
    optional = what.endswith(" (optional)")
    name = what.removesuffix(" (optional)")
    return typer.Option(default, flag, help=f"{name} column{' (optional)' if optional else ''}.")


# (parameter, ColumnMapping field, option)
_TRANSACTION_COLUMNS = (
    ("customer_col", "customer_id", _column("--customer-col", "customer_id", "Customer")),
    ("time_col", "timestamp", _column("--time-col", "timestamp", "Timestamp")),
    ("amount_col", "amount", _column("--amount-col", "amount", "Amount")),
    ("order_col", "order_id", _column("--order-col", "order_id", "Order id (optional)")),
    ("product_col", "product_id", _column("--product-col", "product_id", "Product (optional)")),
    ("category_col", "category", _column("--category-col", "category", "Category (optional)")),
    ("quantity_col", "quantity", _column("--quantity-col", "quantity", "Quantity (optional)")),
    ("channel_col", "channel", _column("--channel-col", "channel", "Channel (optional)")),
    ("coupon_col", "coupon_code", _column("--coupon-col", "coupon_code", "Coupon code (optional)")),
    ("refund_col", "refund", _column("--refund-col", "refund", "Refund flag (optional)")),
)
_SURVEY_COLUMNS = (
    ("survey_customer_col", "customer_id",
     _column("--survey-customer-col", "customer_id", "Survey answers: customer")),
    ("survey_time_col", "timestamp",
     _column("--survey-time-col", "timestamp", "Survey answers: timestamp")),
    ("question_col", "question", _column("--question-col", "question", "Survey answers: question")),
    ("score_col", "score", _column("--score-col", "score", "Survey answers: score")),
)  # fmt: skip
_SUBSCRIPTION_COLUMNS = (
    ("subscription_customer_col", "customer_id",
     _column("--subscription-customer-col", "customer_id", "Subscriptions: customer")),
    ("mrr_col", "mrr", _column("--mrr-col", "mrr", "Subscriptions: monthly recurring revenue")),
    ("start_col", "start", _column("--start-col", "start", "Subscriptions: start date")),
    ("end_col", "end", _column("--end-col", "end", "Subscriptions: end date (optional)")),
    ("plan_col", "plan", _column("--plan-col", "plan", "Subscriptions: plan (optional)")),
)  # fmt: skip


def _inject(
    target: str, extra: list[tuple[str, Any, Any]], build: Callable[[dict[str, Any]], Any]
) -> Callable[[Command], Command]:
    """A decorator adding keyword options ``extra`` (name, type, typer option) to a
    command and passing ``build(their values)`` as its parameter ``target``.

    Typer reads a command's options from its signature, so the wrapper's signature is
    the command's own without ``target``, followed by the added options.
    """

    def decorate(command: Command) -> Command:
        signature = inspect.signature(command)
        kept = [p for name, p in signature.parameters.items() if name != target]
        added = [
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=opt, annotation=kind)
            for name, kind, opt in extra
        ]

        @functools.wraps(command)
        def wrapper(**kwargs: Any) -> Any:
            values = {name: kwargs.pop(name) for name, _, _ in extra}
            return command(**kwargs, **{target: build(values)})

        wrapper.__signature__ = signature.replace(parameters=kept + added)  # type: ignore[attr-defined]
        annotations = {k: v for k, v in command.__annotations__.items() if k != target}
        wrapper.__annotations__ = {**annotations, **{name: kind for name, kind, _ in extra}}
        return wrapper  # type: ignore[return-value]

    return decorate


def _load_options(values: dict[str, Any]) -> LoadOptions:
    columns = ColumnMapping(**{field: values[name] for name, field, _ in _TRANSACTION_COLUMNS})
    return LoadOptions(
        columns=columns,
        timezone=values["timezone"],
        date_format=values["date_format"],
        delimiter=values["delimiter"],
    )


transaction_options = _inject(
    "load",
    [
        ("timezone", str, TIMEZONE),
        ("date_format", str | None, DATE_FORMAT),
        ("delimiter", str | None, DELIMITER),
        *((name, str, opt) for name, _, opt in _TRANSACTION_COLUMNS),
    ],
    _load_options,
)
"""Add the transactions-file options (time zone, date format, delimiter, every column
mapping) to a command, which receives them as one ``load: LoadOptions``."""

program_transaction_options = _inject(
    "load",
    [
        ("timezone", str, PROGRAM_TIMEZONE),
        ("date_format", str | None, DATE_FORMAT),
        ("delimiter", str | None, DELIMITER),
        *((name, str, opt) for name, _, opt in _TRANSACTION_COLUMNS),
    ],
    _load_options,
)
""":data:`transaction_options` for a command taking ``--program-file``, whose time zone
is the default ``--timezone`` (the command tells a given zone from the default)."""

segmented_transaction_options = _inject(
    "load",
    [
        ("timezone", str, TIMEZONE),
        ("date_format", str | None, DATE_FORMAT),
        ("delimiter", str | None, DELIMITER),
        *((name, str, opt) for name, _, opt in _TRANSACTION_COLUMNS),
        ("segment_col", str | None, SEGMENT_COL),
        ("segments", Path | None, SEGMENTS),
    ],
    lambda v: replace(
        _load_options(v), segment_column=v["segment_col"], segments_file=v["segments"]
    ),
)
"""The transactions-file options and the two ways to segment the customers
(``--segment-col``, ``--segments``), for the commands that compute their metric once
per segment (:mod:`fidelite.analytics.segments`). A command whose output cannot be
split by segment (the program KPIs, the predictive CLV models) takes
:func:`transaction_options` and so never offers them."""

survey_options = _inject(
    "survey_columns",
    [(name, str, opt) for name, _, opt in _SURVEY_COLUMNS],
    lambda v: AnswerColumns(**{field: v[name] for name, field, _ in _SURVEY_COLUMNS}),
)
"""Add the survey answers' column options; the command receives ``survey_columns``."""

subscription_options = _inject(
    "subscription_columns",
    [(name, str, opt) for name, _, opt in _SUBSCRIPTION_COLUMNS],
    lambda v: SubscriptionColumns(**{field: v[name] for name, field, _ in _SUBSCRIPTION_COLUMNS}),
)
"""Add the subscriptions file's column options; the command receives
``subscription_columns``."""


def _segment_by(values: dict[str, Any]) -> SegmentBy:
    return SegmentBy(values["segment_col"], values["segments"])


answer_segment_options = _inject(
    "segment_by",
    [
        (
            "segment_col",
            str | None,
            _segment_col_of("survey answers file", "first answer", "store"),
        ),
        ("segments", Path | None, SEGMENTS),
    ],
    _segment_by,
)
"""``--segment-col`` (a column of the survey answers) and ``--segments`` for the survey
metrics, which compute once per segment of customers; the command receives
``segment_by``."""

subscription_segment_options = _inject(
    "segment_by",
    [
        ("segment_col", str | None,
         _segment_col_of("subscriptions file", "first subscription (the earliest start)",
                         "region")),
        ("segments", Path | None, SEGMENTS),
    ],
    _segment_by,
)  # fmt: skip
"""``--segment-col`` (a column of the subscriptions) and ``--segments`` for ``mrr``;
the command receives ``segment_by``."""


# --- sources ----------------------------------------------------------------------------


def names_database(text: str) -> bool:
    """True when ``text`` names a program database rather than a transactions file: a
    URL, an existing SQLite file, or a path ending in .db, .sqlite or .sqlite3 (with or
    without ``#PROGRAM``)."""
    target = text.partition("#")[0]
    return is_program_source(text) or Path(target).suffix.lower() in DATABASE_SUFFIXES


def transactions_input(text: str, options: LoadOptions) -> tuple[Source, LoadOptions]:
    """The transactions ``text`` names, and ``options`` naming them in the outputs: a
    file path as it is, or a program database's purchases and refunds (read once the
    database is checked) under the name ``URL#PROGRAM``, without a password."""
    if not names_database(text):
        return Path(text), options
    url, program_id = program_database(text)
    name = f"{database_name(url)}#{program_id}"
    return transactions_from_program(url, program_id), replace(options, source_name=name)


def program_database(text: str) -> tuple[str, str]:
    """``(url, program id)`` for ``URL[#PROGRAM]`` or ``FILE.db[#PROGRAM]``, once the
    database is known to exist and to be a fidelite database at the current schema.

    Raises :class:`InputError` otherwise, having created nothing.
    """
    target = text.partition("#")[0]
    url = target if "://" in target else f"sqlite:///{Path(target).resolve()}"
    name = database_name(url)
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise InputError(
            "not a database URL (e.g. sqlite:///fidelite.db or postgresql+psycopg://user@host/db)",
            file=name,
        ) from None
    if parsed.get_backend_name() == "sqlite":
        _check_sqlite_file(parsed.database, name)
    _check_schema(url, name)
    return program_source(text)


def _check_sqlite_file(database: str | None, name: str) -> None:
    if not database or database == ":memory:":
        raise InputError("an in-memory database holds no program: name a file", file=name)
    path = Path(database)
    if not path.is_file():
        raise InputError(
            "database file not found (name a program database as sqlite:///PATH.db#PROGRAM "
            "or PATH.db#PROGRAM)",
            file=name,
        )
    if path.stat().st_size == 0:
        raise InputError("the database file is empty: not a fidelite program database", file=name)
    with path.open("rb") as fh:
        if fh.read(len(SQLITE_MAGIC)) != SQLITE_MAGIC:
            raise InputError(_not_a_database(path), file=name)


def _not_a_database(path: Path) -> str:
    """Why a file that is no SQLite database cannot be read as a program database.

    A file named like a data file (``.csv``, ``.parquet``, a workbook) was given where
    only a program database is read (``engagement``, ``program-kpis``): say so, and how
    to name one, rather than what a transactions file should be called, which it is.
    """
    naming = (
        "name a program database as PATH.db#PROGRAM, sqlite:///PATH.db#PROGRAM or a PostgreSQL URL"
    )
    if path.suffix.lower() in DATABASE_SUFFIXES:
        return f"not a SQLite database ({naming}); a transactions file must end in .csv or .parquet"
    return (
        f"a {path.suffix or 'plain'} file, not a program database: this command reads the "
        f"program database (its events and ledger); {naming}"
    )


def _check_schema(url: str, name: str) -> None:
    """The database must be at the schema this fidelite reads. A SQLite file is looked
    at read-only: opening it as a program database would switch it to WAL mode, which
    changes a file that may not be ours."""
    database = Database(url)
    try:
        head = head_revision(database)  # read from our migration scripts, not the database
        if database.dialect == "sqlite":
            revision = _sqlite_revision(make_url(url).database or "", name)
        else:
            revision = current_revision(database)
    except SQLAlchemyError as exc:
        raise InputError(f"cannot open the database: {_first_line(exc)}", file=name) from None
    finally:
        database.dispose()
    if revision is None:
        raise InputError("not a fidelite program database (it has no fidelite tables)", file=name)
    try:
        check_known(revision)
    except NewerSchema as exc:
        raise InputError(str(exc), file=name) from None
    if revision != head:
        raise InputError(
            f"the database is at schema revision {revision}; run `fidelite db upgrade` first",
            file=name,
        )


def _sqlite_revision(path: str, name: str) -> str | None:
    """The Alembic revision of a SQLite file, read without writing to it."""
    uri = Path(path).resolve().as_uri() + "?mode=ro"
    try:
        with closing(sqlite3.connect(uri, uri=True)) as con:
            found = con.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return None
        raise InputError(f"cannot open the database: {exc}", file=name) from None
    except sqlite3.DatabaseError as exc:
        raise InputError(f"not a SQLite database: {exc}", file=name) from None
    return str(found[0]) if found else None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
