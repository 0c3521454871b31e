"""The database handle: engines, transactions and the choice of backend.

SQLite (the default, a file next to the user) runs in WAL mode with foreign keys on
and ``secure_delete`` on (deleted content is overwritten, so erased data does not stay
in the file);
every *writing* transaction starts with ``BEGIN IMMEDIATE`` so that writers queue on the
database lock up front instead of failing half-way with ``SQLITE_BUSY`` on upgrade from
a read lock. Readers use plain deferred transactions and never block writers (WAL).

PostgreSQL runs at READ COMMITTED; writers serialise per member through the row locks
taken in :mod:`fidelite.store.locking`.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.pool import ConnectionPoolEntry

DEFAULT_URL = "sqlite:///fidelite.db"
ENV_VAR = "FIDELITE_DB"


def resolve_url(url: str | None = None) -> str:
    """Pick the database URL: explicit argument, then ``FIDELITE_DB``, then ``fidelite.db``.

    A bare file path (``shop.db``) is accepted as a SQLite database; ``postgresql://``
    URLs are routed to the psycopg 3 driver.
    """
    chosen = url or os.environ.get(ENV_VAR) or DEFAULT_URL
    if "://" not in chosen:
        chosen = f"sqlite:///{chosen}"
    if chosen.startswith("postgresql://") or chosen.startswith("postgres://"):
        chosen = "postgresql+psycopg://" + chosen.split("://", 1)[1]
    return chosen


def _sqlite_setup(engine: Engine, begin_sql: str) -> None:
    """Take over SQLite transaction control so ``begin_sql`` opens every transaction."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: ConnectionPoolEntry) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=60000")
        # Deleted and overwritten content is zeroed in the file, not left in free space:
        # an erased member's reference and profile must not stay readable in the
        # database file. Debian's SQLite has it on by default; a stock build does not.
        cur.execute("PRAGMA secure_delete=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql(begin_sql)


IDLE_PING_SECONDS = 1.0
_ANALYZE_LOCK = 7_215_020_141_105_551  # advisory lock key of statistics refreshes


def _ping_when_idle(engine: Engine) -> None:
    """Check a pooled connection before use if it sat idle for a second or more.

    A server restart or an idle timeout leaves dead connections in the pool; a ping on
    checkout finds them and the pool opens a new one instead. Pinging on *every*
    checkout (``pool_pre_ping``) costs a round trip per transaction, which a busy server
    (one transaction per group of events, many per second) pays for nothing: a
    connection used a moment ago is alive. Should one die mid-use anyway, its statement
    fails, SQLAlchemy discards the pool's connections, and the next transaction gets a
    fresh one.
    """

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_conn: Any, record: ConnectionPoolEntry) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_conn: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is not None and time.monotonic() - since < IDLE_PING_SECONDS:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:
            raise DisconnectionError("the pooled connection is gone") from exc
        if not alive:
            raise DisconnectionError("the pooled connection is gone")


