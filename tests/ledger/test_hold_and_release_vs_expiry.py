"""Points on hold never lapse or expire before the member could spend them, and an
expiry never takes points before the release that made them available. SQLite file
and PostgreSQL.

* Under ``expiry: {mode: inactivity}`` an earn is an activity that sets a deadline of
  its own (``at`` plus the policy's months): a manual hold (``pending_until``) ending at
  or after it is refused, as one reaching an ``after_earning`` date is, since if the
  member did nothing more the points would lapse still on hold, never announced.
* ``release-due`` run with a later ``as_of`` than a following ``expire`` run: the
  expiry dated at the earlier ``as_of`` leaves the lots released after it alone (it
  would take points from ``available`` before they were there); a run at or after the
  release expires them. ``ledger check`` flags an expiry dated before its lot's release.
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
def test_an_expiry_never_takes_points_before_their_release(
    ledger: CheckedLedger, policy: ExpiryPolicy
) -> None:
    """Due by date (expires 2026-10-01 10:00 Paris) or lapsed (deadline the same), the
    lot released by a run at 10-05 is left alone by an expiry run at 10-02."""
    ledger.earn("shop", "bob", "points", 100, key="e1", at=EARN_AT, pending_until=HOLD_END,
                policy=policy, zone=PARIS)  # fmt: skip
    assert ledger.release_due("shop", RELEASED).points == {"points": 100}
    before = entries(ledger, "bob")
    early = ledger.expire("shop", EARLIER, policy=policy, zone=PARIS)
    assert (early.transactions, early.lots, early.points) == (0, 0, {})
    assert entries(ledger, "bob") == before
    assert ledger.balance("shop", "bob", "points", as_of=EARLIER, policy=policy,
                          zone=PARIS).available == 0  # fmt: skip
    due = ledger.expire("shop", RELEASED, policy=policy, zone=PARIS)
    assert (due.transactions, due.lots, due.points) == (1, 1, {"points": 100})
    assert entries(ledger, "bob") == [
        ("earn", EARN_AT, 0, 100),
        ("release", RELEASED, 100, -100),
        ("expire", RELEASED, -100, 0),
    ]
    assert lots(ledger.db) == [(100, "expired", HOLD_END)]


def test_the_check_flags_an_expiry_dated_before_the_release(db: Database) -> None:
    """Books as the old job wrote them (an expiry at 10-02 of a lot released at 10-05),
    forged by hand: the database's triggers refuse changes to written entries."""
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
        issued = one("SELECT id FROM accounts WHERE member_id IS NULL AND kind = 'issued'")
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
                                                          (issued, None, 100)]):  # fmt: skip
            conn.execute(
                text("INSERT INTO postings (id, transaction_id, account_id, lot_id, points) "
                     "VALUES (:id, 900, :a, :l, :p)"),
                {"id": 9000 + n, "a": account_id, "l": lot_id, "p": points},
            )  # fmt: skip
    found = {v.rule: v for v in find_violations(db)}
    flagged = found[
        "no expiry takes points from a lot before its release made them available "
        "(an expiry dated before the lot's release)"
    ]
    assert flagged.count == 1
    assert [(r["transaction"], r["member"], r["lot"], r["release"]) for r in flagged.sample] == [
        (900, "pat", 1, 2)
    ]
