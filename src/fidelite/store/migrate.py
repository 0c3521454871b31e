"""Alembic migrations, run programmatically (no ``alembic.ini`` to ship or find).

The same migration scripts serve SQLite and PostgreSQL; dialect-specific pieces (the
append-only triggers) branch on the dialect inside the script.

Upgrades of one PostgreSQL database run one at a time: :func:`upgrade` holds an advisory
lock for its whole run, so a second ``fidelite db upgrade`` (or ``fidelite serve``
starting at the same moment) waits for the first, then finds the schema at head and has
nothing to do; without it both created the same tables and one failed half-way.

A database at a revision these scripts do not have was upgraded by a newer fidelite:
:func:`upgrade` refuses it with :class:`NewerSchema`, which names the revision (this
fidelite can neither upgrade nor read it; running the newer version is the way out).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text

if TYPE_CHECKING:
    from fidelite.store.database import Database

MIGRATIONS = Path(__file__).parent / "migrations"
UPGRADE_LOCK = 7_215_020_141_105_552
"""PostgreSQL advisory lock key held while migrations run (one upgrade at a time)."""


class NewerSchema(Exception):
    """The database is at a schema revision this fidelite does not ship."""

    def __init__(self, revision: str, head: str | None) -> None:
        self.revision = revision
        self.head = head
        super().__init__(
            f"the database was upgraded by a newer fidelite: it is at schema revision "
            f"{revision}, which this fidelite does not know (its newest is {head}); "
            "use that newer fidelite"
        )


@cache
def known_revisions() -> frozenset[str]:
    """Every revision shipped with this version of fidelite."""
    return frozenset(r.revision for r in ScriptDirectory(str(MIGRATIONS)).walk_revisions())


def check_known(revision: str | None) -> None:
    """Raise :class:`NewerSchema` when ``revision`` (a database's) is not one of ours;
    ``None`` (an empty database) and our own revisions pass."""
    if revision is not None and revision not in known_revisions():
        raise NewerSchema(revision, ScriptDirectory(str(MIGRATIONS)).get_current_head())


def alembic_config(db: Database) -> Config:
    """An Alembic config pointing at our scripts and at ``db``."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", db.url.replace("%", "%%"))
    cfg.attributes["engine"] = db.writer
    return cfg


@contextmanager
def upgrade_lock(db: Database) -> Iterator[None]:
    """Hold the upgrade lock of ``db`` (PostgreSQL; nothing on SQLite).

    A session-level advisory lock on a connection of its own, outside the migrations'
    transaction: it waits for any other upgrade of the same database to end (commit or
    roll back), and the server releases it should this process die.
    """
    if not db.is_postgres:
        yield
        return
    with db.writer.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": UPGRADE_LOCK})
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": UPGRADE_LOCK})


def upgrade(db: Database, revision: str = "head") -> None:
    """Bring the schema of ``db`` up to ``revision``, one upgrade at a time (the
    revision is read once the lock is held, so a waiting upgrade finds the work done).

    Raises :class:`NewerSchema`, changing nothing, when a newer fidelite upgraded ``db``.
    """
    with upgrade_lock(db):
        check_known(current_revision(db))
        command.upgrade(alembic_config(db), revision)


def current_revision(db: Database) -> str | None:
    """The revision the database is at (None for an empty database)."""
    with db.writer.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision(db: Database) -> str | None:
    """The newest revision shipped with this version of fidelite."""
    return ScriptDirectory.from_config(alembic_config(db)).get_current_head()
