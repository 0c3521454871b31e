"""A refund that undoes an upgrade takes back the tier bonus later events earned on it.

ann buys p1 1000 (gold: 1000 reached, earn multiplier 2), then p2 100 on gold: 100
base + 100 tier bonus. p1 refunded in full: gold is undone, and so is p2's bonus, with
a compensating ledger reversal (key ``tier-bonus:<refund>:<p2's earn>``); p2 keeps 100,
as if the member had never been gold. One path or the other (one event at a time, or
the bulk import), on a SQLite file and on PostgreSQL, the books are the same.
"""

from __future__ import annotations

import csv
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from fidelite.engine import Event
from fidelite.ledger import Rejected, RejectionCode, assert_invariants
from fidelite.processing import EventProcessor
from fidelite.processing.importer import import_events
from fidelite.processing.recorded import read_events
from fidelite.processing.tables import earnings as event_earnings
from fidelite.processing.tables import events
from fidelite.program import parse_program
from fidelite.store import Database
from fidelite.store.tables import LedgerTransaction
from fidelite.webhooks.tables import outbox

SPEND = """\
id: shop
name: Shop
time_zone: Europe/Paris
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
tiers:
  metric: spend
  window: rolling
  window_months: 12
  requalify_months: 12
  grace_months: 0
  levels:
    - {id: bronze, name: Bronze, threshold: 0}
    - {id: gold, name: Gold, threshold: 1000, earn_multiplier: 2}
"""

# Qualifying on points earned: silver at 300 (x2), gold at 600 (x3).
POINTS = """\
id: shop
name: Shop
time_zone: Europe/Paris
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
tiers:
  metric: points
  window: rolling
  window_months: 12
  requalify_months: 12
  grace_months: 0
  levels:
    - {id: bronze, name: Bronze, threshold: 0}
    - {id: silver, name: Silver, threshold: 300, earn_multiplier: 2}
    - {id: gold, name: Gold, threshold: 600, earn_multiplier: 3}
"""

Row = tuple[str, str, str, str, str]  # id, type, day, amount, refund_of


def day(text: str) -> datetime:
    return datetime.fromisoformat(f"{text}T10:00:00+01:00")


def processor(db: Database, program: str, refunds: str = "") -> EventProcessor:
    return EventProcessor(db, parse_program(program + refunds))


def send(p: EventProcessor, rows: list[Row], how: str, path: Path) -> None:
    if how == "one_at_a_time":
        for event_id, kind, when, amount, refund_of in rows:
            p.process(Event(id=event_id, type=kind, member="ann", at=day(when),
                            amount=Decimal(amount), refund_of=refund_of or None))  # fmt: skip
        return
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["event_id", "type", "member", "at", "amount", "refund_of"])
        for event_id, kind, when, amount, refund_of in rows:
            writer.writerow([event_id, kind, "ann", day(when).isoformat(), amount, refund_of])
    summary = import_events(p, path)
    assert (summary.processed, summary.rejected) == (len(rows), [])


def available(p: EventProcessor) -> int:
    return p.ledger.balance("shop", "ann", "points").available


def entries(db: Database) -> list[tuple[Any, ...]]:
    """The ledger's transactions: id, kind, points, key, what they reverse."""
    tx = LedgerTransaction
    with db.read() as conn:
        rows = conn.execute(
            select(tx.id, tx.kind, tx.points, tx.idempotency_key, tx.reverses_id).order_by(tx.id)
        ).all()
    return [tuple(r) for r in rows]


def reversed_of(db: Database) -> dict[str, tuple[int, int]]:
    """Each event's earned points and what is reversed of them."""
    with db.read() as conn:
        rows = conn.execute(select(event_earnings.c.event_id, event_earnings.c.points,
                                   event_earnings.c.reversed)).all()  # fmt: skip
    return {r.event_id: (int(r.points), int(r.reversed)) for r in rows}


def state(p: EventProcessor) -> tuple[Any, ...]:
    """Everything the books say: ledger, events' earnings, traces, tier, timeline."""
    with p.db.read() as conn:
        traces = dict(conn.execute(select(events.c.event_id, events.c.trace)).all())
    timeline = [(r["at"], r["kind"], r["to_tier"], r["reason"], r["event_id"])
                for r in p.tier_timeline("ann")]  # fmt: skip
    return (entries(p.db), reversed_of(p.db), traces, p.tier_standing("ann"), timeline,
            p.ledger.balance("shop", "ann", "points").available)  # fmt: skip


BUY = [("p1", "purchase", "2026-01-05", "1000", ""), ("p2", "purchase", "2026-01-10", "100", "")]


