"""Helpers shared by commands that work on the program database."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn, TypeVar

from sqlalchemy.engine import make_url

from fidelite.cli.output import OutputFormat, fail
from fidelite.ledger import Ledger, Rejected
from fidelite.store import Database, resolve_url
from fidelite.store.migrate import NewerSchema, check_known, current_revision, head_revision
from fidelite.store.urls import display_url, scrub

T = TypeVar("T")


def database_label(db: str | None) -> str:
    """How messages name the database ``db`` selects (``--db``, ``FIDELITE_DB`` or
    ``fidelite.db``): its URL without a password."""
    return display_url(resolve_url(db))


def _reason(exc: BaseException, db: str | None) -> str:
    """The first line of a failure's text, any database URL in it without its password."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    return scrub(first, resolve_url(db), db or "")


def _newer(exc: NewerSchema, db: str | None, fmt: OutputFormat | None) -> NoReturn:
    fail(f"{database_label(db)}: {exc}", code="db_too_new", fmt=fmt)


def _sqlite_file(database: Database) -> Path | None:
    """The file of a SQLite database (None for PostgreSQL or an in-memory database)."""
    if database.dialect != "sqlite":
        return None
    name = make_url(database.url).database
    if not name or name == ":memory:" or name.startswith("file:"):
        return None
    return Path(name)


def open_database(db: str | None, fmt: OutputFormat | None) -> Database:
    """The existing database ``db``, for commands that only read or change rows: a
    missing SQLite file is an error (never created), a URL that names no usable database
    (an unsupported backend, a malformed URL) is a clear error, not a traceback."""
    try:
        database = Database(db)
    except Exception as exc:
        fail(f"cannot open {database_label(db)}: {_reason(exc, db)}", code="db", fmt=fmt)
    path = _sqlite_file(database)
    if path is not None and path.is_dir():
        database.dispose()
        fail(f"{path} is a directory, not a database file", code="db", fmt=fmt)
    if path is not None and not path.is_file():
        database.dispose()
        fail(
            f"database file not found: {path} (create it with "
            f"`fidelite db upgrade --db {shlex.quote(str(path))}`)",
            code="db_not_found",
            fmt=fmt,
        )
    return database


def schema_revision(database: Database, db: str | None, fmt: OutputFormat | None) -> str | None:
    """The schema revision of ``database``; an unreachable server or an unreadable file
    is a clear error, and so is a revision a newer fidelite made."""
    try:
        revision = current_revision(database)
    except Exception as exc:
        fail(f"cannot open {database_label(db)}: {_reason(exc, db)}", code="db", fmt=fmt)
    try:
        check_known(revision)
    except NewerSchema as exc:
        _newer(exc, db, fmt)
    return revision


def upgrade_database(db: str | None, fmt: OutputFormat | None = None) -> Database:
    """The database ``db``, created or brought to the newest schema; any failure (a
    newer fidelite's database, an unreachable server, a directory that does not exist)
    is a clear error and a non-zero exit, not a traceback."""
    try:
        database = Database(db)
        database.upgrade()
    except NewerSchema as exc:
        _newer(exc, db, fmt)
    except Exception as exc:  # infrastructure: unreachable server, bad URL, read-only file
        fail(f"cannot upgrade {database_label(db)}: {_reason(exc, db)}", code="db", fmt=fmt)
    return database


def open_migrated(db: str | None, fmt: OutputFormat | None) -> Database:
    """The database ``db``, refused (a clear error, a non-zero exit, nothing created or
    changed) when it is missing, unreachable, not migrated or migrated by a newer
    fidelite."""
    database = open_database(db, fmt)
    revision = schema_revision(database, db, fmt)
    if revision != head_revision(database):
        database.dispose()
        fail(
            f"{database_label(db)} is at schema revision {revision or 'none'}; "
            "run `fidelite db upgrade` first",
            code="db_not_upgraded",
            fmt=fmt,
        )
    return database


def open_ledger(db: str | None, fmt: OutputFormat) -> Ledger:
    """A ledger on ``db``, refusing a database that is missing or not migrated (see
    :func:`open_migrated`)."""
    return Ledger(open_migrated(db, fmt))


def run(action: Callable[[], T], fmt: OutputFormat) -> T:
    """Run a ledger call; a rejection becomes a clear error and a non-zero exit."""
    try:
        return action()
    except Rejected as rejected:
        extra = {"field": rejected.field} if rejected.field else {}
        if rejected.detail:
            extra["detail"] = rejected.detail  # type: ignore[assignment]
        fail(rejected.message, code=rejected.code.value, fmt=fmt, **extra)