class Database:
    """A program database: a writer engine and a reader engine on one URL.

    Use :meth:`write` for anything that changes data (one atomic transaction, committed
    on success, rolled back on any exception) and :meth:`read` for queries.
    """

    def __init__(self, url: str | None = None, *, pool_size: int = 10) -> None:
        self.url = resolve_url(url)
        parsed = make_url(self.url)
        self.dialect = parsed.get_backend_name()
        if self.dialect == "sqlite":
            kwargs: dict[str, Any] = {"connect_args": {"timeout": 60, "check_same_thread": False}}
            if parsed.database and parsed.database != ":memory:":
                kwargs["pool_size"] = pool_size
                kwargs["max_overflow"] = pool_size
            self.writer = create_engine(self.url, **kwargs)
            self.reader = create_engine(self.url, **kwargs)
            _sqlite_setup(self.writer, "BEGIN IMMEDIATE")
            _sqlite_setup(self.reader, "BEGIN")
            self._write_lock: threading.RLock | None = threading.RLock()
        else:
            # No server-side prepared statements: psycopg would prepare a query after five
            # runs, and PostgreSQL may then keep a generic plan made while a table was
            # small (a sequential scan that stays after the table has grown; measured:
            # 80 ms instead of 1 ms per event-id lookup in bulk import).
            self.writer = create_engine(
                self.url,
                pool_size=pool_size,
                max_overflow=pool_size,
                connect_args={"prepare_threshold": None},
            )
            _ping_when_idle(self.writer)
            self.reader = self.writer
            self._write_lock = None

    @classmethod
    def from_url(cls, url: str | None = None, **kwargs: Any) -> Database:
        """Open the database at ``url`` (see :func:`resolve_url`)."""
        return cls(url, **kwargs)

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One writing transaction (``BEGIN IMMEDIATE`` on SQLite).

        SQLite admits one writer at a time; threads of this process queue on a lock
        first, so they take turns in order instead of polling the database lock with
        SQLite's sleeping busy handler (which collapses throughput with dozens of
        waiting threads, e.g. an API server's request threads). Other processes still
        wait on the database lock itself (busy timeout 60 s). PostgreSQL: no lock here.
        """
        if self._write_lock is None:
            with self.writer.begin() as conn:
                yield conn
            return
        with self._write_lock, self.writer.begin() as conn:
            yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """One reading transaction (a consistent snapshot on both backends)."""
        with self.reader.begin() as conn:
            if self.is_postgres:
                conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            yield conn

    @contextmanager
    def lookup(self) -> Iterator[Connection]:
        """A connection for a single-statement read that needs no snapshot (e.g. an API
        key by id). On PostgreSQL it runs outside any transaction (autocommit): one round
        trip instead of four (``BEGIN``, isolation, the query, ``COMMIT``), which counts on
        every API request. On SQLite it is :meth:`read`."""
        if not self.is_postgres:
            with self.read() as conn:
                yield conn
            return
        with self.reader.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            yield conn

    def refresh_statistics(self, tables: list[str], *, target: int | None = None) -> None:
        """Let PostgreSQL's planner see how big ``tables`` have grown (``ANALYZE``).

        A bulk load that outpaces autovacuum (or runs where it is off) leaves plans made
        for the empty tables: measured, a 500-id lookup on 170,000 events scanned the
        whole program (150 ms) instead of probing the key. ``ANALYZE`` samples a fixed
        number of rows, so it costs a fraction of a second whatever the size. SQLite:
        nothing (its ``ANALYZE`` reads every row; our queries there are shaped so the
        planner needs no statistics).

        ``target``: the statistics target of this ``ANALYZE`` (rows sampled: 300 per
        unit) instead of the server's ``default_statistics_target``; the session's own
        setting is restored afterwards.
        """
        if not self.is_postgres:
            return
        with self.writer.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            # One refresh at a time across processes (an API server's workers each count
            # their own events and reach the same doublings together): a refresh due
            # while another runs is skipped, that one serves both.
            busy = text("SELECT pg_try_advisory_lock(:k)")
            if not conn.execute(busy, {"k": _ANALYZE_LOCK}).scalar_one():
                return
            try:
                if target is not None:
                    conn.exec_driver_sql(f"SET default_statistics_target = {int(target)}")
                conn.exec_driver_sql("ANALYZE " + ", ".join(f'"{t}"' for t in tables))
            finally:
                if target is not None:
                    conn.exec_driver_sql("RESET default_statistics_target")
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _ANALYZE_LOCK})

    def upgrade(self, revision: str = "head") -> None:
        """Apply migrations up to ``revision`` (see :mod:`fidelite.store.migrate`)."""
        from fidelite.store.migrate import upgrade

        upgrade(self, revision)

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.writer.dispose()
        if self.reader is not self.writer:
            self.reader.dispose()
