"""SQLite runs with ``secure_delete`` on: an erased member's reference and profile do not
stay in the database file's free space, whatever the SQLite build's default (a stock
build has it off; Debian's has it on). The stock default is forced here by a listener
every engine runs when it connects, as a stock build would be."""

from __future__ import annotations

import csv
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import Engine

from fidelite.privacy import erase_member
from fidelite.processing import EventProcessor
from fidelite.processing.importer import import_members
from fidelite.program import parse_program
from fidelite.store import Database

PROGRAM = """\
id: shop
name: Shop
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
"""
ERASED_AT = datetime(2026, 11, 20, tzinfo=UTC)
SECRETS = (b"CARD-7781", b"zoe.marchand@example.org", b"1988-04-23")


def _stock_default(dbapi_conn: Any, _record: Any) -> None:
    if type(dbapi_conn).__module__.startswith("sqlite3"):
        dbapi_conn.execute("PRAGMA secure_delete=OFF")


@pytest.fixture
def stock_sqlite() -> Iterator[None]:
    """Every engine's new SQLite connections start with secure_delete off."""
    event.listen(Engine, "connect", _stock_default)
    yield
    event.remove(Engine, "connect", _stock_default)


@pytest.fixture
def sqlite_db(stock_sqlite: None, sqlite_template: Path, tmp_path: Path) -> Iterator[Database]:
    path = tmp_path / "fidelite.db"
    shutil.copy(sqlite_template, path)
    database = Database(f"sqlite:///{path}")
    yield database
    database.dispose()


def test_connections_handed_out_have_secure_delete_on(sqlite_db: Database) -> None:
    with sqlite_db.read() as conn:
        assert conn.execute(text("PRAGMA secure_delete")).scalar_one() == 1
    with sqlite_db.write() as conn:
        assert conn.execute(text("PRAGMA secure_delete")).scalar_one() == 1


def test_erased_member_leaves_nothing_in_the_file(sqlite_db: Database, tmp_path: Path) -> None:
    crm = tmp_path / "members.csv"
    with crm.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([
            ["member", "joined_at", "birth_date", "attributes"],
            ["CARD-7781", "2026-11-01T09:00:00+00:00", "1988-04-23",
             '{"name": "Zoe Marchand", "email": "zoe.marchand@example.org"}'],
        ])  # fmt: skip
    processor = EventProcessor(sqlite_db, parse_program(PROGRAM))
    report = import_members(processor, crm, now=datetime(2026, 11, 2, tzinfo=UTC))
    assert report.summary()["rejected"] == 0
    with sqlite_db.write() as conn:
        erase_member(conn, "shop", "CARD-7781", reason="request", at=ERASED_AT)
    sqlite_db.dispose()  # the last connection closed: the WAL is written into the file
    path = Path(str(sqlite_db.url).removeprefix("sqlite:///"))
    content = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    assert {s.decode(): content.count(s) for s in SECRETS} == {s.decode(): 0 for s in SECRETS}
