"""Points on hold never lapse or expire before the member could spend them, and an
expiry never takes points before the release that made them available. SQLite file
and PostgreSQL.

* Under ``expiry: {mode: inactivity}`` an earn is an activity that sets a deadline of
  its own (``at`` plus the policy's months): a manual hold (``pending_until``) ending at
  or after it is refused, as one reaching an ``after_earning`` date is, since if the
  member did nothing more the points would lapse still on hold, never announced.
* ``release-due`` run at a later time than a following ``expire`` run's ``as_of`` (the
  README's daily commands: release-due at 16:44, expire as of that day's midnight): the
  run expires the lot all the same, its entry dated at the release (never before it,
  never in the future), so both orders of the daily jobs expire it the same day. Books
  from earlier versions hold expiries dated before their release: ``ledger check``
  accepts them (their points are right).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, text

from fidelite.ledger import Ledger, Rejected
from fidelite.ledger.invariants import find_violations
from fidelite.program.policy import ExpiryPolicy
from fidelite.store import Database
from fidelite.store.tables import LedgerTransaction, Lot
from tests.cli.support import as_json, fidelite
from tests.support import CheckedLedger

PARIS = ZoneInfo("Europe/Paris")
TWO_MONTHS = ExpiryPolicy(mode="inactivity", months=2, warn_days=10)  # type: ignore[arg-type]
MONTH_DATED = ExpiryPolicy(mode="after_earning", months=1)  # type: ignore[arg-type]
EARNED = "2026-01-10T10:00:00+01:00"
REFUSAL = (
    "pending_until: must be earlier than the inactivity deadline (2026-03-10T10:00:00+01:00, "
    "the date the program's expiry policy lapses points earned at 2026-01-10T10:00:00+01:00 "
    "if the member does nothing more)"
)
PROGRAM = """\
id: shop
name: Shop
time_zone: Europe/Paris
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
expiry: {mode: inactivity, months: 2, warn_days: 10}
"""


def lots(db: Database) -> list[tuple[int, str, datetime | None]]:
    with db.read() as conn:
        rows = conn.execute(select(Lot.points, Lot.state, Lot.pending_until).order_by(Lot.id))
        return [(int(p), str(s), h) for p, s, h in rows]


def entries(ledger: Any, member: str) -> list[tuple[str, datetime, int, int]]:
    """The member's history, oldest first: kind, business time (UTC), changes."""
    return [
        (e.kind, e.occurred_at.astimezone(UTC), e.available_change, e.pending_change)
        for e in reversed(ledger.history("shop", member))
    ]


def test_a_hold_reaching_the_inactivity_deadline_is_refused(ledger: CheckedLedger) -> None:
    for held in ("2026-06-01T00:00:00+02:00", "2026-03-10T10:00:00+01:00"):
        with pytest.raises(Rejected) as refused:  # CheckedLedger: nothing changed
            ledger.earn("shop", "bob", "points", 100, key=f"k-{held}", at=EARNED,
                        pending_until=held, policy=TWO_MONTHS, zone=PARIS)  # fmt: skip
        assert (refused.value.code.value, refused.value.field, refused.value.message) == (
            "invalid_request", "pending_until", REFUSAL)  # fmt: skip
    assert lots(ledger.db) == []
    # a hold ending before the deadline is taken; without a policy any hold is
    ledger.earn("shop", "bob", "points", 40, key="ok", at=EARNED,
                pending_until="2026-03-10T09:59:59+01:00", policy=TWO_MONTHS,
                zone=PARIS)  # fmt: skip
    ledger.earn("shop", "bob", "points", 9, key="bare", at=EARNED,
                pending_until="2026-06-01T00:00:00+02:00")  # fmt: skip
    assert lots(ledger.db) == [
        (40, "pending", datetime(2026, 3, 10, 8, 59, 59, tzinfo=UTC)),
        (9, "pending", datetime(2026, 5, 31, 22, tzinfo=UTC)),
    ]
    # a key used before replays as it was recorded
    again = ledger.earn("shop", "bob", "points", 9, key="bare", at=EARNED,
                        pending_until="2026-06-01T00:00:00+02:00", policy=TWO_MONTHS,
                        zone=PARIS)  # fmt: skip
    assert again.replayed is True
    assert len(lots(ledger.db)) == 2


