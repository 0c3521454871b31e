r"""Statements sent to the database together: one round trip for many on PostgreSQL.

A batch of events reads about ten tables and writes about ten. Sent one statement at a
time, each pays a round trip to the server (and, through SQLAlchemy and the driver,
about a tenth of a millisecond of Python): for the API's small groups of events, the
round trips were most of the time. A :class:`Script` collects the statements of one
phase — the reads of a batch, or its writes — and :meth:`Script.run` sends them:

- **PostgreSQL**: every statement rendered with its values (the driver's client-side
  binding quotes each value as the server expects it), joined into one message that
  the server runs in order, in the caller's transaction; each statement's result is
  read back in turn (rows through their columns' SQLAlchemy types, as a query gives
  them; row counts to the checks). Inserts of many rows (:data:`COPY_FROM` or more) are
  streamed with ``COPY`` instead, in their place between the statements around them.
- **SQLite**: each statement executed in order (a local file: no round trip to save).

Statements run in the order they were added, so a later one sees what an earlier one
wrote, and a lock taken by an earlier one is held. A statement the server refuses fails
the run with SQLAlchemy's exception for it (``IntegrityError``, ``DataError``...); the
caller's transaction must then be rolled back, as after any failed statement.

Statements given with ``params`` are *parametrized*: built once (e.g. with
:func:`functools.cache`) with ``bindparam``\ s and reused, so their SQL is compiled once
per process (a compilation costs more than the round trip it saves); for lists of
values use :func:`one_of`. A statement given without ``params`` carries its values and
is compiled every time. Values must be ready for the database: aware datetimes, JSON
columns as Python values (encoded here); on PostgreSQL no SQLAlchemy type decorator is
applied to values, so an aware datetime is sent in UTC here, as the timestamp type
would send it (PostgreSQL keeps no offset, and refuses one beyond +-15:59).
"""

from __future__ import annotations

import functools
import json
from collections import namedtuple
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ARRAY, JSON, Connection, Table, any_, bindparam, insert, text
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement, Select
from sqlalchemy.sql.elements import ColumnElement, TextClause
from sqlalchemy.sql.selectable import CompoundSelect, TextualSelect

from fidelite.store.locking import ConcurrentUpdateError

COPY_FROM = 200  # inserts of at least this many rows go by COPY on PostgreSQL
Params = Mapping[str, Any] | Sequence[Mapping[str, Any]]


class Rows:
    """The rows a :meth:`Script.select` has read, once the script has run."""

    def __init__(self) -> None:
        self._rows: list[Any] | None = None

    def all(self) -> list[Any]:
        """The rows: tuples whose values are also attributes named after the columns."""
        if self._rows is None:
            raise RuntimeError("the script has not run yet")
        return self._rows

    def __iter__(self) -> Iterator[Any]:
        return iter(self.all())


@dataclass
class _Statement:
    statement: ClauseElement
    params: Params | None = None
    rows: Rows | None = None  # a query: where its rows go
    check: Callable[[int], None] | None = None  # called with the row count


@dataclass
class _Insert:
    table: Table
    rows: list[dict[str, Any]]


