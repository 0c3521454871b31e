"""Many rows in one statement: the writes of the batch path of bulk import.

On PostgreSQL, :func:`insert_rows` streams rows with ``COPY ... FROM STDIN`` (one round
trip for the lot, no statement per row) and :func:`add_to_rows` applies many
increments with one ``UPDATE ... FROM unnest(...)``; on SQLite, where a statement costs
no round trip, both run as ``executemany``. Both stay inside the caller's transaction
(and savepoint), so a failure rolls back with everything else. To send several such
writes in one round trip, queue them in a :class:`~fidelite.store.script.Script`.

``COPY`` bypasses SQLAlchemy's type processing, so :func:`insert_rows` applies what the
project's column types would: aware datetimes only (``UTCDateTime`` refuses naive ones)
and JSON columns as JSON text; and a row the database refuses raises SQLAlchemy's
exception for it (``IntegrityError``, ``DataError``...), as any other statement would,
so callers that catch a unique-key conflict catch it here too.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Table, insert

from fidelite.store.script import Script, copy_rows


def insert_rows(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows`` (dicts with the same keys) into ``table``."""
    if not rows:
        return
    if any(row.keys() != rows[0].keys() for row in rows):
        raise ValueError(f"{table.name}: every row needs the same columns")
    if conn.dialect.name != "postgresql":
        conn.execute(insert(table), rows)
        return
    copy_rows(conn, table, rows)


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
    script = Script(conn)
    script.increment(table, column, key, rows, fixed=fixed, guard=guard)
    script.run()
