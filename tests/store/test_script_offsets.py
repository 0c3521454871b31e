"""A script sends times in UTC, on SQLite and PostgreSQL: a time written with an offset
PostgreSQL keeps no room for (beyond +-15:59, e.g. -23:59) is written and compared as
the same instant (it failed the whole write with InvalidTimeZoneDisplacementValue), by
a multi-row insert, by COPY and as a statement's parameter alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import bindparam, func, select, text

from fidelite.processing.tables import member_states
from fidelite.store import Database
from fidelite.store.script import COPY_FROM, Script

FAR_WEST = timezone(-timedelta(hours=23, minutes=59))
FAR_EAST = timezone(timedelta(hours=18))
JOINED = datetime(2026, 2, 28, 10, 0, tzinfo=FAR_WEST)  # 2026-03-01T09:59:00Z
IN_UTC = datetime(2026, 3, 1, 9, 59, tzinfo=UTC)


def _state(ref: str, at: datetime) -> dict[str, object]:
    return {"program_id": "shop", "member_ref": ref, "tier": None, "tier_since": None,
            "review_at": None, "grace_until": datetime(2026, 3, 1, 3, 59, tzinfo=FAR_EAST),
            "assigned_until": None, "segments": [], "attributes": {}, "purchases": 0,
            "joined_at": at, "birth_date": None}  # fmt: skip


@pytest.fixture
def states(db: Database) -> Database:
    with db.write() as conn:
        conn.execute(text("DELETE FROM member_states"))
    return db


@pytest.mark.parametrize("rows", [1, COPY_FROM])  # a VALUES insert, then COPY
def test_times_far_from_utc_are_written_as_the_same_instant(states: Database, rows: int) -> None:
    joined = select(member_states.c.member_ref).where(
        member_states.c.joined_at == bindparam("at"), member_states.c.program_id == "shop"
    )
    with states.write() as conn:
        script = Script(conn)
        script.insert(member_states, [_state(f"m{i:04d}", JOINED) for i in range(rows)])
        found = script.select(joined, {"at": JOINED})  # a parameter with that offset
        script.run()
    assert len(found.all()) == rows
    with states.read() as conn:
        stored = conn.execute(
            select(member_states.c.joined_at, member_states.c.grace_until).limit(1)
        ).one()
        total = conn.execute(select(func.count()).select_from(member_states)).scalar_one()
    assert (total, tuple(stored)) == (rows, (IN_UTC, IN_UTC - timedelta(days=1)))
    assert stored.joined_at.utcoffset() == timedelta(0)


def test_a_parameter_far_from_utc_is_compared_as_the_same_instant(states: Database) -> None:
    with states.write() as conn:
        conn.execute(member_states.insert(), [_state("ann", IN_UTC)])
    since = select(member_states.c.member_ref).where(member_states.c.joined_at >= bindparam("at"))
    with states.read() as conn:
        script = Script(conn)
        same = script.select(since, {"at": JOINED})
        later = script.select(since, {"at": JOINED + timedelta(seconds=1)})
        script.run()
    assert ([tuple(r) for r in same], later.all()) == ([("ann",)], [])