def test_the_command_line_refuses_a_hold_past_the_inactivity_deadline(
    db: Database, tmp_path: Path
) -> None:
    program = tmp_path / "p.yaml"
    program.write_text(PROGRAM, encoding="utf-8")
    fidelite("member", "add", "kim", "-p", program, db=db.url)
    common = ("kim", "100", "-P", program, "--at", EARNED, "-f", "json")
    late = fidelite("ledger", "earn", *common, "-k", "k1", "--pending-until", "2026-06-01",
                    db=db.url, ok=False)  # fmt: skip
    assert (late.returncode, as_json(late)["error"]) == (1, {
        "code": "invalid_request", "message": REFUSAL, "field": "pending_until"})  # fmt: skip
    with db.read() as conn:
        assert conn.execute(select(LedgerTransaction.id)).all() == []
    assert lots(db) == []
    taken = fidelite("ledger", "earn", *common, "-k", "k2", "--pending-until", "2026-03-09",
                     db=db.url)  # fmt: skip
    assert (as_json(taken)["points"], as_json(taken)["pending_after"]) == (100, 100)
    assert lots(db) == [(100, "pending", datetime(2026, 3, 8, 23, tzinfo=UTC))]


EARN_AT = datetime(2026, 9, 1, 8, tzinfo=UTC)
HOLD_END = datetime(2026, 9, 8, 8, tzinfo=UTC)
RELEASED = datetime(2026, 10, 4, 22, tzinfo=UTC)  # 2026-10-05 00:00 Paris
EARLIER = datetime(2026, 10, 1, 22, tzinfo=UTC)  # 2026-10-02: after the lot's date


@pytest.mark.parametrize("policy", [MONTH_DATED, ExpiryPolicy(mode="inactivity", months=1)])  # type: ignore[arg-type]
def test_an_expiry_is_dated_at_the_release_that_came_after_its_as_of(
    ledger: CheckedLedger, policy: ExpiryPolicy
) -> None:
    """Due by date (expires 2026-10-01 10:00 Paris) or lapsed (deadline the same), the
    lot released by a run at 10-05 is expired by a run as of 10-02, dated 10-05."""
    ledger.earn("shop", "bob", "points", 100, key="e1", at=EARN_AT, pending_until=HOLD_END,
                policy=policy, zone=PARIS)  # fmt: skip
    assert ledger.release_due("shop", RELEASED).points == {"points": 100}
    early = ledger.expire("shop", EARLIER, policy=policy, zone=PARIS)
    assert (early.transactions, early.lots, early.points) == (1, 1, {"points": 100})
    assert entries(ledger, "bob") == [
        ("earn", EARN_AT, 0, 100),
        ("release", RELEASED, 100, -100),
        ("expire", RELEASED, -100, 0),
    ]
    assert lots(ledger.db) == [(100, "expired", HOLD_END)]
    expiry = ledger.history("shop", "bob")[0]
    assert expiry.detail["as_of"] == EARLIER.isoformat()
    again = ledger.expire("shop", RELEASED, policy=policy, zone=PARIS)
    assert (again.transactions, again.lots, again.points) == (0, 0, {})
    assert ledger.balance("shop", "bob", "points", as_of=RELEASED, policy=policy,
                          zone=PARIS).available == 0  # fmt: skip


DAY = datetime(2026, 12, 7, tzinfo=UTC)  # the day's midnight: expire --as-of "$(date +%F)"
AFTERNOON = datetime(2026, 12, 7, 16, 44, tzinfo=UTC)  # release-due without --as-of: now


