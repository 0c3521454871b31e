"""A back-dated spend ends the same whether the expiry job ran before it was recorded
or after (docs/ledger.md, "What the member has"): a spend dated while a lot was still
within its date draws that lot; if the job has since moved it out, the spend takes
those points back from the program's ``expired`` account (a compensating posting, the
expiry entry unchanged), in spending order with the open lots, instead of being
refused. Redemptions and debit adjustments take the same path; cancelling such a spend
puts the points back into their lots, which the next job expires again. Each expired
point is claimed once; a refused spend changes nothing. On a SQLite file and on
PostgreSQL; every call is followed by ``ledger check``."""

from __future__ import annotations

import threading
import uuid
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from fidelite.ledger import Ledger, Rejected, assert_invariants
from fidelite.ledger.invariants import find_violations
from fidelite.processing import EventProcessor
from fidelite.program import parse_program
from fidelite.program.policy import ExpiryPolicy
from fidelite.store import Database
from tests.support import CheckedLedger, snapshot, waits_on_a_row_lock

KIRI = ZoneInfo("Pacific/Kiritimati")
THREE_MONTHS = ExpiryPolicy(mode="after_earning", months=3)
EARNED = datetime(2026, 1, 10, 10, tzinfo=KIRI)  # expires 2026-04-10
SPENT = datetime(2026, 4, 1, 10, tzinfo=KIRI)  # the lot still valid
JOB = datetime(2026, 4, 15, tzinfo=KIRI)  # the lot past its date
LATER = datetime(2026, 5, 1, 10, tzinfo=KIRI)
ORDERS = ["spend_then_expire", "expire_then_spend"]


def program_books(ledger: Any, program: str = "shop", member: str = "alice") -> tuple[int, ...]:
    """available, debt (as of LATER); the program's expired, redeemed, adjustment and
    issued accounts; and ``ledger check`` finds nothing."""
    b = ledger.balance(program, member, "points", as_of=LATER)
    with ledger.db.read() as conn:
        rows = conn.execute(
            text(
                "SELECT a.kind, COALESCE(SUM(p.points), 0) FROM accounts a "
                "LEFT JOIN postings p ON p.account_id = a.id WHERE a.program_id = :p "
                "AND a.currency = 'points' AND a.member_id IS NULL GROUP BY a.kind"
            ),
            {"p": program},
        ).all()
    prog = {str(kind): int(points) for kind, points in rows}
    assert find_violations(ledger.db, program) == []
    return (b.available, b.debt, prog["expired"], prog["redeemed"], prog["adjustment"],
            prog["issued"])  # fmt: skip


def earn(ledger: CheckedLedger) -> int:
    """alice earns 100 on 2026-01-10 (Kiritimati), expiring three months later."""
    e = ledger.earn("shop", "alice", "points", 100, key="c1", at=EARNED, policy=THREE_MONTHS,
                    zone=KIRI)  # fmt: skip
    with ledger.db.read() as conn:
        expires = conn.execute(
            text("SELECT expires_at FROM lots WHERE earn_transaction_id = :t"),
            {"t": e.transaction_id},
        ).scalar_one()
    assert str(expires)[:10] == "2026-04-09"  # 2026-04-10 in Kiritimati (UTC+14)
    return e.transaction_id


def job(ledger: Any, expected: int, program: str = "shop") -> None:
    assert ledger.expire(program, JOB, policy=THREE_MONTHS, zone=KIRI).points == (
        {"points": expected} if expected else {}
    )


def lot_of(ledger: CheckedLedger, earn_id: int) -> int:
    with ledger.db.read() as conn:
        return int(
            conn.execute(
                text("SELECT id FROM lots WHERE earn_transaction_id = :t"), {"t": earn_id}
            ).scalar_one()
        )


@pytest.mark.parametrize("order", ORDERS)
def test_a_spend_dated_while_the_lot_was_valid_is_accepted_in_either_order(
    ledger: CheckedLedger, order: str
) -> None:
    """The hand repro: the 50 spent on 04-01 come from the lot valid then; the job
    expires (or has expired, net of the claim) the other 50."""
    lot = lot_of(ledger, earn(ledger))
    if order == "expire_then_spend":
        job(ledger, 100)
    s = ledger.spend("shop", "alice", "points", 50, key="c-s1", at=SPENT,
                     policy=THREE_MONTHS, zone=KIRI)  # fmt: skip
    if order == "spend_then_expire":
        job(ledger, 50)
    assert s.points == 50
    assert program_books(ledger) == (0, 0, 50, 50, 0, -100)
    spend = next(h for h in ledger.history("shop", "alice") if h.kind == "spend")
    if order == "expire_then_spend":
        assert spend.detail == {"from_expired_points": 50, "claimed_expired_lots": {str(lot): 50}}
    else:
        assert spend.detail is None