@pytest.mark.parametrize("how", ["one_at_a_time", "bulk_import"])
def test_the_refund_undoing_gold_takes_back_the_later_purchase_bonus(
    pdb: Database, tmp_path: Path, how: str
) -> None:
    p = processor(pdb, SPEND)
    send(p, BUY, how, tmp_path / "buy.csv")
    assert available(p) == 1200  # p2 on gold: 100 + 100
    send(p, [("r1", "refund", "2026-01-20", "1000", "p1")], how, tmp_path / "refund.csv")
    assert p.tier_standing("ann").tier == "bronze"
    assert available(p) == 100  # p2 as on bronze
    assert entries(pdb) == [
        (1, "earn", 1000, "event:p1:points", None),
        (2, "earn", 200, "event:p2:points", None),
        (3, "reverse", 1000, "refund:r1:1", 1),
        (4, "reverse", 100, "tier-bonus:r1:2", 2),
    ]
    assert reversed_of(pdb) == {"p1": (1000, 1000), "p2": (200, 100)}
    with pdb.read() as conn:
        trace = conn.execute(select(events.c.trace).where(events.c.event_id == "r1")).scalar()
        recorded = read_events(conn, "shop", ["r1"])["r1"]
    assert trace == [
        {"transaction_id": 1, "currency": "points", "points": 1000, "written_off": 0,
         "debt_added": 0},
        {"transaction_id": 2, "currency": "points", "points": 100, "written_off": 0,
         "debt_added": 0, "tier_bonus_of": "p2", "bonus": 100, "tier": "gold",
         "now": "bronze"},
    ]  # fmt: skip
    # read back (a duplicate's answer, GET /v1/events/r1): both reversals, as answered
    assert (recorded.transactions, recorded.points) == ([3, 4], {"points": -1100})
    assert_invariants(pdb, "shop")


def test_the_refund_answer_lists_the_bonus_reversal_and_a_retry_posts_nothing(
    pdb: Database,
) -> None:
    p = processor(pdb, SPEND)
    send(p, BUY, "one_at_a_time", Path())
    refund = Event(id="r1", type="refund", member="ann", at=day("2026-01-20"),
                   amount=Decimal(1000), refund_of="p1")  # fmt: skip
    answer = p.process(refund)
    assert [(r.transaction_id, r.points, r.reverses_id) for r in answer.receipts] == [
        (3, 1000, 1), (4, 100, 2)]  # fmt: skip
    before = state(p)
    again = p.process(refund)
    assert (again.outcome.value, again.receipts) == ("duplicate", [])
    assert state(p) == before
    with pdb.read() as conn:
        announced = conn.execute(
            select(outbox.c.event_type, outbox.c.payload).order_by(outbox.c.id)
        ).all()
    reversed_ = [payload for kind, payload in announced if kind == "points.reversed"]
    assert [(r["points"], r["reverses_transaction_id"], r["refund_of"], r.get("tier_bonus_of"))
            for r in reversed_] == [(1000, 1, "p1", None), (100, 2, "p1", "p2")]  # fmt: skip


@pytest.mark.parametrize("how", ["one_at_a_time", "bulk_import"])
def test_a_later_purchase_refunded_in_part_before_gives_back_its_bonus_in_proportion(
    pdb: Database, tmp_path: Path, how: str
) -> None:
    """p2 (200) refunded a quarter first: 50 back. Gold undone: of the bonus, the three
    quarters left (75). Another quarter of p2: 25, leaving 50 (half of 100, as on
    bronze); the rest: 50, nothing left."""
    p = processor(pdb, SPEND)
    send(p, [*BUY, ("r2", "refund", "2026-01-15", "25", "p2"),
             ("r1", "refund", "2026-01-20", "1000", "p1")], how, tmp_path / "a.csv")  # fmt: skip
    assert reversed_of(pdb)["p2"] == (200, 125)
    assert available(p) == 75
    send(p, [("r3", "refund", "2026-01-21", "25", "p2")], how, tmp_path / "b.csv")
    assert (reversed_of(pdb)["p2"], available(p)) == ((200, 150), 50)
    send(p, [("r4", "refund", "2026-01-22", "50", "p2")], how, tmp_path / "c.csv")
    assert (reversed_of(pdb)["p2"], available(p)) == ((200, 200), 0)
    assert [e[1:] for e in entries(pdb)[2:]] == [
        ("reverse", 50, "refund:r2:2", 2),
        ("reverse", 1000, "refund:r1:1", 1),
        ("reverse", 75, "tier-bonus:r1:2", 2),
        ("reverse", 25, "refund:r3:2", 2),
        ("reverse", 50, "refund:r4:2", 2),
    ]
    assert_invariants(pdb, "shop")


