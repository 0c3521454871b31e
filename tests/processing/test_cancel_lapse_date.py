"""Cancelling a redemption under an inactivity policy puts the points back into the lots
they were spent from; when such a lot lapsed, its points expire with the cancellation at
the deadline that lot lapsed at (the first lapse after it was earned), not at the
member's latest deadline: the answer's ``expired_lots``, every later read, the
``reward.cancelled`` event and the expiry entry agree. One expiry entry per lapse. On a
SQLite file and on PostgreSQL, exact values."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from fidelite.ledger import assert_invariants
from fidelite.processing import EventProcessor
from fidelite.program import parse_program
from fidelite.store import Database
from fidelite.webhooks.tables import outbox
from tests.processing.test_cancel_after_inactivity_lapse import PROGRAM, lots, moves


def t(month: int, day: int) -> datetime:
    return datetime(2025, month, day, 10, tzinfo=UTC)


FIRST = ("2025-01-20T10:00:00+00:00", "2025-02-20T10:00:00+00:00")  # redeemed 20 January
SECOND = ("2025-02-25T10:00:00+00:00", "2025-03-25T10:00:00+00:00")  # bought 25 February
BACK = [{"expires_at": "2025-02-20T10:00:00+00:00", "points": 10}]


def setup(db: Database, *, job: bool, held: datetime | None = None) -> tuple[EventProcessor, int]:
    """Earn 100 on 10 January, redeem 10 on 20 January (all lapse 20 February), the
    expiry job on 22 February if ``job``, earn 50 on 25 February (they lapse 25 March)."""
    program = parse_program(PROGRAM)
    p = EventProcessor(db, program, clock=lambda: t(4, 1))
    p.ledger.create_member("shop", "ann")
    p.ledger.earn("shop", "ann", "points", 100, key="e1", at=t(1, 10))
    rid = p.redeem("ann", "coffee", key="r1", at=t(1, 20)).id
    if job:
        p.ledger.expire("shop", t(2, 22), policy=program.expiry, zone=program.zone)
    p.ledger.earn("shop", "ann", "points", 50, key="e2", at=t(2, 25), pending_until=held)
    return p, rid


def said(p: EventProcessor, rid: int) -> list[dict[str, object]]:
    """What every answer about the cancellation gives as its expired lots."""
    one, listed = p.redemption(rid).returned, p.redemptions_of("ann")[0].returned
    assert one is not None and listed is not None
    with p.db.read() as conn:
        sent = conn.execute(
            select(outbox.c.payload).where(outbox.c.event_type == "reward.cancelled")
        ).scalar_one()
    assert one.as_dict()["expired_lots"] == listed.as_dict()["expired_lots"]
    assert one.as_dict()["expired_lots"] == dict(sent)["expired_lots"]
    return list(one.as_dict()["expired_lots"])


def test_points_back_in_a_lot_that_lapsed_before_a_later_purchase(pdb: Database) -> None:
    p, rid = setup(pdb, job=True)
    done = p.cancel_redemption(rid, at=t(4, 1))
    assert done.returned is not None
    assert done.returned.as_dict() == {
        "points_spendable": 0, "points_expired": 10, "debt_repaid": 0,
        "written_off_restored": 0, "expired_lots": BACK,
    }  # fmt: skip
    assert said(p, rid) == BACK
    # the lot's own lapse for its 10 points; the later purchase's lapse for its 50
    assert moves(pdb) == [
        ("earn", 100, None, None),
        ("spend", 10, None, None),
        ("expire", 90, *FIRST),
        ("earn", 50, None, None),
        ("reverse", 10, None, None),
        ("expire", 10, *FIRST),
        ("expire", 50, *SECOND),
    ]
    assert lots(pdb) == [(100, 0, "expired"), (50, 0, "expired")]
    expiry = p.program.expiry
    assert p.ledger.expire("shop", t(4, 1), policy=expiry, zone=p.program.zone).transactions == 0
    assert p.cancel_redemption(rid, at=t(4, 1)).returned == done.returned
    assert len(moves(pdb)) == 7
    assert_invariants(pdb)


def test_without_the_job_each_lapse_gets_its_entry(pdb: Database) -> None:
    p, rid = setup(pdb, job=False)
    done = p.cancel_redemption(rid, at=t(4, 1))
    assert done.returned is not None
    assert (done.returned.expired, done.returned.as_dict()["expired_lots"]) == (10, BACK)
    assert said(p, rid) == BACK
    assert moves(pdb)[3:] == [("reverse", 10, None, None), ("expire", 100, *FIRST),
                              ("expire", 50, *SECOND)]  # fmt: skip
    assert lots(pdb) == [(100, 0, "expired"), (50, 0, "expired")]
    assert_invariants(pdb)


def test_a_hold_ended_by_the_cancellation(pdb: Database) -> None:
    # the 50 points are held until 10 March: the cancellation releases them first
    p, rid = setup(pdb, job=True, held=t(3, 10))
    done = p.cancel_redemption(rid, at=t(4, 1))
    assert done.returned is not None
    assert (done.returned.expired, done.returned.as_dict()["expired_lots"]) == (10, BACK)
    assert said(p, rid) == BACK
    assert [m[0] for m in moves(pdb)[4:]] == ["release", "reverse", "expire", "expire"]
    assert moves(pdb)[6:] == [("expire", 10, *FIRST), ("expire", 50, *SECOND)]
    assert_invariants(pdb)
