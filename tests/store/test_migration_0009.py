"""Migration 0009 on a database holding redemptions, upgraded by ``fidelite db upgrade``
as a user does (SQLite and PostgreSQL): every redemption is kept, reads ``active`` (not
used), its code is found, and it can then be used and no longer cancelled."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from fidelite.store import Database
from fidelite.store.migrate import current_revision, head_revision
from tests.cli.support import as_json, fidelite
from tests.conftest import BACKENDS, PG_ADMIN_URL, _pg_url

PROGRAM = """\
id: shop
name: Shop
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
rewards:
  - {id: mug, name: Mug, kind: free_product, sku: MUG, cost: 100}
"""
CODE = "RW-0000-0000-0000-0"  # any text: the table does not check codes
REDEEMED = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


@pytest.fixture(params=BACKENDS)
def old_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """An empty database migrated to 0008 only."""
    if request.param == "sqlite":
        database = Database(f"sqlite:///{tmp_path / 'old.db'}")
        database.upgrade("0008")
        yield database
        database.dispose()
        return
    request.getfixturevalue("pg_server")  # skips (or fails under CI) without a server
    admin = create_engine(_pg_url(PG_ADMIN_URL.rsplit("/", 1)[1]), isolation_level="AUTOCOMMIT")
    name = f"fidelite_mig_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    database = Database(_pg_url(name))
    database.upgrade("0008")
    yield database
    database.dispose()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_db_upgrade_keeps_redemptions_active_and_usable(old_db: Database, tmp_path: Path) -> None:
    with old_db.write() as conn:  # the columns of 0008
        for rid, status in ((1, "active"), (2, "cancelled")):
            conn.execute(
                text(
                    "INSERT INTO redemptions (id, program_id, member_ref, reward_id, key, "
                    "points, transaction_id, code, status, redeemed_at, cancel_transaction_id) "
                    "VALUES (:id, 'shop', 'ann', 'mug', :key, 100, :tx, :code, :status, :at, "
                    ":back)"
                ),
                {"id": rid, "key": f"api:k{rid}", "tx": 100 + rid,
                 "code": CODE if rid == 1 else "RW-1111-1111-1111-1", "status": status,
                 "at": REDEEMED, "back": 200 + rid if status == "cancelled" else None},
            )  # fmt: skip
    url = old_db.url
    fidelite("db", "upgrade", db=url)
    assert current_revision(old_db) == head_revision(old_db)
    with old_db.read() as conn:
        columns = {c["name"] for c in inspect(conn).get_columns("redemptions")}
        indexes = {i["name"] for i in inspect(conn).get_indexes("redemptions")}
        kept = conn.execute(text("SELECT id, status, used_at, used_store FROM redemptions "
                                 "ORDER BY id")).all()  # fmt: skip
    assert {"used_at", "used_store", "used_key"} <= columns
    assert {"ix_redemptions_code", "ix_redemptions_member"} <= indexes
    assert [tuple(r) for r in kept] == [(1, "active", None, None), (2, "cancelled", None, None)]

    program = tmp_path / "shop.yaml"
    program.write_text(PROGRAM, encoding="utf-8")
    (tmp_path / "crm.csv").write_text("member\nann\n", encoding="utf-8")
    fidelite("import", "members", tmp_path / "crm.csv", "-p", program, db=url)
    shown = as_json(fidelite("rewards", "show", "1", "-p", program, "-f", "json", db=url))
    assert (shown["status"], shown["code"]) == ("active", CODE)
    used = as_json(fidelite("rewards", "use", "1", "--key", "till-1", "--store", "paris-04",
                            "-p", program, "-f", "json", db=url))  # fmt: skip
    assert (used["status"], used["used_store"], used["replayed"]) == ("used", "paris-04", False)
    refused = fidelite("rewards", "cancel", "1", "-p", program, "-f", "json", db=url, ok=False)
    assert as_json(refused)["error"]["code"] == "redemption_used"
    other = fidelite("rewards", "use", "2", "--key", "till-2", "-p", program, "-f", "json",
                     db=url, ok=False)  # fmt: skip
    assert as_json(other)["error"]["code"] == "redemption_cancelled"