@pytest.mark.parametrize("how", ["one_at_a_time", "bulk_import"])
def test_a_later_purchase_refunded_in_part_after_shares_out_what_the_bonus_left(
    pdb: Database, tmp_path: Path, how: str
) -> None:
    p = processor(pdb, SPEND)
    send(p, [*BUY, ("r1", "refund", "2026-01-20", "1000", "p1"),
             ("r2", "refund", "2026-01-21", "50", "p2")], how, tmp_path / "a.csv")  # fmt: skip
    # p2: 100 left after the bonus went, half of it refunded
    assert (reversed_of(pdb)["p2"], available(p)) == ((200, 150), 50)
    send(p, [("r3", "refund", "2026-01-22", "50", "p2")], how, tmp_path / "b.csv")
    assert (reversed_of(pdb)["p2"], available(p)) == ((200, 200), 0)
    assert_invariants(pdb, "shop")


def test_a_later_purchase_refunded_in_full_first_has_no_bonus_left_to_take(
    pdb: Database,
) -> None:
    p = processor(pdb, SPEND)
    send(p, [*BUY, ("r2", "refund", "2026-01-15", "100", "p2"),
             ("r1", "refund", "2026-01-20", "1000", "p1")], "one_at_a_time", Path())  # fmt: skip
    assert available(p) == 0
    assert [e[3] for e in entries(pdb)] == [
        "event:p1:points", "event:p2:points", "refund:r2:2", "refund:r1:1"]  # fmt: skip
    assert_invariants(pdb, "shop")


def test_a_pending_bonus_is_taken_back_from_the_pending_points(pdb: Database) -> None:
    pending = SPEND + "pending:\n  days: 30\n  event_types: [purchase]\n"
    p = processor(pdb, pending)
    send(p, [("p1", "purchase", "2026-01-05", "1000", "")], "one_at_a_time", Path())
    # p1's points released (2026-02-04); p2 bought on gold, its 200 held until 3 March
    send(p, [("p2", "purchase", "2026-02-10", "100", ""),
             ("r1", "refund", "2026-02-12", "1000", "p1")], "one_at_a_time", Path())  # fmt: skip
    balance = p.ledger.balance("shop", "ann", "points", as_of=day("2026-02-13"))
    assert (balance.available, balance.pending, balance.debt) == (0, 100, 0)
    assert [e[1:] for e in entries(pdb) if e[1] == "reverse"] == [
        ("reverse", 1000, "refund:r1:1", 1), ("reverse", 100, "tier-bonus:r1:2", 2)]  # fmt: skip
    assert_invariants(pdb, "shop")


@pytest.mark.parametrize(
    ("shortfall", "after"),
    [("within_balance", (0, 0)), ("debt", (0, 1050))],
)
def test_a_bonus_already_spent_follows_the_refund_policy(
    pdb: Database, shortfall: str, after: tuple[int, int]
) -> None:
    """1150 of the 1200 spent: the refund takes the 50 left; the rest of p1's 1000 and
    the 100 bonus are written off (within_balance) or owed (debt), as the refund's own."""
    p = processor(pdb, SPEND, f"refunds:\n  shortfall: {shortfall}\n")
    send(p, BUY, "one_at_a_time", Path())
    p.ledger.spend("shop", "ann", "points", 1150, key="gift", at=day("2026-01-12"))
    answer = p.process(Event(id="r1", type="refund", member="ann", at=day("2026-01-20"),
                             amount=Decimal(1000), refund_of="p1"))  # fmt: skip
    balance = p.ledger.balance("shop", "ann", "points", as_of=day("2026-01-21"))
    assert (balance.available, balance.debt) == after
    owed = shortfall == "debt"
    assert [(r.points, r.written_off, r.debt_added) for r in answer.receipts] == [
        (1000, 0 if owed else 950, 950 if owed else 0),
        (100, 0 if owed else 100, 100 if owed else 0),
    ]
    assert_invariants(pdb, "shop")


def test_without_reevaluate_tier_the_bonus_stays(pdb: Database) -> None:
    p = processor(pdb, SPEND, "refunds:\n  reevaluate_tier: false\n")
    send(p, [*BUY, ("r1", "refund", "2026-01-20", "1000", "p1")], "one_at_a_time", Path())
    assert (p.tier_standing("ann").tier, available(p)) == ("gold", 200)
    assert [e[3] for e in entries(pdb)] == ["event:p1:points", "event:p2:points", "refund:r1:1"]


POINTS_ROWS = [
    ("p1", "purchase", "2026-01-05", "300", ""),  # 300: silver
    ("p2", "purchase", "2026-01-10", "200", ""),  # silver: 200 + 200 = 400; 700: gold
    ("p3", "purchase", "2026-01-15", "100", ""),  # gold: 100 + 200 = 300
    ("r1", "refund", "2026-01-20", "300", "p1"),
]