@pytest.mark.parametrize("order", ORDERS)
def test_a_debit_adjustment_takes_the_same_path(ledger: CheckedLedger, order: str) -> None:
    earn(ledger)
    if order == "expire_then_spend":
        job(ledger, 100)
    a = ledger.adjust("shop", "alice", "points", -30, key="a1", reason="till error",
                      actor="ops", at=SPENT, policy=THREE_MONTHS, zone=KIRI)  # fmt: skip
    if order == "spend_then_expire":
        job(ledger, 70)
    assert a.points == 30
    assert program_books(ledger) == (0, 0, 70, 0, 30, -100)


def test_a_refused_back_dated_spend_changes_nothing(ledger: CheckedLedger) -> None:
    earn(ledger)
    job(ledger, 100)
    before = snapshot(ledger.db)
    with pytest.raises(Rejected) as refused:
        ledger.spend("shop", "alice", "points", 101, key="s101", at=SPENT)
    assert refused.value.code == "insufficient_points"
    assert refused.value.detail == {"available": 100, "requested": 101}
    with pytest.raises(Rejected) as late:  # dated after the lot's date: nothing to draw
        ledger.spend("shop", "alice", "points", 1, key="s1", at="2026-04-11T00:00:00+14:00")
    assert late.value.detail == {"available": 0, "requested": 1}
    with pytest.raises(Rejected) as reserved:  # the ledger's key, not the caller's
        ledger.spend("shop", "alice", "points", 1, key="s2", at=SPENT,
                     detail={"claimed_expired_lots": {"1": 1}})  # fmt: skip
    assert reserved.value.code == "invalid_request"
    assert snapshot(ledger.db) == before


def test_a_lot_earned_after_the_spend_date_is_not_claimed(ledger: CheckedLedger) -> None:
    earn(ledger)
    ledger.earn("shop", "alice", "points", 40, key="c2", at=datetime(2026, 4, 5, tzinfo=KIRI),
                expires_at=datetime(2026, 4, 12, tzinfo=KIRI))  # fmt: skip
    job(ledger, 140)
    before = snapshot(ledger.db)
    with pytest.raises(Rejected) as refused:
        ledger.spend("shop", "alice", "points", 101, key="s", at=SPENT)
    assert refused.value.detail == {"available": 100, "requested": 101}
    assert snapshot(ledger.db) == before


@pytest.mark.parametrize("order", ORDERS)
def test_each_expired_point_is_claimed_once(ledger: CheckedLedger, order: str) -> None:
    """Two back-dated spends of 60 and 50: the second finds 40 left either way."""
    earn(ledger)
    if order == "expire_then_spend":
        job(ledger, 100)
    ledger.spend("shop", "alice", "points", 60, key="s1", at=SPENT)
    before = snapshot(ledger.db)
    with pytest.raises(Rejected) as refused:
        ledger.spend("shop", "alice", "points", 50, key="s2", at=SPENT + timedelta(days=1))
    assert refused.value.detail == {"available": 40, "requested": 50}
    assert snapshot(ledger.db) == before
    ledger.spend("shop", "alice", "points", 40, key="s3", at=SPENT + timedelta(days=1))
    if order == "spend_then_expire":
        job(ledger, 0)
    assert program_books(ledger) == (0, 0, 0, 100, 0, -100)


@pytest.mark.parametrize("order", ORDERS)
def test_the_soonest_expiring_lot_is_drawn_first_whether_expired_or_not(
    ledger: CheckedLedger, order: str
) -> None:
    """A lot without a date comes after the lot valid at the spend's date: it keeps
    its points whether the job ran first or not."""
    ledger.earn("shop", "alice", "points", 70, key="open", at=EARNED)
    earn(ledger)
    if order == "expire_then_spend":
        job(ledger, 100)
    ledger.spend("shop", "alice", "points", 120, key="s", at=SPENT)
    if order == "spend_then_expire":
        job(ledger, 0)
    assert program_books(ledger) == (50, 0, 0, 120, 0, -170)


