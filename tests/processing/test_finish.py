"""``process_events(..., finish=...)``: what a caller writes with the events' answers
(the API's stored answers) is written once, in the same transaction, after the events;
with the events' own write message when the batch takes the fast path in one piece.

On real databases (SQLite file and PostgreSQL); the caller's statements go to a table of
the test's own.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Column, MetaData, String, Table, func, select

import fidelite.store.script as script_module
from fidelite.engine import Event
from fidelite.ledger import Ledger
from fidelite.processing import EventProcessor
from fidelite.processing.batch import Answer, process_events
from fidelite.processing.processor import Result
from fidelite.processing.tables import events as recorded_events
from fidelite.program import parse_program
from fidelite.store import Database
from fidelite.store.script import Script
from tests.processing.test_batch import START, UNCAPPED

log = Table("finish_log", MetaData(), Column("event_id", String(64), primary_key=True),
            Column("answer", String(32)))  # fmt: skip


@pytest.fixture
def logged(db: Database) -> Iterator[Database]:
    log.create(db.writer, checkfirst=True)
    yield db
    log.drop(db.writer)


def purchase(event_id: str, amount: str = "12.50", kind: str = "purchase", **more: Any) -> Event:
    return Event.model_validate(
        {"id": event_id, "type": kind, "member": "m0", "at": START, "amount": amount, **more}
    )


class Finisher:
    """A caller's ``finish``: one row per answer, and each call remembered."""

    def __init__(self) -> None:
        self.calls: list[list[Answer]] = []

    def __call__(self, script: Script, answers: list[Answer]) -> None:
        self.calls.append(answers)
        script.insert(log, [{"event_id": _id(a), "answer": _kind(a)} for a in answers])


def _id(answer: Answer) -> str:
    assert isinstance(answer, Result)
    return answer.event_id


def _kind(answer: Answer) -> str:
    return answer.outcome.value if isinstance(answer, Result) else type(answer).__name__


def _rows(db: Database) -> list[tuple[str, str]]:
    with db.read() as conn:
        return sorted((r.event_id, r.answer) for r in conn.execute(select(log)))


def _recorded(db: Database) -> int:
    with db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(recorded_events)).scalar_one())


def _apply(db: Database, batch: list[Event], finish: Finisher, savepoint: bool) -> list[Answer]:
    processor = EventProcessor(db, parse_program(UNCAPPED))
    with db.write() as conn:
        return process_events(processor, conn, batch, savepoint=savepoint, finish=finish)


@pytest.mark.parametrize("savepoint", [False, True])
def test_finish_runs_once_with_every_answer_after_the_events(
    logged: Database, savepoint: bool
) -> None:
    finish = Finisher()
    batch = [purchase(f"p{i}") for i in range(3)]
    answers = _apply(logged, batch, finish, savepoint)
    assert finish.calls == [answers]
    assert _rows(logged) == [("p0", "processed"), ("p1", "processed"), ("p2", "processed")]
    assert _recorded(logged) == 3

    with logged.write() as conn:
        conn.execute(log.delete())
    again = Finisher()  # a duplicate beside a new event: every answer, once
    answers = _apply(logged, [purchase("p0"), purchase("p3")], again, savepoint)
    assert [_kind(a) for a in answers] == ["duplicate", "processed"]
    assert again.calls == [answers]
    assert _rows(logged) == [("p0", "duplicate"), ("p3", "processed")]
    assert _recorded(logged) == 4


def test_only_duplicates_still_finish_once(logged: Database) -> None:
    _apply(logged, [purchase("p0")], Finisher(), False)
    with logged.write() as conn:
        conn.execute(log.delete())
    finish = Finisher()  # the batch writes nothing: the caller's rows go on their own
    answers = _apply(logged, [purchase("p0")], finish, False)
    assert [_kind(a) for a in answers] == ["duplicate"]
    assert finish.calls == [answers]
    assert _rows(logged) == [("p0", "duplicate")]


def test_a_refund_in_the_group_finishes_once_after_every_event(logged: Database) -> None:
    finish = Finisher()
    batch = [purchase("p0"), purchase("r0", "12.50", "refund", refund_of="p0"), purchase("p1")]
    answers = _apply(logged, batch, finish, False)
    assert [_kind(a) for a in answers] == ["processed", "processed", "processed"]
    assert finish.calls == [answers]
    assert [r[0] for r in _rows(logged)] == ["p0", "p1", "r0"]


def test_the_single_path_fallback_finishes_once(logged: Database) -> None:
    # a member known to the ledger but not to the program: one event at a time
    ledger = Ledger(logged)
    ledger.open_program("plain", ["points"])
    ledger.create_member("plain", "m0")
    finish = Finisher()
    answers = _apply(logged, [purchase("f1"), purchase("f2")], finish, False)
    assert [_kind(a) for a in answers] == ["processed", "processed"]
    assert finish.calls == [answers]
    assert _rows(logged) == [("f1", "processed"), ("f2", "processed")]


def test_a_refused_finish_leaves_no_event_recorded(logged: Database) -> None:
    with logged.write() as conn:
        conn.execute(log.insert().values(event_id="p1", answer="taken"))  # p1's key is taken
    with pytest.raises(Exception, match=r"finish_log|UNIQUE|unique"):
        _apply(logged, [purchase("p0"), purchase("p1")], Finisher(), False)
    assert _recorded(logged) == 0  # the events and the caller's rows commit together or not
    assert _rows(logged) == [("p1", "taken")]


@pytest.mark.postgres
def test_on_postgresql_the_callers_rows_go_in_the_events_write_message(
    request: pytest.FixtureRequest, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.conftest import make_database

    db = make_database("postgresql", request, tmp_path)
    log.create(db.writer, checkfirst=True)
    messages: list[list[str]] = []
    send = script_module._send

    def spy(conn: Any, statements: list[Any]) -> None:  # the real send; its inserts noted
        tables = [getattr(s.statement, "table", None) for s in statements]
        messages.append([t.name for t in tables if isinstance(t, Table)])
        send(conn, statements)

    monkeypatch.setattr(script_module, "_send", spy)
    try:
        _apply(db, [purchase(f"p{i}") for i in range(3)], Finisher(), False)
    finally:
        log.drop(db.writer)
        db.dispose()
    writes = [m for m in messages if "finish_log" in m]
    assert len(writes) == 1, messages
    assert writes[0].index(recorded_events.name) < writes[0].index("finish_log"), writes