@pytest.mark.parametrize("how", ["one_at_a_time", "bulk_import"])
def test_under_the_points_metric_the_bonus_taken_back_lowers_the_level_further(
    pdb: Database, tmp_path: Path, how: str
) -> None:
    """Without p1, p2 is on bronze (200, not 400), so p3 is too: 200 before it, not 400
    (silver); p3 earns 100, and the member reaches silver with it (300), as a member
    who never bought p1 would."""
    p = processor(pdb, POINTS)
    send(p, POINTS_ROWS, how, tmp_path / "a.csv")
    assert reversed_of(pdb) == {"p1": (300, 300), "p2": (400, 200), "p3": (300, 200)}
    assert available(p) == 300
    standing = p.tier_standing("ann")
    assert (standing.tier, standing.since) == ("silver", day("2026-01-15"))
    assert [e[1:] for e in entries(pdb)[3:]] == [
        ("reverse", 300, "refund:r1:1", 1),
        ("reverse", 200, "tier-bonus:r1:2", 2),
        ("reverse", 200, "tier-bonus:r1:3", 3),
    ]
    assert_invariants(pdb, "shop")


@pytest.mark.parametrize("program", [SPEND, POINTS])
def test_the_import_leaves_the_same_books_as_one_event_at_a_time(
    request: pytest.FixtureRequest, tmp_path: Path, program: str
) -> None:
    from tests.conftest import make_database

    # a purchase after the refund: the import's batch path reads what the bonus left
    after = ("p9", "purchase", "2026-01-25", "100", "")
    spend_rows = [
        *BUY,
        ("r2", "refund", "2026-01-15", "30", "p2"),
        ("r1", "refund", "2026-01-20", "1000", "p1"),
        ("r3", "refund", "2026-01-21", "30", "p2"),
    ]
    rows = [*(POINTS_ROWS if program is POINTS else spend_rows), after]
    found = []
    for how in ("one_at_a_time", "bulk_import"):
        (tmp_path / how).mkdir()
        db = make_database("sqlite", request, tmp_path / how)
        p = processor(db, program)
        send(p, rows, how, tmp_path / how / "events.csv")
        found.append(state(p))
        db.dispose()
    assert found[0] == found[1]
    # p9: on silver (300 points reached with p3) under points, on bronze under spend
    assert found[0][1]["p9"] == ((200, 0) if program is POINTS else (100, 0))


REVIEWS = (
    SPEND.replace("rules:\n", "rules:\n  - {id: review, on: [review], fixed: 100}\n")
    + "pending:\n  days: 30\n  event_types: [purchase]\n"
)


def test_a_bonus_already_spent_under_reject_refuses_the_refund_and_changes_nothing(
    pdb: Database,
) -> None:
    """p1 1000 (held 30 days; gold), a review on gold: 100 + 100, available at once, 150 of
    it spent. The refund of p1 would take back the review's 100 of bonus, but only 50
    are left of it: under ``shortfall: reject`` the refund is refused, nothing written."""
    p = processor(pdb, REVIEWS, "refunds:\n  shortfall: reject\n")
    send(p, [("p1", "purchase", "2026-01-05", "1000", "")], "one_at_a_time", Path())
    p.process(Event(id="v1", type="review", member="ann", at=day("2026-01-06")))
    p.ledger.spend("shop", "ann", "points", 150, key="gift", at=day("2026-01-07"))
    before = state(p)
    with pytest.raises(Rejected) as refused:
        p.process(Event(id="r1", type="refund", member="ann", at=day("2026-01-08"),
                        amount=Decimal(1000), refund_of="p1"))  # fmt: skip
    assert refused.value.code is RejectionCode.POINTS_ALREADY_SPENT
    assert refused.value.message.startswith(
        "the refund undoes gold, so it takes back the gold bonus of v1 (transaction 2): 50 of "
        "the 100 points to reverse were already used"
    )
    assert state(p) == before
    assert_invariants(pdb, "shop")


def test_the_bonus_of_a_later_event_other_than_a_purchase_is_taken_back(pdb: Database) -> None:
    p = processor(pdb, REVIEWS)
    send(p, [("p1", "purchase", "2026-01-05", "1000", "")], "one_at_a_time", Path())
    p.process(Event(id="v1", type="review", member="ann", at=day("2026-01-06")))
    p.process(Event(id="r1", type="refund", member="ann", at=day("2026-01-08"),
                    amount=Decimal(1000), refund_of="p1"))  # fmt: skip
    balance = p.ledger.balance("shop", "ann", "points", as_of=day("2026-01-09"))
    assert (balance.available, balance.pending) == (100, 0)
    assert reversed_of(pdb)["v1"] == (200, 100)
    assert_invariants(pdb, "shop")
