"""Program KPIs that add up: points written off by refunds (or owed, under the debt
shortfall) have their column, so that the change of (outstanding - owed) = earned -
redeemed - expired + adjusted + written off in every period; rows run to the last
period with any activity the rows count; the members-vs-non-members summary counts
customers with a purchase and recognises erased members. Real program databases
(SQLite file and PostgreSQL), hand-counted."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from fidelite.analytics.engine import open_dataset
from fidelite.analytics.kpis import program_kpis
from fidelite.engine import Event
from fidelite.privacy import erase_member
from fidelite.processing import EventProcessor
from fidelite.program import parse_program
from fidelite.store import Database

PROGRAM = """\
id: club
name: Club
time_zone: UTC
currencies:
  - {id: points, name: Points, value: 0.01}
  - {id: stars, name: Stars, value: 0.5}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1, per: 1.00}, rounding: floor}
  - {id: star, on: [purchase], currency: stars, fixed: 1}
rewards:
  - {id: bag, name: Bag, kind: free_product, sku: BAG, cost: 100}
expiry: {mode: after_earning, months: 3, rounding: none}
"""


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _event(event_id: str, kind: str, member: str, at: str, **extra: Any) -> Event:
    return Event.model_validate({"id": event_id, "type": kind, "member": member, "at": at, **extra})


def _buy(p: EventProcessor, event_id: str, member: str, at: str, amount: str) -> None:
    p.process(_event(event_id, "purchase", member, at, amount=Decimal(amount)))


def _refund(p: EventProcessor, event_id: str, member: str, at: str, amount: str, of: str) -> None:
    p.process(_event(event_id, "refund", member, at, amount=Decimal(amount), refund_of=of))


def _club(db: Database) -> EventProcessor:
    """July: m and n buy 100 each (100 points, 1 star each); m redeems a bag (100), n
    too. August: q buys 150 (150 points); m's purchase is refunded in full: m spent its
    100 points, so the refund takes back nothing and writes 100 off (the default
    shortfall, within_balance); n's bag is cancelled (100 back to n). September: m gets
    25 points of goodwill; n spends 30. October: the expiry job (points live 3 months)
    expires n's last 70. November: it expires q's 150; p and q buy 0.50 and 0.99 (no
    point, floor; one star each); q's August purchase is refunded: its points had
    expired, so the refund moves them back out of expired."""
    p = EventProcessor(db, parse_program(PROGRAM))
    _buy(p, "p1", "m", "2026-07-05T10:00:00+00:00", "100")
    _buy(p, "p2", "n", "2026-07-06T10:00:00+00:00", "100")
    p.redeem("m", "bag", key="r1", at=_at("2026-07-10T10:00:00+00:00"))
    bag = p.redeem("n", "bag", key="r2", at=_at("2026-07-20T10:00:00+00:00"))
    _buy(p, "p3", "q", "2026-08-02T10:00:00+00:00", "150")
    _refund(p, "f1", "m", "2026-08-03T10:00:00+00:00", "100", "p1")
    p.cancel_redemption(bag.id, at=_at("2026-08-04T10:00:00+00:00"))
    at = "2026-09-01T10:00:00+00:00"
    p.ledger.adjust("club", "m", "points", 25, key="g1", reason="goodwill", actor="qa", at=at)
    p.ledger.spend("club", "n", "points", 30, key="s1", at="2026-09-02T10:00:00+00:00")
    p.ledger.expire("club", as_of="2026-10-31T12:00:00+00:00")
    p.ledger.expire("club", as_of="2026-11-03T12:00:00+00:00")
    _buy(p, "p4", "p", "2026-11-05T10:00:00+00:00", "0.50")
    _buy(p, "p5", "q", "2026-11-06T10:00:00+00:00", "0.99")
    _refund(p, "f2", "q", "2026-11-10T10:00:00+00:00", "150", "p3")
    return p


FLOWS = (
    "period", "points_earned", "points_redeemed", "points_expired", "points_adjusted",
    "points_written_off", "points_outstanding", "points_owed", "burn_rate",
)  # fmt: skip


def _assert_books_balance(rows: list[dict[str, Any]]) -> None:
    """Per period: the change of (outstanding - owed) = earned - redeemed - expired +
    adjusted + written off; from the first period, so to date."""
    held = 0
    for r in rows:
        change = (
            r["points_earned"] - r["points_redeemed"] - r["points_expired"]
            + r["points_adjusted"] + r["points_written_off"]
        )  # fmt: skip
        assert r["points_outstanding"] - r["points_owed"] - held == change, r["period"]
        held = r["points_outstanding"] - r["points_owed"]


def test_written_off_points_make_the_books_add_up(db: Database) -> None:
    _club(db)
    rows = program_kpis(db.url, "club").rows
    assert [tuple(r[k] for k in FLOWS) for r in rows] == [
        # earned 200, redeemed 200: m and n hold nothing
        ("2026-07", 200, 200, 0, 0, 0, 0, 0, 100.0),
        # q's 150 less m's refunded 100, which m had spent: 100 written off. n's bag
        # cancelled (redeemed -100). Outstanding q 150 + n 100. More points came back
        # than were redeemed: no burn rate (not -200 %).
        ("2026-08", 50, -100, 0, 0, 100, 250, 0, None),
        ("2026-09", 0, 30, 0, 25, 0, 245, 0, None),  # m +25, n -30
        ("2026-10", 0, 0, 70, 0, 0, 175, 0, None),  # n's last 70 expire
        # q's 150 expire, then go back out of expired with the refund: earned -150
        ("2026-11", -150, 0, 0, 0, 0, 25, 0, None),
    ]
    _assert_books_balance(rows)
    _assert_books_balance(program_kpis(db.url, "club", currency="stars").rows)


def test_a_full_refund_of_spent_points_is_written_off(db: Database) -> None:
    # The QA case: m and n buy 100 each, m spends 100, m's purchase is refunded in
    # full. Net earned 100 - redeemed 100 leaves 0 only with the 100 written off.
    p = EventProcessor(db, parse_program(PROGRAM))
    _buy(p, "p1", "m", "2026-07-05T10:00:00+00:00", "100")
    _buy(p, "p2", "n", "2026-07-06T10:00:00+00:00", "100")
    p.ledger.spend("club", "m", "points", 100, key="s1", at="2026-07-10T10:00:00+00:00")
    _refund(p, "f1", "m", "2026-08-03T10:00:00+00:00", "100", "p1")
    rows = program_kpis(db.url, "club").rows
    assert [tuple(r[k] for k in FLOWS) for r in rows] == [
        ("2026-07", 200, 100, 0, 0, 0, 100, 0, 50.0),
        ("2026-08", -100, 0, 0, 0, 100, 100, 0, None),
    ]
    _assert_books_balance(rows)


def test_points_owed_under_the_debt_shortfall_make_the_books_add_up(db: Database) -> None:
    """``refunds.shortfall: debt``: July: m and n buy 100 each, m redeems a bag (100).
    August: m's purchase is refunded in full: m spent its 100 points, so m owes them.
    September: m buys 60, all of which repay debt; October: m buys 50, 40 of which repay
    the rest. December: the expiry job (points live 3 months) expires n's 100 of July;
    m's points of September went to the debt and have nothing left to expire."""
    p = EventProcessor(db, parse_program(PROGRAM + "refunds: {shortfall: debt}\n"))
    _buy(p, "p1", "m", "2026-07-05T10:00:00+00:00", "100")
    _buy(p, "p2", "n", "2026-07-06T10:00:00+00:00", "100")
    p.redeem("m", "bag", key="r1", at=_at("2026-07-10T10:00:00+00:00"))
    _refund(p, "f1", "m", "2026-08-03T10:00:00+00:00", "100", "p1")
    _buy(p, "p3", "m", "2026-09-03T10:00:00+00:00", "60")
    _buy(p, "p4", "m", "2026-10-05T10:00:00+00:00", "50")
    p.ledger.expire("club", as_of="2026-12-31T12:00:00+00:00")
    rows = program_kpis(db.url, "club").rows
    assert [tuple(r[k] for k in FLOWS) for r in rows] == [
        ("2026-07", 200, 100, 0, 0, 0, 100, 0, 50.0),  # n holds 100
        # m's 100 reversed (earned -100), none to take back: owed 100, nothing written
        # off; outstanding - owed falls by 100 as earned does
        ("2026-08", -100, 0, 0, 0, 0, 100, 100, None),
        ("2026-09", 60, 0, 0, 0, 0, 100, 40, 0.0),  # the 60 repay debt: owed 40
        ("2026-10", 50, 0, 0, 0, 0, 110, 0, 0.0),  # 40 repay the rest, m holds 10
        ("2026-11", 0, 0, 0, 0, 0, 110, 0, None),
        ("2026-12", 0, 0, 100, 0, 0, 10, 0, None),  # n's 100 expire, m keeps 10
    ]
    _assert_books_balance(rows)
    stars = program_kpis(db.url, "club", currency="stars").rows
    # a star per purchase; m's first star taken back by the refund (m still held it);
    # December expires n's star of July and m's of September
    keys = ("period", "points_earned", "points_expired", "points_outstanding", "points_owed")
    assert [tuple(r[k] for k in keys) for r in stars] == [
        ("2026-07", 2, 0, 2, 0),
        ("2026-08", -1, 0, 1, 0),
        ("2026-09", 1, 0, 2, 0),
        ("2026-10", 1, 0, 3, 0),
        ("2026-11", 0, 0, 3, 0),
        ("2026-12", 0, 2, 1, 0),
    ]
    _assert_books_balance(stars)