@pytest.mark.parametrize("order", ORDERS)
def test_cancelling_the_spend_and_refunding_the_earn_end_alike(
    ledger: CheckedLedger, order: str
) -> None:
    earn_id = earn(ledger)
    if order == "expire_then_spend":
        job(ledger, 100)
    s = ledger.spend("shop", "alice", "points", 50, key="s", at=SPENT)
    if order == "spend_then_expire":
        job(ledger, 50)
    back = ledger.reverse("shop", s.transaction_id, key="x1", points=20, at=LATER)
    assert back.points == 20
    # the 20 are back in the lot past its date: the next run expires them
    assert ledger.expire("shop", LATER).points == {"points": 20}
    assert program_books(ledger) == (0, 0, 70, 30, 0, -100)
    ledger.reverse("shop", s.transaction_id, key="x2", at=LATER)
    assert ledger.expire("shop", LATER).points == {"points": 30}
    assert program_books(ledger) == (0, 0, 100, 0, 0, -100)
    refund = ledger.reverse("shop", earn_id, key="rf", shortfall="debt", at=LATER)
    assert (refund.already_expired, refund.debt_added) == (100, 0)
    assert program_books(ledger) == (0, 0, 0, 0, 0, 0)


@pytest.mark.parametrize("order", ORDERS)
def test_refunding_the_earn_after_the_spend_ends_alike(ledger: CheckedLedger, order: str) -> None:
    earn_id = earn(ledger)
    if order == "expire_then_spend":
        job(ledger, 100)
    ledger.spend("shop", "alice", "points", 50, key="s", at=SPENT)
    if order == "spend_then_expire":
        job(ledger, 50)
    expiry = next(h for h in ledger.history("shop", "alice") if h.kind == "expire")
    before = snapshot(ledger.db)
    with pytest.raises(Rejected) as refused:  # only the 50 not spent can be put back
        ledger.reverse("shop", expiry.transaction_id, key="x", points=51, at=LATER)
    assert refused.value.code == "reversal_exceeds_original"
    assert snapshot(ledger.db) == before
    refund = ledger.reverse("shop", earn_id, key="rf", shortfall="debt", at=LATER)
    assert (refund.already_expired, refund.debt_added) == (50, 50)
    assert program_books(ledger) == (0, 50, 0, 50, 0, 0)


P_NONE = """\
id: shop
name: P none
time_zone: Pacific/Kiritimati
currencies:
  - {id: points, name: Points, unit: pt, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1, per: 1.00}}
rewards:
  - {id: r100, name: R100, kind: discount_amount, value: 1.00, cost: 100}
expiry: {mode: after_earning, months: 3, rounding: none, warn_days: 30}
"""


@pytest.mark.parametrize("order", ORDERS)
def test_a_back_dated_redemption_is_accepted_in_either_order(db: Database, order: str) -> None:
    program = parse_program(P_NONE)
    p = EventProcessor(db, program, clock=lambda: LATER)
    p.ledger.create_member("shop", "C")
    p.ledger.earn("shop", "C", "points", 100, key="c1", at=EARNED, policy=program.expiry,
                  zone=program.zone)  # fmt: skip
    if order == "expire_then_spend":
        p.ledger.expire("shop", JOB, policy=program.expiry, zone=program.zone)
    done = p.redeem("C", "r100", key="r1", at=SPENT)
    if order == "spend_then_expire":
        p.ledger.expire("shop", JOB, policy=program.expiry, zone=program.zone)
    assert done.points == 100
    assert program_books(p.ledger, member="C") == (0, 0, 0, 100, 0, -100)
    cancelled = p.cancel_redemption(done.id, at=LATER)
    assert cancelled.returned is not None
    assert cancelled.returned.as_dict()["points_expired"] == 100
    assert cancelled.returned.as_dict()["points_spendable"] == 0
    assert program_books(p.ledger, member="C") == (0, 0, 100, 0, 0, -100)
    assert_invariants(db)


@pytest.mark.postgres
def test_the_job_and_a_back_dated_spend_at_once_use_each_point_once(
    request: pytest.FixtureRequest, tmp_path: Any
) -> None:
    """Both wait on the member's lock; whichever goes first, the spend draws 50 of the
    lot and the job expires the other 50, once."""
    from tests.conftest import make_database

    database = make_database("postgresql", request, tmp_path)
    try:
        ledger = Ledger(database)
        ledger.open_program("shop", ["points"])
        ledger.create_member("shop", "alice")
        ledger.earn("shop", "alice", "points", 100, key="c1", at=EARNED, policy=THREE_MONTHS,
                    zone=KIRI)  # fmt: skip
        holder = database.writer.connect()
        holder.begin()
        holder.execute(text("SELECT id FROM members WHERE ref = 'alice' FOR UPDATE"))
        results: dict[str, Any] = {}

        def spend() -> None:
            results["spend"] = Ledger(database).spend("shop", "alice", "points", 50, key="s",
                                                      at=SPENT)  # fmt: skip

        def expire() -> None:
            results["expire"] = Ledger(database).expire("shop", JOB)

        threads = [threading.Thread(target=spend), threading.Thread(target=expire)]
        for t in threads:
            t.start()
        try:
            assert waits_on_a_row_lock(holder, 2)
        finally:
            holder.rollback()
            holder.close()
        for t in threads:
            t.join(60)
        assert results["spend"].points == 50
        assert sum(results["expire"].points.values()) in (50, 100)
        assert_invariants(database)
        assert program_books(ledger) == (0, 0, 50, 50, 0, -100)
    finally:
        database.dispose()


