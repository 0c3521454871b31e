"""Helpers shared by commands that work on the program database."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from fidelite.cli.output import OutputFormat, fail
from fidelite.ledger import Ledger, Rejected
from fidelite.store import Database
from fidelite.store.migrate import current_revision, head_revision

T = TypeVar("T")


def open_ledger(db: str | None, fmt: OutputFormat) -> Ledger:
    """A ledger on ``db``, refusing a database that is missing or not migrated."""
    database = Database(db)
    try:
        revision = current_revision(database)
    except Exception as exc:
        fail(f"cannot open {database.url}: {str(exc).splitlines()[0]}", code="db", fmt=fmt)
    if revision != head_revision(database):
        fail(
            f"{database.url} is at schema revision {revision or 'none'}; "
            "run `fidelite db upgrade` first",
            code="db_not_upgraded",
            fmt=fmt,
        )
    return Ledger(database)


def run(action: Callable[[], T], fmt: OutputFormat) -> T:
    """Run a ledger call; a rejection becomes a clear error and a non-zero exit."""
    try:
        return action()
    except Rejected as rejected:
        extra = {"field": rejected.field} if rejected.field else {}
        if rejected.detail:
            extra["detail"] = rejected.detail  # type: ignore[assignment]
        fail(rejected.message, code=rejected.code.value, fmt=fmt, **extra)
