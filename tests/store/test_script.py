"""Scripts: statements run together (one message on PostgreSQL), in order, with rows read
back through their column types, checks on row counts, and refusals raised as SQLAlchemy
exceptions that leave nothing behind."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import bindparam, func, select, text
from sqlalchemy.exc import IntegrityError

from fidelite.processing.tables import events, member_states
from fidelite.store import Database
from fidelite.store.locking import ConcurrentUpdateError
from fidelite.store.script import COPY_FROM, Script, one_of

AT = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
PID = bindparam("pid")


def _state(ref: str, at: datetime = AT) -> dict[str, object]:
    return {"program_id": "shop", "member_ref": ref, "tier": None, "tier_since": None,
            "review_at": None, "grace_until": None, "assigned_until": None,
            "segments": ["vip", "o'hare"], "attributes": {"note": "it's \\ fine"},
            "purchases": 0, "joined_at": at, "birth_date": None}  # fmt: skip


def _count(db: Database) -> int:
    with db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(member_states)).scalar_one())


@pytest.fixture
def states(db: Database) -> Database:
    with db.write() as conn:
        conn.execute(text("DELETE FROM member_states"))
    return db


def test_statements_run_in_order_and_rows_come_back_typed(states: Database) -> None:
    query = select(member_states).where(
        member_states.c.program_id == PID,
        one_of(member_states.c.member_ref, "refs", states.is_postgres),
    )
    with states.write() as conn:
        script = Script(conn)
        before = script.select(query, {"pid": "shop", "refs": ["ann", "o'brien"]})
        script.insert(member_states, [_state("ann"), _state("o'brien", AT + timedelta(1))])
        after = script.select(query, {"pid": "shop", "refs": ["ann", "o'brien"]})
        script.increment("member_states", "purchases", {"member_ref": "text"},
                         [(("ann",), 2), (("o'brien",), 5)],
                         fixed={"program_id": "shop"})  # fmt: skip
        counted = script.select(select(member_states.c.member_ref, member_states.c.purchases)
                                .order_by(member_states.c.member_ref))  # fmt: skip
        assert len(script) == 5
        script.run()
        assert len(script) == 0
    assert before.all() == []
    rows = sorted(after.all(), key=lambda r: r.member_ref)
    assert [r.member_ref for r in rows] == ["ann", "o'brien"]
    assert rows[1].joined_at == AT + timedelta(1) and rows[1].joined_at.utcoffset() == timedelta(0)
    assert rows[0].segments == ["vip", "o'hare"]
    assert rows[0].attributes == {"note": "it's \\ fine"}
    assert [tuple(r) for r in counted] == [("ann", 2), ("o'brien", 5)]


def test_rows_are_not_there_before_the_run(states: Database) -> None:
    with states.write() as conn:
        rows = Script(conn).select(select(member_states))
        with pytest.raises(RuntimeError, match="not run"):
            rows.all()


def test_a_refused_increment_fails_the_run_and_the_transaction_keeps_nothing(
    states: Database,
) -> None:
    with pytest.raises(ConcurrentUpdateError, match="1 of 2 changes refused"):  # noqa: SIM117
        with states.write() as conn:
            script = Script(conn)
            script.insert(member_states, [_state("ann")])
            script.increment("member_states", "purchases", {"member_ref": "text"},
                             [(("ann",), 1), (("nobody",), 1)],
                             fixed={"program_id": "shop"})  # fmt: skip
            script.run()
    assert _count(states) == 0


def test_a_row_the_database_refuses_raises_its_sqlalchemy_error(states: Database) -> None:
    with pytest.raises(IntegrityError):  # noqa: SIM117
        with states.write() as conn:
            script = Script(conn)
            script.insert(member_states, [_state("ann")])
            script.insert(member_states, [_state("ann")])  # the same key again
            script.run()
    assert _count(states) == 0


def test_many_rows_go_by_copy_between_the_statements_around_them(states: Database) -> None:
    many = [_state(f"m{i:04d}") for i in range(COPY_FROM + 5)]
    with states.write() as conn:
        script = Script(conn)
        script.insert(member_states, [_state("first")])
        script.insert(member_states, many)
        total = script.select(select(func.count()).select_from(member_states))
        script.run()
    assert total.all()[0][0] == COPY_FROM + 6
    assert _count(states) == COPY_FROM + 6


def test_rows_with_other_columns_are_refused(states: Database) -> None:
    with states.write() as conn, pytest.raises(ValueError, match="same columns"):
        Script(conn).insert(member_states, [_state("a"), {"program_id": "shop"}])


def test_one_of_matches_every_listed_value(db: Database) -> None:
    query = select(events.c.event_id).where(one_of(events.c.event_id, "ids", db.is_postgres))
    with db.write() as conn:
        script = Script(conn)
        rows = script.select(query, {"ids": ["none", "of'these"]})
        script.run()
    assert rows.all() == []
