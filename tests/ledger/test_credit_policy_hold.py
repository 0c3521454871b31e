"""A credit dated by the program's ``after_earning`` policy is refused, as one with a
given ``expires_at`` is, when its hold (``pending_until``) ends at or after that date:
its points would expire while still on hold. Only an earn can hold points (adjustments,
on the ledger, the command line and the API, take no ``pending_until``). A refusal
changes nothing; a key used before replays as it was. SQLite file and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from fidelite.ledger import Rejected
from fidelite.program.policy import ExpiryPolicy
from fidelite.store import Database
from fidelite.store.tables import LedgerTransaction, Lot
from tests.cli.support import as_json, fidelite
from tests.support import CheckedLedger

MONTHLY = ExpiryPolicy(mode="after_earning", months=1, rounding="end_of_month")  # type: ignore[arg-type]
PARIS = ZoneInfo("Europe/Paris")
PROGRAM = """\
id: shop
name: Shop
time_zone: Europe/Paris
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
expiry: {mode: after_earning, months: 1, rounding: end_of_month}
"""
EARNED = "2026-12-01T10:00:00+01:00"
# 1 month after 1 December, end of month, in Paris: 1 February 2027 00:00 Paris
POLICY_DATE = datetime(2027, 1, 31, 23, tzinfo=UTC)
REFUSAL = (
    "pending_until: must be earlier than expires_at (2027-02-01T00:00:00+01:00, the date "
    "the program's expiry policy gives points earned at 2026-12-01T10:00:00+01:00)"
)


def lots(db: Database) -> list[tuple[int, datetime | None, datetime | None]]:
    with db.read() as conn:
        rows = conn.execute(select(Lot.points, Lot.expires_at, Lot.pending_until).order_by(Lot.id))
        return [(int(p), x, h) for p, x, h in rows]


def transactions(db: Database) -> int:
    with db.read() as conn:
        return len(conn.execute(select(LedgerTransaction.id)).all())


def test_a_hold_reaching_the_policys_date_is_refused(ledger: CheckedLedger) -> None:
    for held in ("2027-03-01T00:00:00+01:00", "2027-02-01T00:00:00+01:00"):
        with pytest.raises(Rejected) as refused:  # CheckedLedger: nothing changed
            ledger.earn("shop", "bob", "points", 100, key=f"k-{held}", at=EARNED,
                        pending_until=held, policy=MONTHLY, zone=PARIS)  # fmt: skip
        assert (refused.value.code.value, refused.value.field) == (
            "invalid_request", "pending_until")  # fmt: skip
    assert refused.value.message == REFUSAL
    # a hold ending before the date is taken, as without a policy any hold is
    ledger.earn("shop", "bob", "points", 40, key="ok", at=EARNED,
                pending_until="2027-01-31T23:59:59+01:00", policy=MONTHLY, zone=PARIS)  # fmt: skip
    ledger.earn("shop", "bob", "points", 9, key="bare", at=EARNED,
                pending_until="2027-03-01T00:00:00+01:00")  # fmt: skip
    assert lots(ledger.db) == [
        (40, POLICY_DATE, datetime(2027, 1, 31, 22, 59, 59, tzinfo=UTC)),
        (9, None, datetime(2027, 2, 28, 23, tzinfo=UTC)),
    ]
    # a key used before the policy dated credits replays as it was recorded
    again = ledger.earn("shop", "bob", "points", 9, key="bare", at=EARNED,
                        pending_until="2027-03-01T00:00:00+01:00", policy=MONTHLY,
                        zone=PARIS)  # fmt: skip
    assert again.replayed is True
    assert [p for p, _, _ in lots(ledger.db)] == [40, 9]


def test_the_command_line_refuses_it_too(db: Database, tmp_path: Path) -> None:
    program = tmp_path / "p.yaml"
    program.write_text(PROGRAM, encoding="utf-8")
    fidelite("member", "add", "ann", "-p", program, db=db.url)
    common = ("ann", "100", "-P", program, "--at", EARNED, "-f", "json")
    late = fidelite("ledger", "earn", *common, "-k", "k1", "--pending-until", "2027-03-01",
                    db=db.url, ok=False)  # fmt: skip
    given = fidelite("ledger", "earn", *common, "-k", "k2", "--pending-until", "2027-03-01",
                     "--expires", "2027-01-01", db=db.url, ok=False)  # fmt: skip
    assert (late.returncode, as_json(late)["error"]) == (1, {
        "code": "invalid_request", "message": REFUSAL, "field": "pending_until"})  # fmt: skip
    assert as_json(given)["error"]["message"] == "pending_until: must be earlier than expires_at"
    assert (transactions(db), lots(db)) == (0, [])
    # no adjustment holds points: ledger adjust has no --pending-until
    adjust = fidelite("ledger", "adjust", "ann", "5", "--reason", "goodwill", "--actor", "qa",
                      "-k", "g1", "-P", program, "--pending-until", "2027-03-01",
                      db=db.url, ok=False)  # fmt: skip
    assert adjust.returncode == 2
    taken = fidelite("ledger", "earn", *common, "-k", "k3", "--pending-until", "2027-01-31",
                     db=db.url)  # fmt: skip
    assert (as_json(taken)["points"], as_json(taken)["pending_after"]) == (100, 100)
    assert lots(db) == [(100, POLICY_DATE, datetime(2027, 1, 30, 23, tzinfo=UTC))]