class Script:
    """Statements of one phase, run together by :meth:`run` (see the module doc)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._items: list[_Statement | _Insert] = []

    def __len__(self) -> int:
        return len(self._items)

    @property
    def dialect(self) -> Dialect:
        return self.conn.dialect

    @property
    def is_postgres(self) -> bool:
        return self.conn.dialect.name == "postgresql"

    def parts(self, values: Sequence[Any], size: int = 500) -> list[list[Any]]:
        """``values`` for one list parameter (see :func:`one_of`): whole on PostgreSQL
        (one array), in chunks of ``size`` elsewhere (SQLite's parameter limit)."""
        if not values:
            return []
        if self.is_postgres:
            return [list(values)]
        return [list(values[i : i + size]) for i in range(0, len(values), size)]

    def select(
        self,
        statement: Select[*tuple[Any, ...]] | CompoundSelect[*tuple[Any, ...]] | TextualSelect,
        params: Mapping[str, Any] | None = None,
    ) -> Rows:
        """Add a query; its rows are in the returned :class:`Rows` after :meth:`run`."""
        rows = Rows()
        self._items.append(_Statement(statement, params, rows=rows))
        return rows

    def execute(
        self,
        statement: ClauseElement,
        params: Params | None = None,
        *,
        check: Callable[[int], None] | None = None,
    ) -> None:
        """Add a statement without rows; ``check(rowcount)`` runs once it has run.
        A list of parameter sets (SQLite only) runs the statement once per set."""
        if params is not None and not isinstance(params, Mapping) and self.is_postgres:
            raise ValueError("one parameter set per statement on PostgreSQL")
        self._items.append(_Statement(statement, params, check=check))

    def insert(self, table: Table, rows: list[dict[str, Any]]) -> None:
        """Add an insert of ``rows`` (dicts with the same keys) into ``table``."""
        if not rows:
            return
        first = rows[0].keys()
        if any(row.keys() != first for row in rows):
            raise ValueError(f"{table.name}: every row needs the same columns")
        self._items.append(_Insert(table, rows))

    def increment(
        self,
        table: str,
        column: str,
        key: dict[str, str],
        rows: list[tuple[tuple[Any, ...], int]],
        *,
        fixed: dict[str, Any] | None = None,
        guard: str = "",
    ) -> None:
        """Add each row's amount to ``column`` of the row its key names; every row must
        exist (see :func:`fidelite.store.bulk.add_to_rows`)."""
        if not rows:
            return
        if len({k for k, _ in rows}) != len(rows):  # UPDATE ... FROM applies one per row
            raise ValueError(f"{table}: one change per row (sum them first)")
        statement, params = _increments(self.is_postgres, table, column, key, rows,
                                        fixed or {}, guard)  # fmt: skip

        def check(done: int) -> None:
            if done != len(rows):
                raise ConcurrentUpdateError(
                    f"{table}: {len(rows) - done} of {len(rows)} changes refused"
                )

        self.execute(statement, params, check=check)

    def run(self) -> None:
        """Run every statement added, in order; the script is empty afterwards."""
        items, self._items = self._items, []
        if self.is_postgres:
            _run_postgres(self.conn, items)
        else:
            _run_each(self.conn, items)


def one_of(column: Any, name: str, postgres: bool) -> ColumnElement[bool]:
    """``column`` is one of the list passed as parameter ``name``: on PostgreSQL
    ``column = ANY(:name)`` over an array (the statement's SQL is the same however long
    the list, so it is compiled once), elsewhere ``column IN (:name)`` (expanded)."""
    element: ColumnElement[Any] = column.expression  # a table's column, or a model's
    if postgres:
        return element == any_(bindparam(name, type_=ARRAY(element.type)))
    return element.in_(bindparam(name, expanding=True))


def copy_rows(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Stream ``rows`` into ``table`` with ``COPY ... FROM STDIN`` (PostgreSQL)."""
    import psycopg  # PostgreSQL only (the ``postgres`` extra)
    from psycopg import sql

    columns = list(rows[0])
    as_json = {name for name in columns if isinstance(table.c[name].type, JSON)}
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table.name), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    raw = conn.connection.driver_connection
    assert raw is not None
    try:
        with raw.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row([_value(row[c], c in as_json) for c in columns])
    except psycopg.Error as exc:  # as SQLAlchemy reports it (IntegrityError, DataError...)
        raise DBAPIError.instance(
            statement.as_string(raw), None, exc, psycopg.Error, dialect=conn.dialect
        ) from exc


def _increments(
    postgres: bool,
    table: str,
    column: str,
    key: dict[str, str],
    rows: list[tuple[tuple[Any, ...], int]],
    fixed: dict[str, Any],
    guard: str,
) -> tuple[TextClause, Params]:
    """The ``UPDATE`` adding each amount (PostgreSQL: one statement over arrays) and its
    parameters."""
    names = list(key)
    statement = _increment_sql(postgres, table, column, tuple(key.items()), tuple(fixed), guard)
    params: Params
    if postgres:
        arrays = {f"a{i}": [r[0][i] for r in rows] for i in range(len(names))}
        params = {**arrays, "amounts": [r[1] for r in rows], **fixed}
    else:  # one statement per row: no round trips to save on SQLite
        params = [{**fixed, **dict(zip(names, k, strict=True)), "d": d} for k, d in rows]
    return statement, params


@functools.cache
def _increment_sql(
    postgres: bool,
    table: str,
    column: str,
    key: tuple[tuple[str, str], ...],
    fixed: tuple[str, ...],
    guard: str,
) -> TextClause:
    names = [name for name, _ in key]
    if postgres:
        arrays = ", ".join(f"CAST(:a{i} AS {kind}[])" for i, (_, kind) in enumerate(key))
        condition = [f"t.{name} = v.{name}" for name in names]
        source = f"FROM unnest({arrays}, CAST(:amounts AS bigint[])) AS v({', '.join(names)}, d) "
        amount = "v.d"
    else:
        condition = [f"t.{name} = :{name}" for name in names]
        source = ""
        amount = ":d"
    condition += [f"t.{name} = :{name}" for name in fixed]
    if guard:
        condition.append("(" + guard.replace("{d}", amount) + ")")
    return text(
        f"UPDATE {table} AS t SET {column} = t.{column} + {amount} "
        f"{source}WHERE {' AND '.join(condition)}"
    )


def _run_each(conn: Connection, items: Sequence[_Statement | _Insert]) -> None:
    for item in items:
        if isinstance(item, _Insert):
            conn.execute(insert(item.table), item.rows)
            continue
        result = conn.execute(item.statement, item.params)  # type: ignore[call-overload]
        if item.rows is not None:
            item.rows._rows = list(result.all())
        if item.check is not None:
            item.check(result.rowcount)


def _run_postgres(conn: Connection, items: Sequence[_Statement | _Insert]) -> None:
    """Consecutive statements in one message; big inserts by COPY in their place."""
    pending: list[_Statement] = []
    for item in items:
        if isinstance(item, _Insert) and len(item.rows) >= COPY_FROM:
            _send(conn, pending)
            pending = []
            copy_rows(conn, item.table, item.rows)
        elif isinstance(item, _Insert):
            pending.append(_values_insert(item))
        else:
            pending.append(item)
    _send(conn, pending)


def _send(conn: Connection, statements: list[_Statement]) -> None:
    if not statements:
        return
    import psycopg  # PostgreSQL only (the ``postgres`` extra)
    from psycopg.adapt import Transformer

    raw = conn.connection.driver_connection
    assert raw is not None
    with psycopg.ClientCursor(raw) as cursor:
        literal = Transformer(cursor).as_literal
        message = ";\n".join(_rendered(cursor, literal, item, conn.dialect) for item in statements)
        try:
            cursor.execute(message)
            for number, item in enumerate(statements):
                if number:
                    cursor.nextset()
                if item.rows is not None:
                    item.rows._rows = _typed_rows(item, cursor.fetchall(), conn.dialect)
                if item.check is not None:
                    item.check(cursor.rowcount)
        except psycopg.Error as exc:  # as SQLAlchemy reports it (IntegrityError...)
            raise DBAPIError.instance(
                message[:2000], None, exc, psycopg.Error, dialect=conn.dialect
            ) from exc


@dataclass(frozen=True)
class _Compiled:
    statement: ClauseElement  # kept alive: the cache is keyed by its id
    sql: str
    fixed: dict[str, Any]  # the values of literals inside the statement (e.g. a 0)
    row_type: Any
    processors: list[Any]


_COMPILED: dict[int, _Compiled] = {}


def _rendered(cursor: Any, literal: Callable[[Any], bytes], item: _Statement, dialect: Any) -> str:
    """The statement's SQL with its values in place (quoted by the driver; a ``dict``
    value is JSON, as SQLAlchemy's JSON type would send it)."""
    from psycopg.types.json import Json

    if isinstance(item.statement, _Values):
        return item.statement.render(literal)
    if item.params is None:  # values inside the statement: compile it for this use
        compiled = item.statement.compile(
            dialect=dialect, compile_kwargs={"render_postcompile": True}
        )
        values = {k: _in_utc(v) for k, v in compiled.params.items()}
        return str(cursor.mogrify(compiled.string, values))
    assert isinstance(item.params, Mapping)
    shape = _compiled(item.statement, dialect)
    values = {k: Json(v) if isinstance(v, dict) else _in_utc(v) for k, v in item.params.items()}
    return str(cursor.mogrify(shape.sql, {**shape.fixed, **values}))


def _compiled(statement: ClauseElement, dialect: Any) -> _Compiled:
    """A parametrized statement's SQL and row shape, compiled once per process (the
    statement must live on: built once and reused)."""
    found = _COMPILED.get(id(statement))
    if found is None or found.statement is not statement:
        compiled = statement.compile(dialect=dialect)
        fixed = {k: v for k, v in compiled.params.items() if v is not None}
        found = _Compiled(statement, compiled.string, fixed, *_shape(statement, dialect))
        _COMPILED[id(statement)] = found
    return found


def _shape(statement: ClauseElement, dialect: Any) -> tuple[Any, list[Any]]:
    """A query's row type (named after its columns) and each column's result processor."""
    if not isinstance(statement, Select | CompoundSelect | TextualSelect):
        return None, []
    columns = list(statement.selected_columns)
    names = [str(c.key or f"c{i}") for i, c in enumerate(columns)]
    row_type = namedtuple("Row", names, rename=True)  # type: ignore[misc]
    return row_type, [c.type.result_processor(dialect, None) for c in columns]


def _typed_rows(item: _Statement, fetched: list[Any], dialect: Any) -> list[Any]:
    """Rows as named tuples, each value through its column's type (as a query gives it:
    e.g. timestamps in UTC)."""
    if item.params is None:
        row_type, processors = _shape(item.statement, dialect)
    else:
        shape = _compiled(item.statement, dialect)
        row_type, processors = shape.row_type, shape.processors
    if not any(processors):
        return [row_type(*r) for r in fetched]
    return [
        row_type(*(p(v) if p is not None else v for p, v in zip(processors, r, strict=True)))
        for r in fetched
    ]


class _Values(ClauseElement):
    """A multi-row ``INSERT ... VALUES``, its values quoted by the driver (PostgreSQL).

    Each value goes through the driver's literal adapter directly: rendered through the
    driver's query formatting, every statement's text (different for every number of
    rows) was parsed for placeholders anew, which cost more than the values.
    """

    def __init__(self, table: Table, rows: list[dict[str, Any]]) -> None:
        self.table = table
        self.columns = list(rows[0])
        as_json = {c.name for c in table.columns if isinstance(c.type, JSON)}
        self.rows = [[_value(row[c], c in as_json) for c in self.columns] for row in rows]

    def render(self, literal: Callable[[Any], bytes]) -> str:
        names = ", ".join(f'"{c}"' for c in self.columns)
        values = b", ".join(b"(" + b", ".join(map(literal, row)) + b")" for row in self.rows)
        return f'INSERT INTO "{self.table.name}" ({names}) VALUES ' + values.decode()


def _values_insert(item: _Insert) -> _Statement:
    """A multi-row ``INSERT ... VALUES`` (its values rendered client-side)."""
    return _Statement(_Values(item.table, item.rows))


def _value(value: Any, as_json: bool) -> Any:
    if as_json:
        return None if value is None else json.dumps(value)
    if isinstance(value, datetime) and value.tzinfo is None:
        raise ValueError(f"naive datetime {value.isoformat()} (a time zone is required)")
    return _in_utc(value)


def _in_utc(value: Any) -> Any:
    """``value``, if an aware datetime (or a list of them), in UTC, as the timestamp
    column type sends it: the same instant, without the offset it was written with
    (PostgreSQL keeps none, and refuses one beyond +-15:59: the write failed)."""
    if isinstance(value, datetime):
        return value if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, list) and value and isinstance(value[0], datetime):
        return [_in_utc(v) for v in value]
    return value
