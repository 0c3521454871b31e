"""Events sent one at a time or in a batch (the API's paths) after a member's erasure:
an event of the erased history is refused with ``member_erased``, as the import refuses
it, instead of enrolling the erased reference again; a later event enrols a new member;
a refund after the erasure of a purchase made before it is taken back from the erased
member's (anonymised) account. On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, event, inspect, select, text

from fidelite.engine import Event
from fidelite.ledger import assert_invariants
from fidelite.privacy import erase_member
from fidelite.processing import EventProcessor, Outcome, ProcessingError, Result
from fidelite.processing.batch import process_events
from fidelite.processing.recorded import Repeated, settle_duplicates
from fidelite.processing.tables import events, member_states
from fidelite.program import parse_program
from fidelite.store import Database

PROGRAM = """\
id: shop
name: Shop
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
  - {id: signup, on: [signup], fixed: 100}
refunds: {shortfall: debt}
"""
ERASED_AT = datetime.fromisoformat("2026-11-20T09:00:00+00:00")
ERASED = (
    "member_erased: the member 'ann' was erased on 2026-11-20: an event dated at or before "
    "the erasure belongs to the erased history and is not recorded (an event after it "
    "enrols the reference as a new member)"
)


def at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def purchase(event_id: str, member: str, when: str, amount: str) -> Event:
    return Event(id=event_id, type="purchase", member=member, at=at(when), amount=Decimal(amount))


def refund(event_id: str, member: str, when: str, amount: str, of: str) -> Event:
    return Event(id=event_id, type="refund", member=member, at=at(when), amount=Decimal(amount),
                 refund_of=of)  # fmt: skip


def erased_ann(db: Database) -> tuple[EventProcessor, str]:
    """ann signed up and bought (150 points), bob bought; then ann was erased. The
    processor remembers ann as enrolled (as a long-running API process would)."""
    p = EventProcessor(db, parse_program(PROGRAM))
    p.process(Event(id="e1", type="signup", member="ann", at=at("2026-11-02T09:00:00+00:00")))
    p.process(purchase("e2", "ann", "2026-11-02T10:00:00+00:00", "50.00"))
    p.process(purchase("e3", "bob", "2026-11-03T10:00:00+00:00", "30.00"))
    with db.write() as conn:
        erasure = erase_member(conn, "shop", "ann", reason="request 2026-118", at=ERASED_AT)
    return p, erasure.tombstone


def snapshot(db: Database) -> dict[str, list[str]]:
    """Every row of every table, as text, sorted: equal snapshots, nothing changed."""
    with db.read() as conn:
        names = sorted(inspect(conn).get_table_names())
        return {
            name: sorted(repr(tuple(row)) for row in conn.execute(text(f'SELECT * FROM "{name}"')))
            for name in names
        }


def members(db: Database) -> list[tuple[str, datetime]]:
    with db.read() as conn:
        rows = conn.execute(select(member_states.c.member_ref, member_states.c.joined_at)
                            .order_by(member_states.c.member_ref))  # fmt: skip
        return [(r[0], r[1]) for r in rows]


def recorded(db: Database) -> list[tuple[str, str, str]]:
    with db.read() as conn:
        rows = conn.execute(select(events.c.event_id, events.c.member_ref, events.c.type)
                            .order_by(events.c.event_id))  # fmt: skip
        return [(r[0], r[1], r[2]) for r in rows]


def balance(p: EventProcessor, member: str, when: str = "2026-12-01T00:00:00+00:00") -> Any:
    b = p.ledger.balance("shop", member, "points", as_of=when)
    return (b.available, b.debt)


def outbox_types(db: Database) -> list[tuple[str, str]]:
    with db.read() as conn:
        rows = conn.execute(text("SELECT event_type, member_ref FROM outbox ORDER BY id"))
        return [(r[0], r[1]) for r in rows]


@contextmanager
def erasure_reads() -> Iterator[list[str]]:
    """The statements that read the erasure records while the block runs."""
    seen: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "member_erasures" in statement:
            seen.append(statement)

    event.listen(Engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", note)


def refused(p: EventProcessor, db: Database, sent: Event) -> ProcessingError:
    before = snapshot(db)
    with pytest.raises(ProcessingError) as caught:
        p.process(sent)
    assert snapshot(db) == before
    return caught.value


# ------------------------------------------------------------ new events, one at a time


def test_event_of_the_erased_history_is_refused(pdb: Database) -> None:
    p, tombstone = erased_ann(pdb)
    for when in ("2026-11-10T10:00:00+00:00", "2026-11-20T09:00:00+00:00"):  # at the erasure too
        error = refused(p, pdb, purchase("late", "ann", when, "20.00"))
        assert str(error) == ERASED
        assert (error.code, error.detail) == ("member_erased", {})
    error = refused(p, pdb, Event(id="late", type="signup", member="ann",
                                  at=at("2026-11-19T10:00:00+00:00")))  # fmt: skip
    assert error.code == "member_erased"
    assert members(pdb) == [("bob", at("2026-11-03T10:00:00+00:00")),
                            (tombstone, at("2026-11-02T09:00:00+00:00"))]  # fmt: skip
    assert_invariants(pdb, "shop")


def test_event_after_the_erasure_enrols_a_new_member(pdb: Database) -> None:
    p, tombstone = erased_ann(pdb)
    done = p.process(purchase("new", "ann", "2026-11-20T09:00:01+00:00", "20.00"))
    assert (done.outcome, [r.points for r in done.receipts]) == (Outcome.processed, [20])
    assert members(pdb) == [("ann", at("2026-11-20T09:00:01+00:00")),
                            ("bob", at("2026-11-03T10:00:00+00:00")),
                            (tombstone, at("2026-11-02T09:00:00+00:00"))]  # fmt: skip
    assert balance(p, "ann") == (20, 0)
    assert balance(p, tombstone) == (150, 0)
    # the new member's own events are theirs; the erased history stays refused for them
    error = refused(p, pdb, purchase("old", "ann", "2026-11-05T10:00:00+00:00", "9.00"))
    assert str(error) == ERASED
    later = p.process(purchase("new-2", "ann", "2026-11-25T10:00:00+00:00", "5.00"))
    assert later.outcome is Outcome.processed
    assert balance(p, "ann") == (25, 0)
    assert_invariants(pdb, "shop")


def test_each_event_reads_the_erasures_once(pdb: Database) -> None:
    """A member holding the reference may have been enrolled again after an erasure with
    any join date: every earning event of the single path reads the erasure records,
    once (an unknown reference before it is enrolled, a known one under its lock)."""
    p, _ = erased_ann(pdb)
    with erasure_reads() as seen:
        p.process(purchase("b2", "bob", "2026-11-21T10:00:00+00:00", "1.00"))  # known member
        assert len(seen) == 1
        p.process(purchase("c1", "cat", "2026-11-21T10:00:00+00:00", "1.00"))  # unknown
        assert len(seen) == 2
        p.process(purchase("c2", "cat", "2026-11-22T10:00:00+00:00", "1.00"))  # known now
        assert len(seen) == 3
        p.process(purchase("c0", "cat", "2026-11-01T10:00:00+00:00", "1.00"))  # before joining
        assert len(seen) == 4
        p.process(purchase("c2", "cat", "2026-11-22T10:00:00+00:00", "1.00"))  # a duplicate
        assert len(seen) == 4
    assert [m for m, _ in members(pdb)][:2] == ["bob", "cat"]


# ------------------------------------------------------------------- the batch path


def test_batch_refuses_the_erased_history_as_the_single_path(pdb: Database) -> None:
    p, tombstone = erased_ann(pdb)
    batch = [
        purchase("b2", "bob", "2026-11-10T10:00:00+00:00", "10.00"),
        purchase("a-old", "ann", "2026-11-10T10:00:00+00:00", "20.00"),
        purchase("a-new", "ann", "2026-11-21T10:00:00+00:00", "7.00"),
        purchase("a-old-2", "ann", "2026-11-15T10:00:00+00:00", "3.00"),  # after a-new enrolled
        purchase("a-new-2", "ann", "2026-11-22T10:00:00+00:00", "4.00"),
    ]
    with erasure_reads() as seen, pdb.write() as conn:
        answers = process_events(p, conn, batch)
    # one read of the erasure records for the whole batch, in the batch's read (on
    # PostgreSQL the read is one pipelined message, below the engine's events)
    assert len(seen) == (0 if pdb.writer.dialect.name == "postgresql" else 1)
    assert [a.outcome if isinstance(a, Result) else str(a) for a in answers] == [
        Outcome.processed, ERASED, Outcome.processed, ERASED, Outcome.processed,
    ]  # fmt: skip
    assert recorded(pdb) == [
        ("a-new", "ann", "purchase"), ("a-new-2", "ann", "purchase"), ("b2", "bob", "purchase"),
        ("e1", tombstone, "signup"), ("e2", tombstone, "purchase"), ("e3", "bob", "purchase"),
    ]  # fmt: skip
    assert members(pdb)[0] == ("ann", at("2026-11-21T10:00:00+00:00"))
    assert (balance(p, "ann"), balance(p, "bob"), balance(p, tombstone)) == (
        (11, 0), (40, 0), (150, 0),
    )  # fmt: skip
    assert_invariants(pdb, "shop")


# --------------------------------------------------- refunds of the erased member's purchase


def test_refund_after_the_erasure_is_taken_back_from_the_erased_account(pdb: Database) -> None:
    p, tombstone = erased_ann(pdb)
    outbox = outbox_types(pdb)
    done = p.process(refund("r1", "ann", "2026-11-25T10:00:00+00:00", "20.00", "e2"))
    assert done.outcome is Outcome.processed
    assert [(r.points, r.member_ref) for r in done.receipts] == [(20, tombstone)]
    assert balance(p, tombstone) == (130, 0)
    assert recorded(pdb)[-1] == ("r1", tombstone, "refund")  # never the reference sent
    assert [m for m, _ in members(pdb)] == ["bob", tombstone]  # ann not enrolled again
    assert outbox_types(pdb) == outbox  # no webhook event names the erased member's purchase
    with pdb.read() as conn:
        left = conn.execute(select(events.c.refunded_amount)
                            .where(events.c.event_id == "e2")).scalar_one()  # fmt: skip
    assert Decimal(left) == Decimal("20.00")
    # sent again: the same refund (recorded for the tombstone of the reference sent)
    before = snapshot(pdb)
    again = refund("r1", "ann", "2026-11-25T10:00:00+00:00", "20.00", "e2")
    assert p.process(again).outcome is Outcome.duplicate
    with pdb.read() as conn:
        settled = settle_duplicates(conn, "shop", [again], [Result("r1", Outcome.duplicate)])
    assert isinstance(settled[0], Repeated)
    assert snapshot(pdb) == before
    # the rest, later: under the debt policy, all 30 left of the purchase's 50
    p.process(refund("r2", "ann", "2026-12-01T10:00:00+00:00", "30.00", "e2"))
    assert balance(p, tombstone) == (100, 0)
    assert_invariants(pdb, "shop")


def test_refund_dated_at_or_before_the_erasure_is_erased_history(pdb: Database) -> None:
    p, _ = erased_ann(pdb)
    error = refused(p, pdb, refund("r1", "ann", "2026-11-20T09:00:00+00:00", "20.00", "e2"))
    assert (error.code, error.message) == ("member_erased", (
        "the member 'ann' was erased on 2026-11-20: a refund dated at or before the erasure "
        "belongs to the erased history and is not recorded (an event after it enrols the "
        "reference as a new member)"
    ))  # fmt: skip


def test_refund_of_an_erased_purchase_naming_another_member_is_a_mismatch(
    pdb: Database,
) -> None:
    p, tombstone = erased_ann(pdb)
    error = refused(p, pdb, refund("r1", "bob", "2026-11-25T10:00:00+00:00", "20.00", "e2"))
    assert str(error) == (
        "member_mismatch: the refund names member 'bob', but purchase 'e2' belongs to member "
        f"{tombstone!r} (erased)"
    )
    # a new member holding the reference since does not own the erased purchase either
    p.process(purchase("new", "cat", "2026-11-21T10:00:00+00:00", "5.00"))
    error = refused(p, pdb, refund("r2", "cat", "2026-11-25T10:00:00+00:00", "20.00", "e2"))
    assert error.code == "member_mismatch"


def test_refund_by_a_new_member_of_the_reference_of_the_erased_purchase(pdb: Database) -> None:
    p, tombstone = erased_ann(pdb)
    p.process(purchase("new", "ann", "2026-11-21T10:00:00+00:00", "10.00"))
    p.process(refund("r1", "ann", "2026-11-25T10:00:00+00:00", "50.00", "e2"))  # the old one
    p.process(refund("r2", "ann", "2026-11-25T10:00:00+00:00", "10.00", "new"))  # the new one
    assert (balance(p, "ann"), balance(p, tombstone)) == ((0, 0), (100, 0))
    assert recorded(pdb)[-3:] == [("new", "ann", "purchase"), ("r1", tombstone, "refund"),
                                  ("r2", "ann", "refund")]  # fmt: skip
    assert_invariants(pdb, "shop")