# ------------------------------------------------- the job run at any time, any number


DAY0 = datetime(2026, 1, 1, tzinfo=KIRI)
NOW = datetime(2026, 12, 1, tzinfo=KIRI)
MEMBERS = ("m1", "m2")

lots = st.lists(
    st.tuples(
        st.sampled_from(MEMBERS), st.integers(0, 60), st.integers(1, 90), st.integers(1, 100)
    ),
    min_size=1,
    max_size=5,
)  # (member, earned day, days valid, points)
moves = st.lists(
    st.one_of(
        st.tuples(
            st.just("spend"), st.sampled_from(MEMBERS), st.integers(0, 160), st.integers(1, 120)
        ),
        st.tuples(st.just("cancel"), st.integers(0, 9), st.integers(0, 40), st.just(0)),
        st.tuples(st.just("expire"), st.just(""), st.integers(0, 200), st.just(0)),
    ),
    max_size=10,
)  # (kind, member or spend index, day, points)


def play(ledger: Ledger, program: str, earns: list[Any], ops: list[Any], jobs: bool) -> Any:
    """Earn, then the moves in order (each spend dated its day, each cancellation
    ``day`` days after its spend); the expiry job as of each ``expire`` move's day
    only if ``jobs``; then the job as of NOW. Every answer, each member's balance and
    the program's accounts."""
    ledger.open_program(program, ["points"])
    for m in MEMBERS:
        ledger.create_member(program, m)
    for i, (member, day, valid, points) in enumerate(earns):
        at = DAY0 + timedelta(days=day)
        ledger.earn(program, member, "points", points, key=f"e{i}", at=at,
                    expires_at=at + timedelta(days=valid))  # fmt: skip
    answers: list[Any] = []
    spends: list[tuple[int, datetime]] = []
    for i, (kind, who, day, points) in enumerate(ops):
        if kind == "expire":
            if jobs:
                ledger.expire(program, DAY0 + timedelta(days=day))
            continue
        try:
            if kind == "spend":
                at = DAY0 + timedelta(days=day)
                s = ledger.spend(program, who, "points", points, key=f"s{i}", at=at)
                spends.append((s.transaction_id, at))
                answers.append(("spend", s.points))
            elif spends:
                txn, at = spends[int(who) % len(spends)]
                r = ledger.reverse(program, txn, key=f"r{i}", points=min(points + 1, 20),
                                   at=at + timedelta(days=day))  # fmt: skip
                answers.append(("cancel", r.points))
        except Rejected as refused:
            answers.append((kind, refused.code, refused.detail))
    ledger.expire(program, NOW)
    assert_invariants(ledger.db)
    balances = [ledger.balance(program, m, "points", as_of=NOW) for m in MEMBERS]
    with ledger.db.read() as conn:
        accounts = dict(
            conn.execute(
                text(
                    "SELECT a.kind, COALESCE(SUM(p.points), 0) FROM accounts a "
                    "LEFT JOIN postings p ON p.account_id = a.id WHERE a.program_id = :p "
                    "AND a.member_id IS NULL GROUP BY a.kind"
                ),
                {"p": program},
            ).all()
        )
    return (answers, [(b.available, b.debt) for b in balances], accounts)


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(earns=lots, ops=moves)
def test_the_books_do_not_depend_on_when_the_expiry_job_ran(
    db: Database, earns: list[Any], ops: list[Any]
) -> None:
    """Property: the same earns, spends and cancellations (back-dated at will) give
    the same answers, the same balance per member and the same expired total whether
    the expiry job ran between them, as of any day, or only once at the end."""
    ledger = Ledger(db, clock=lambda: NOW)
    tag = uuid.uuid4().hex[:8]
    late = play(ledger, f"late{tag}", earns, ops, jobs=False)
    often = play(ledger, f"often{tag}", earns, ops, jobs=True)
    assert often == late
