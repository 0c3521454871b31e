"""Migration 0007 on a database holding tier timelines: each manual assignment gets the
end the store knows (the member's next timeline entry in time order when it is the
assignment's expiry or another assignment, none after an upgrade, the member's current
assignment end for the latest), on SQLite and PostgreSQL; the coupon rollbacks table
comes empty."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import create_engine, insert, inspect, select, text

from fidelite.processing.tables import coupon_rollbacks, member_states, tier_changes
from fidelite.store import Database
from fidelite.store.migrate import alembic_config, current_revision
from tests.conftest import BACKENDS, PG_ADMIN_URL, _pg_url


def at(day: str) -> datetime:
    return datetime.fromisoformat(f"{day}T09:00:00+00:00")


@pytest.fixture(params=BACKENDS)
def old_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """An empty database migrated to 0006 only."""
    if request.param == "sqlite":
        database = Database(f"sqlite:///{tmp_path / 'old.db'}")
        database.upgrade("0006")
        yield database
        database.dispose()
        return
    request.getfixturevalue("pg_server")  # skips (or fails under CI) without a server
    admin = create_engine(_pg_url(PG_ADMIN_URL.rsplit("/", 1)[1]), isolation_level="AUTOCOMMIT")
    name = f"fidelite_mig_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    database = Database(_pg_url(name))
    database.upgrade("0006")
    yield database
    database.dispose()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def change(ref: str, row_id: int, kind: str, day: str, to: str) -> dict[str, object]:
    return {
        "id": row_id,
        "program_id": "shop",
        "member_ref": ref,
        "at": at(day),
        "kind": kind,
        "from_tier": "bronze",
        "to_tier": to,
        "value": 0,
        "reason": "r",
        "event_id": None,
    }


def member(ref: str, assigned_until: datetime | None) -> dict[str, object]:
    return {
        "program_id": "shop",
        "member_ref": ref,
        "tier": "gold",
        "tier_since": at("2026-01-01"),
        "assigned_until": assigned_until,
        "segments": [],
        "attributes": {},
        "purchases": 0,
    }


def test_assignments_get_the_end_the_store_knows(old_db: Database) -> None:
    with old_db.write() as conn:
        conn.execute(
            insert(member_states),
            [
                member("ann", None),
                member("bob", at("2026-09-01")),
                member("cid", None),
                member("dan", None),
                member("eve", at("2026-10-01")),
            ],
        )
        rows = [
            change("ann", 1, "assigned", "2026-02-01", "gold"),  # ran to its end
            change("ann", 2, "assignment_expired", "2026-06-01", "silver"),
            change("bob", 3, "assigned", "2026-03-01", "gold"),  # replaced by an upgrade
            change("bob", 4, "upgrade", "2026-04-01", "platinum"),
            change("bob", 5, "assigned", "2026-05-01", "gold"),  # in force
            change("cid", 6, "upgrade", "2026-05-01", "silver"),
            # dan's entries by id are not in time order: the expiry (lower id) follows
            # the assignment; the upgrade (higher id) comes after the expiry.
            change("dan", 7, "assignment_expired", "2026-07-01", "silver"),
            change("dan", 8, "assigned", "2026-02-01", "gold"),
            change("dan", 9, "upgrade", "2026-08-01", "gold"),
            change("eve", 10, "assigned", "2026-02-01", "gold"),  # replaced by another
            change("eve", 11, "assigned", "2026-03-01", "platinum"),  # in force
        ]
        conn.execute(insert(tier_changes), rows)  # the columns of 0006: keys given
    old_db.upgrade("0007")
    assert current_revision(old_db) == "0007"
    with old_db.read() as conn:
        ends = conn.execute(
            select(tier_changes.c.id, tier_changes.c.assigned_until).order_by(tier_changes.c.id)
        ).all()
        rollbacks = conn.execute(select(coupon_rollbacks)).all()
    assert [(i, None if end is None else end.astimezone(UTC)) for i, end in ends] == [
        (1, at("2026-06-01")),
        (2, None),
        (3, None),  # the end the operator set is unknown: not the upgrade's date
        (4, None),
        (5, at("2026-09-01")),
        (6, None),
        (7, None),
        (8, at("2026-07-01")),
        (9, None),
        (10, at("2026-03-01")),
        (11, at("2026-10-01")),
    ]
    assert rollbacks == []


def test_downgrade_to_0006_and_up_again(old_db: Database) -> None:
    old_db.upgrade()
    command.downgrade(alembic_config(old_db), "0006")
    assert current_revision(old_db) == "0006"
    with old_db.read() as conn:
        assert "assigned_until" not in [
            c["name"] for c in inspect(conn).get_columns("tier_changes")
        ]
        assert not inspect(conn).has_table("coupon_rollbacks")
    old_db.upgrade("0007")
    assert current_revision(old_db) == "0007"