def test_rows_run_to_the_last_purchase_whatever_it_earned(db: Database) -> None:
    # p buys 150 in July, q 20 in August; in November p and q buy 0.50 and 0.99: no
    # point, a star each. The points report still has November (no points entry, no
    # one joining), its two active members and their 1.49.
    p = EventProcessor(db, parse_program(PROGRAM))
    _buy(p, "p1", "p", "2026-07-05T10:00:00+00:00", "150")
    _buy(p, "p2", "q", "2026-08-05T10:00:00+00:00", "20")
    _buy(p, "p3", "p", "2026-11-05T10:00:00+00:00", "0.50")
    _buy(p, "p4", "q", "2026-11-06T10:00:00+00:00", "0.99")
    for currency in ("points", "stars"):
        rows = program_kpis(db.url, "club", currency=currency).rows
        assert [(r["period"], r["active_members"], r["member_spend"]) for r in rows] == [
            ("2026-07", 1, 150.0),
            ("2026-08", 1, 20.0),
            ("2026-09", 0, 0.0),
            ("2026-10", 0, 0.0),
            ("2026-11", 2, 1.49),
        ], currency
        assert rows[-1]["members_total"] == 2
    points = program_kpis(db.url, "club").rows
    assert [r["points_outstanding"] for r in points] == [150, 170, 170, 170, 170]
    assert points[-1]["points_earned"] == 0


