"""Whether an error is the database's (or the machine's), not the row's.

A bulk import answers a row the database refuses in a way no check foresaw as that
row's failure (``processing_failed``) and goes on with the next one. That is right for
a row the database refuses for itself, wrong when the database cannot be written at
all: a full disk, an I/O error, a read-only database, a lock held beyond the timeout, a
server out of memory or shutting down, a lost connection. Every row after would fail
the same way, each retried on its own, and each be reported as a bad row. Such an
error stops the import instead (what is committed stays; re-running the file resumes).

Errors are told apart by the driver's codes, never by their message text: SQLite's
result code (``sqlite3.Error.sqlite_errorcode``, its primary code in the low byte) and
PostgreSQL's SQLSTATE (``psycopg.Error.sqlstate``).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from sqlalchemy.exc import DBAPIError

__all__ = ["DatabaseFailure", "database_failure"]

_SQLITE = {
    5: ("SQLITE_BUSY", "the database is locked by another connection (the wait timed out)"),
    6: ("SQLITE_LOCKED", "the database is locked"),
    7: ("SQLITE_NOMEM", "out of memory"),
    8: ("SQLITE_READONLY", "the database is read-only"),
    10: ("SQLITE_IOERR", "a disk I/O error"),
    11: ("SQLITE_CORRUPT", "the database file is damaged"),
    13: ("SQLITE_FULL", "the disk or the database is full"),
    14: ("SQLITE_CANTOPEN", "the database file cannot be opened"),
    15: ("SQLITE_PROTOCOL", "the database's locking failed"),
    22: ("SQLITE_NOLFS", "the file is too large for the system"),
    26: ("SQLITE_NOTADB", "the file is not a database"),
}
"""SQLite's primary result codes that are the database's or the machine's."""

_SQLSTATE = {
    "53100": "the database server's disk is full",
    "53200": "the database server is out of memory",
    "53300": "the database server has too many connections",
    "57P01": "the database server is shutting down",
    "57P02": "the database server crashed",
    "57P03": "the database server cannot take connections now",
    "25006": "the database is read-only",
    "55P03": "a lock could not be obtained in time",
    "58030": "an I/O error on the database server",
    "XX001": "the database's data is damaged",
    "XX002": "a database index is damaged",
}
_SQLSTATE_CLASS = {
    "08": "the connection to the database was lost",
    "53": "the database server is out of resources",
    "58": "a system error on the database server",
}


@dataclass(frozen=True)
class DatabaseFailure:
    """Why the database could not be written: ``reason`` in words, ``code`` (the
    driver's: ``SQLITE_FULL``, ``SQLSTATE 53100``) and the driver's own message."""

    reason: str
    code: str
    detail: str

    def __str__(self) -> str:
        detail = f": {self.detail}" if self.detail else ""
        return f"{self.reason} ({self.code}{detail})"


def database_failure(exc: BaseException) -> DatabaseFailure | None:
    """The database's (or the machine's) failure ``exc`` is, if it is one; ``None`` for
    an error that may be the row's (a constraint, a value the database refuses, a bug).
    The error is looked for in ``exc``, its driver error and its causes."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        found = _of(current)
        if found is not None:
            return found
        if isinstance(current, DBAPIError) and current.orig is not None:
            found = _of(current.orig)
            if found is not None:
                return found
            if current.connection_invalidated:
                return DatabaseFailure(_SQLSTATE_CLASS["08"], "disconnected", _first(current.orig))
        current = current.__cause__ or current.__context__
    return None


def _of(exc: BaseException) -> DatabaseFailure | None:
    """The failure a driver error (sqlite3's or psycopg's) is, by its code."""
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(exc, sqlite3.Error) and isinstance(code, int):
        known = _SQLITE.get(code & 0xFF)
        if known is None:
            return None
        name, reason = known
        return DatabaseFailure(reason, name, _first(exc))
    if not _is_psycopg(exc):
        return None
    state = getattr(exc, "sqlstate", None)
    if isinstance(state, str):
        told = _SQLSTATE.get(state) or _SQLSTATE_CLASS.get(state[:2])
        return DatabaseFailure(told, f"SQLSTATE {state}", _first(exc)) if told else None
    if type(exc).__name__ == "OperationalError":  # no SQLSTATE: the client lost the server
        return DatabaseFailure(_SQLSTATE_CLASS["08"], "no SQLSTATE", _first(exc))
    return None


def _is_psycopg(exc: BaseException) -> bool:
    return type(exc).__module__.split(".")[0] == "psycopg"


def _first(exc: BaseException) -> str:
    """The first line of a driver's message (the next ones repeat the SQL)."""
    lines = str(exc).strip().splitlines()
    return lines[0][:300] if lines else ""