def held_and_plain(ledger: Any) -> None:
    """100 points held until 12-06 20:00 and 50 plain ones, both expiring 12-06 23:00."""
    ledger.earn("shop", "bob", "points", 100, key="e1", at=datetime(2026, 12, 6, 10, tzinfo=UTC),
                pending_until=datetime(2026, 12, 6, 20, tzinfo=UTC),
                expires_at=datetime(2026, 12, 6, 23, tzinfo=UTC))  # fmt: skip
    ledger.earn("shop", "bob", "points", 50, key="e2", at=datetime(2026, 12, 6, 10, tzinfo=UTC),
                expires_at=datetime(2026, 12, 6, 23, tzinfo=UTC))  # fmt: skip


def test_the_readme_daily_jobs_in_either_order_expire_the_same_day(db: Database) -> None:
    """release-due at 16:44, then expire as of that day's midnight: expired that run, in
    one entry dated at the release (the plain lot with it); the other order dates both
    at midnight. Same points, same day."""
    ledger = CheckedLedger(db, clock=lambda: AFTERNOON)
    ledger.open_program("shop", ["points"])
    ledger.create_member("shop", "bob")
    held_and_plain(ledger)
    assert ledger.release_due("shop", AFTERNOON).points == {"points": 100}
    run = ledger.expire("shop", DAY)
    assert (run.transactions, run.lots, run.points) == (1, 2, {"points": 150})
    earned = datetime(2026, 12, 6, 10, tzinfo=UTC)
    assert entries(ledger, "bob") == [
        ("earn", earned, 0, 100),
        ("earn", earned, 50, 0),
        ("release", AFTERNOON, 100, -100),
        ("expire", AFTERNOON, -150, 0),
    ]
    assert ledger.balance("shop", "bob", "points", as_of=AFTERNOON).available == 0

    # The other order, on a second program: expire first, then release-due.
    ledger.open_program("shop2", ["points"])
    ledger.create_member("shop2", "bob")
    for key, points, hold in (("e1", 100, datetime(2026, 12, 6, 20, tzinfo=UTC)), ("e2", 50, None)):
        ledger.earn("shop2", "bob", "points", points, key=key, at=earned, pending_until=hold,
                    expires_at=datetime(2026, 12, 6, 23, tzinfo=UTC))  # fmt: skip
    first = ledger.expire("shop2", DAY)
    assert (first.transactions, first.lots, first.points) == (1, 2, {"points": 150})
    assert ledger.release_due("shop2", AFTERNOON).transactions == 0
    assert [(e.kind, e.occurred_at.astimezone(UTC), e.available_change)
            for e in reversed(ledger.history("shop2", "bob"))] == [
        ("earn", earned, 0), ("earn", earned, 50), ("release", DAY, 100), ("expire", DAY, -150),
    ]  # fmt: skip


def test_a_spend_that_released_the_lot_during_the_day(db: Database) -> None:
    """A till spend at 14:00 releases the ended hold (not spending it: past its date);
    the day's expiry as of midnight takes it, dated 14:00."""
    spent_at = datetime(2026, 12, 7, 14, tzinfo=UTC)
    ledger = CheckedLedger(db, clock=lambda: AFTERNOON)
    ledger.open_program("shop", ["points"])
    ledger.create_member("shop", "bob")
    held_and_plain(ledger)
    ledger.earn("shop", "bob", "points", 30, key="e3", at=datetime(2026, 12, 6, 10, tzinfo=UTC))
    ledger.spend("shop", "bob", "points", 10, key="s1", at=spent_at)
    run = ledger.expire("shop", DAY)
    assert (run.transactions, run.lots, run.points) == (1, 2, {"points": 150})
    assert [(e.kind, e.occurred_at.astimezone(UTC), e.available_change)
            for e in reversed(ledger.history("shop", "bob"))][3:] == [
        ("release", spent_at, 100), ("spend", spent_at, -10), ("expire", spent_at, -150),
    ]  # fmt: skip
    assert ledger.balance("shop", "bob", "points").available == 20