TX = """\
customer_id,timestamp,amount
m,2026-07-05T10:00:00+00:00,100
n,2026-07-06T10:00:00+00:00,100
q,2026-08-02T10:00:00+00:00,150
x,2026-08-10T10:00:00+00:00,70
y,2026-09-10T10:00:00+00:00,30
"""


def test_refund_lines_alone_make_no_customer(db: Database, write_csv: Any) -> None:
    _club(db)
    plain = program_kpis(db.url, "club", transactions=open_dataset(write_csv(TX))).summary
    # z only returns something: no customer (was 6 customers, 3 non-members at -20/3)
    tx = write_csv(TX + "z,2026-09-12T10:00:00+00:00,-20\n", name="tx_z.csv")
    summary = program_kpis(db.url, "club", transactions=open_dataset(tx)).summary
    for s in (plain, summary):
        assert (s["customers"], s["member_customers"], s["enrolment_rate"]) == (5, 3, 60.0)
        # members (100 + 100 + 150) / 3; non-members (70 + 30) / 2 = 50
        assert (s["spend_per_member_customer"], s["spend_per_non_member_customer"]) == (
            116.67,
            50.0,
        )
        assert s["incremental_revenue"] == 200.0  # (116.67 - 50) x 3, exact: 350 - 150
    # A customer with a purchase keeps their refunds, as net spend: x returns 20
    tx = write_csv(TX + "x,2026-09-12T10:00:00+00:00,-20\n", name="tx_x.csv")
    summary = program_kpis(db.url, "club", transactions=open_dataset(tx)).summary
    assert (summary["customers"], summary["spend_per_non_member_customer"]) == (5, 40.0)


def test_erased_members_stay_member_customers(db: Database, write_csv: Any) -> None:
    _club(db)
    with db.write() as conn:
        erase_member(conn, "club", "m", at=_at("2026-12-01T10:00:00+00:00"))
        erase_member(conn, "club", "q", at=_at("2026-12-01T10:00:00+00:00"))
    summary = program_kpis(db.url, "club", transactions=open_dataset(write_csv(TX))).summary
    # m and q are erased (their tombstones members): still 3 member customers of 5
    assert (summary["customers"], summary["member_customers"]) == (5, 3)
    assert (summary["spend_per_member_customer"], summary["incremental_revenue"]) == (
        116.67,
        200.0,
    )
    rows = program_kpis(db.url, "club").rows
    assert rows[-1]["members_total"] == 4  # erased members keep counting
