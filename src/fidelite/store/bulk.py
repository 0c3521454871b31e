"""Many rows in one statement: the writes of the batch path of bulk import.

On PostgreSQL, :func:`insert_rows` streams rows with ``COPY ... FROM STDIN`` (one round
trip for the lot, no statement per row) and :func:`add_to_rows` applies many
increments with one ``UPDATE ... FROM unnest(...)``; on SQLite, where a statement costs
no round trip, both run as ``executemany``. Both stay inside the caller's transaction
(and savepoint), so a failure rolls back with everything else.

``COPY`` bypasses SQLAlchemy's type processing, so :func:`insert_rows` applies what the
project's column types would: aware datetimes only (``UTCDateTime`` refuses naive ones)
and JSON columns as JSON text; and a row the database refuses raises SQLAlchemy's
exception for it (``IntegrityError``, ``DataError``...), as any other statement would,
so callers that catch a unique-key conflict catch it here too.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Connection, Table, insert, text
from sqlalchemy.exc import DBAPIError

from fidelite.store.locking import ConcurrentUpdateError


def insert_rows(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows`` (dicts with the same keys) into ``table``."""
    if not rows:
        return
    if conn.dialect.name != "postgresql":
        conn.execute(insert(table), rows)
        return
    import psycopg  # PostgreSQL only (the ``postgres`` extra)
    from psycopg import sql

    columns = list(rows[0])
    as_json = {name for name in columns if isinstance(table.c[name].type, JSON)}
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table.name), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    raw = conn.connection.driver_connection
    assert raw is not None
    for row in rows:
        if row.keys() != rows[0].keys():
            raise ValueError(f"{table.name}: every row needs the same columns")
    try:
        with raw.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row([_value(row[c], c in as_json) for c in columns])
    except psycopg.Error as exc:  # as SQLAlchemy reports it (IntegrityError, DataError...)
        raise DBAPIError.instance(
            statement.as_string(raw), None, exc, psycopg.Error, dialect=conn.dialect
        ) from exc


def _value(value: Any, as_json: bool) -> Any:
    if as_json:
        return None if value is None else json.dumps(value)
    if isinstance(value, datetime) and value.tzinfo is None:
        raise ValueError(f"naive datetime {value.isoformat()} (a time zone is required)")
    return value


def add_to_rows(
    conn: Connection,
    table: str,
    column: str,
    key: dict[str, str],
    rows: list[tuple[tuple[Any, ...], int]],
    *,
    fixed: dict[str, Any] | None = None,
    guard: str = "",
) -> None:
    """Add each row's amount to ``column`` of the row its key names; every row must exist.

    ``key`` maps the key columns to their PostgreSQL types, in order; each entry of
    ``rows`` is ``(key values, amount)``. ``fixed`` holds columns equal for every row
    (e.g. the program). ``guard`` is an extra condition over ``t`` (the row) and ``d``
    (the amount). A missing row, or one the guard refuses, raises
    :class:`~fidelite.store.locking.ConcurrentUpdateError` (and nothing should be kept:
    the caller's transaction or savepoint is rolled back).
    """
    if not rows:
        return
    if len({k for k, _ in rows}) != len(rows):  # UPDATE ... FROM applies one per row
        raise ValueError(f"{table}: one change per row (sum them first)")
    fixed = fixed or {}
    names = list(key)
    if conn.dialect.name == "postgresql":
        arrays = ", ".join(f"CAST(:a{i} AS {kind}[])" for i, kind in enumerate(key.values()))
        condition = [f"t.{name} = v.{name}" for name in names]
        source = f"FROM unnest({arrays}, CAST(:amounts AS bigint[])) AS v({', '.join(names)}, d) "
        params: Any = {f"a{i}": [r[0][i] for r in rows] for i in range(len(names))}
        params |= {"amounts": [r[1] for r in rows], **fixed}
        amount = "v.d"
    else:  # one statement per row: no round trips to save on SQLite
        condition = [f"t.{name} = :{name}" for name in names]
        source = ""
        params = [{**fixed, **dict(zip(names, k, strict=True)), "d": d} for k, d in rows]
        amount = ":d"
    condition += [f"t.{name} = :{name}" for name in fixed]
    if guard:
        condition.append("(" + guard.replace("{d}", amount) + ")")
    statement = text(
        f"UPDATE {table} AS t SET {column} = t.{column} + {amount} "
        f"{source}WHERE {' AND '.join(condition)}"
    )
    done = conn.execute(statement, params).rowcount
    if done != len(rows):
        raise ConcurrentUpdateError(f"{table}: {len(rows) - done} of {len(rows)} changes refused")
