"""Group commit: concurrent callers' events share transactions, each gets its own answer.

A held write (the SQLite write lock, or on PostgreSQL a member's ledger lock) keeps the
first caller's group waiting, so the callers behind it queue and form one group: the
grouping is deterministic, not left to thread timing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal

import pytest
from sqlalchemy import Connection, func, select, text
from sqlalchemy.exc import DBAPIError

from fidelite.engine import Event
from fidelite.ledger import Ledger, assert_invariants
from fidelite.processing import EventProcessor
from fidelite.processing.group_commit import EventGroupCommit, Then
from fidelite.processing.processor import Outcome, ProcessingError, Result
from fidelite.processing.tables import events as processed_events
from fidelite.program import parse_program
from fidelite.store import Database

PROGRAM = """\
id: shop
name: Shop
time_zone: Europe/Paris
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
"""
AT = "2026-11-20T10:00:00+01:00"
# beyond the events table's NUMERIC(18, 4): PostgreSQL refuses the row (a DataError)
HUGE = {"id": "huge", "type": "purchase", "member": "bob", "at": AT, "amount": Decimal("1e15")}


def purchase(event_id: str, member: str, amount: str) -> Event:
    return Event.model_validate(
        {"id": event_id, "type": "purchase", "member": member, "at": AT, "amount": amount}
    )


def refund(event_id: str, member: str, amount: str, of: str) -> Event:
    return Event.model_validate({"id": event_id, "type": "refund", "member": member, "at": AT,
                                 "amount": amount, "refund_of": of})  # fmt: skip


@contextmanager
def writes_held(db: Database, processor: EventProcessor, member: str) -> Iterator[None]:
    """Block the next transaction that writes for ``member`` until the block ends."""
    if db.is_postgres:
        with db.write() as conn:
            processor.ledger.lock(conn, "shop", member)
            yield
    else:
        assert db._write_lock is not None
        with db._write_lock:
            yield


class Callers:
    """One thread per submitted event; answers (or raised errors) in submission order."""

    def __init__(self, group: EventGroupCommit, then: Then | None = None) -> None:
        self.group, self.then = group, then
        self.threads: list[threading.Thread] = []
        self.answers: list[Result | BaseException | None] = []

    def submit(self, event: Event) -> None:
        slot = len(self.answers)
        self.answers.append(None)

        def call() -> None:
            try:
                self.answers[slot] = self.group.process(event, self.then)
            except BaseException as exc:
                self.answers[slot] = exc

        thread = threading.Thread(target=call)
        thread.start()
        self.threads.append(thread)

    def wait_queued(self, count: int) -> None:
        deadline = time.monotonic() + 30
        while len(self.group._queue) < count:
            assert time.monotonic() < deadline, "the callers never queued"
            time.sleep(0.005)

    def wait_leading(self) -> None:
        """Until the writer has taken the first caller's item as a group of its own (it
        then waits on the held write, and what is submitted next queues behind it)."""
        deadline = time.monotonic() + 30
        while self.group.groups < 1 or self.group._queue:
            assert time.monotonic() < deadline, "the writer never took the first item"
            time.sleep(0.005)

    def join(self) -> None:
        for thread in self.threads:
            thread.join(60)


def balance(ledger: Ledger, member: str) -> int:
    return ledger.balance("shop", member, "points").available


def recorded(db: Database) -> int:
    with db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(processed_events)).scalar_one())


def setup(db: Database) -> tuple[EventProcessor, EventGroupCommit]:
    processor = EventProcessor(db, parse_program(PROGRAM))
    processor.process(purchase("seed", "first", "1"))  # enrols the member held below
    return processor, EventGroupCommit(processor)


def run_grouped(db: Database, processor: EventProcessor, group: EventGroupCommit,
                queued: list[Event]) -> Callers:  # fmt: skip
    """A first caller blocked by a held write, then ``queued`` submitted behind it."""
    callers = Callers(group)
    with writes_held(db, processor, "first"):
        callers.submit(purchase("opener", "first", "1"))
        callers.wait_leading()  # the opener leads (it left the queue) and waits
        for number, event in enumerate(queued, 1):
            callers.submit(event)
            callers.wait_queued(number)  # one at a time: the queue keeps this order
    callers.join()
    return callers


def test_queued_callers_form_one_group_and_get_their_own_answers(db: Database) -> None:
    processor, group = setup(db)
    queued = [
        purchase("a1", "ann", "10.50"),
        purchase("b1", "bob", "20"),
        purchase("a2", "ann", "5"),
        purchase("a1", "ann", "10.50"),  # the same event again: a duplicate
        refund("r1", "bob", "5", of="b1"),  # refunds a purchase of the same group
        refund("x1", "bob", "5", of="nope"),  # refused: unknown purchase
        purchase("c1", "cy", "7"),
    ]
    callers = run_grouped(db, processor, group, queued)

    assert (group.groups, group.items) == (2, 1 + len(queued))  # the opener, then the rest
    opener, a1, b1, a2, again, r1, x1, c1 = callers.answers
    assert [a.outcome for a in (opener, a1, b1, a2, again, r1, c1)] == [  # type: ignore[union-attr]
        Outcome.processed, Outcome.processed, Outcome.processed, Outcome.processed,
        Outcome.duplicate, Outcome.processed, Outcome.processed,
    ]  # fmt: skip
    assert isinstance(x1, ProcessingError) and x1.code == "unknown_purchase"
    assert isinstance(b1, Result) and isinstance(r1, Result)
    assert [(r.points, r.direction) for r in b1.receipts] == [(20, "credit")]
    assert [(r.points, r.direction) for r in r1.receipts] == [(5, "debit")]
    ledger = processor.ledger
    assert (balance(ledger, "ann"), balance(ledger, "bob"), balance(ledger, "cy")) == (15, 15, 7)
    assert recorded(db) == 1 + 1 + 5  # seed, opener, a1 a2 b1 r1 c1
    assert_invariants(db, "shop")


def test_many_concurrent_callers_post_every_point_once(db: Database) -> None:
    processor, group = setup(db)
    members = [f"m{i}" for i in range(6)]
    events = [purchase(f"e{i}", members[i % 6], f"{1 + i % 9}") for i in range(120)]
    results: list[Result] = []
    lock = threading.Lock()

    def caller(mine: list[Event]) -> None:
        for event in mine:
            result = group.process(event)
            with lock:
                results.append(result)

    threads = [threading.Thread(target=caller, args=(events[i::12],)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)

    assert sorted(r.event_id for r in results) == sorted(e.id for e in events)
    assert all(r.outcome is Outcome.processed for r in results)
    for member in members:
        expected = sum(int(e.amount or 0) for e in events if e.member == member)
        assert balance(processor.ledger, member) == expected
    assert group.items == 120 and group.groups <= 120
    assert recorded(db) == 1 + 120
    assert_invariants(db, "shop")


@pytest.mark.postgres
@pytest.mark.parametrize("db", ["postgresql"], indirect=True)
def test_a_failing_event_fails_alone(db: Database) -> None:
    """An amount beyond the events table's precision fails the group's transaction; the
    events are then applied one by one: the others succeed, the failure is its own."""
    processor, group = setup(db)
    queued = [
        purchase("g1", "ann", "3"),
        # validation refuses such an amount (MAX_AMOUNT): set it past validation
        Event.model_validate({**HUGE, "amount": "1"}).model_copy(update={"amount": HUGE["amount"]}),
        purchase("g2", "cy", "4"),
    ]
    callers = run_grouped(db, processor, group, queued)

    opener, g1, huge, g2 = callers.answers
    assert (group.groups, group.items) == (2, 4)  # failed together, then applied alone
    assert isinstance(huge, DBAPIError)
    assert [a.outcome for a in (opener, g1, g2)] == [Outcome.processed] * 3  # type: ignore[union-attr]
    assert (balance(processor.ledger, "ann"), balance(processor.ledger, "cy")) == (3, 4)
    assert recorded(db) == 1 + 3  # seed, opener, g1, g2: nothing of "huge"
    assert_invariants(db, "shop")


def test_max_group_must_be_positive(db: Database) -> None:
    processor = EventProcessor(db, parse_program(PROGRAM))
    with pytest.raises(ValueError, match="max_group"):
        EventGroupCommit(processor, 0)


def test_then_commits_with_its_event_and_a_failing_then_fails_alone(db: Database) -> None:
    """``then`` writes in the event's transaction: its rows exist exactly for the events
    applied. A ``then`` that raises fails the group; applied alone, only its event fails."""
    processor, group = setup(db)
    with db.write() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS t_then (event_id VARCHAR(50) PRIMARY KEY)"))

    def then(conn: Connection, answer: object) -> None:
        assert isinstance(answer, Result)
        if answer.event_id == "bad":
            raise ValueError("refused by then")
        conn.execute(text("INSERT INTO t_then VALUES (:e)"), {"e": answer.event_id})

    callers = Callers(group, then)
    with writes_held(db, processor, "first"):
        callers.submit(purchase("opener", "first", "1"))
        callers.wait_leading()
        for number, event_id in enumerate(("t1", "bad", "t2"), 1):
            callers.submit(purchase(event_id, f"member-{event_id}", "2"))
            callers.wait_queued(number)
    callers.join()

    opener, t1, bad, t2 = callers.answers
    assert isinstance(bad, ValueError)
    assert [a.outcome for a in (opener, t1, t2)] == [Outcome.processed] * 3  # type: ignore[union-attr]
    with db.read() as conn:
        kept = conn.execute(text("SELECT event_id FROM t_then ORDER BY 1")).scalars().all()
    assert kept == ["opener", "t1", "t2"]
    assert recorded(db) == 1 + 3  # seed, opener, t1, t2: nothing of "bad"
    assert processor.member_profile("member-bad") is None  # its enrolment rolled back too
    with db.write() as conn:
        conn.execute(text("DROP TABLE t_then"))