def test_a_release_dated_in_the_future_waits_for_its_time(db: Database) -> None:
    """release-due given an as_of after the clock: no expiry is dated in the future, nor
    before that release; a run once the clock has passed it expires the lot then."""
    now = [AFTERNOON]
    ledger = CheckedLedger(db, clock=lambda: now[0])
    ledger.open_program("shop", ["points"])
    ledger.create_member("shop", "bob")
    held_and_plain(ledger)
    later = datetime(2026, 12, 9, tzinfo=UTC)
    assert ledger.release_due("shop", later).points == {"points": 100}
    run = ledger.expire("shop", DAY)
    assert (run.transactions, run.lots, run.points) == (1, 1, {"points": 50})
    assert [(e.kind, e.occurred_at.astimezone(UTC), e.available_change)
            for e in reversed(ledger.history("shop", "bob"))][2:] == [
        ("release", later, 100), ("expire", DAY, -50),
    ]  # fmt: skip
    now[0] = datetime(2026, 12, 9, 6, tzinfo=UTC)
    run = ledger.expire("shop", datetime(2026, 12, 9, tzinfo=UTC))
    assert (run.transactions, run.lots, run.points) == (1, 1, {"points": 100})
    assert entries(ledger, "bob")[-1] == ("expire", later, -100, 0)


def test_the_check_accepts_an_expiry_dated_before_the_release(db: Database) -> None:
    """Books as earlier versions wrote them (an expiry at 10-02 of a lot released at
    10-05, the release-due run first), forged by hand: the database's triggers refuse
    changes to written entries. Their points are right: ``ledger check`` passes."""
    ledger = Ledger(db)
    ledger.open_program("shop", ["points"])
    ledger.create_member("shop", "pat")
    ledger.earn("shop", "pat", "points", 100, key="e1", at=EARN_AT, pending_until=HOLD_END,
                expires_at=datetime(2026, 10, 1, 8, tzinfo=UTC))  # fmt: skip
    ledger.release_due("shop", RELEASED)
    assert find_violations(db) == []
    with db.write() as conn:

        def one(sql: str) -> Any:
            return conn.execute(text(sql)).scalar_one()

        member = one("SELECT id FROM members WHERE ref = 'pat'")
        available = one("SELECT id FROM accounts WHERE member_id IS NOT NULL "
                        "AND kind = 'available'")  # fmt: skip
        expired = one("SELECT id FROM accounts WHERE member_id IS NULL AND kind = 'expired'")
        conn.execute(
            text(
                "INSERT INTO ledger_transactions (id, program_id, idempotency_key, request_hash,"
                " kind, member_id, currency, points, reversed_points, reason, occurred_at,"
                " recorded_at, result) VALUES (900, 'shop', 'old-expire', 'x', 'expire', :m,"
                " 'points', 100, 0, 'points expired', :at, :at, '{}')"
            ),
            {"m": member, "at": EARLIER.replace(tzinfo=None)},
        )
        for n, (account_id, lot_id, points) in enumerate([(available, 1, -100),
                                                          (expired, None, 100)]):  # fmt: skip
            conn.execute(
                text("INSERT INTO postings (id, transaction_id, account_id, lot_id, points) "
                     "VALUES (:id, 900, :a, :l, :p)"),
                {"id": 9000 + n, "a": account_id, "l": lot_id, "p": points},
            )  # fmt: skip
        conn.execute(text("UPDATE accounts SET balance = 0 WHERE id = :a"), {"a": available})
        conn.execute(text("UPDATE lots SET remaining = 0, state = 'expired' WHERE id = 1"))
    assert ledger.balance("shop", "pat", "points").available == 0
    assert find_violations(db) == []
