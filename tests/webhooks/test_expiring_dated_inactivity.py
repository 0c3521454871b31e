"""``points.expiring`` for dated lots under an inactivity policy (a credit given an
expiry date, or lots kept from an ``after_earning`` policy): points counted as the
balance counts them. A dated lot that lapsed by inactivity is gone (balance 0) and is
not announced for its date; one the coming inactivity deadline takes before its date
is announced once, for the deadline, not for its date as well. On a SQLite file and on
PostgreSQL, exact values."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from fidelite.ledger import Ledger
from fidelite.program import parse_program
from fidelite.store import Database
from fidelite.webhooks.expiring import announce_expiring_points
from tests.webhooks.support import PROGRAM, outbox_rows

INACTIVE = parse_program(PROGRAM + "expiry: {mode: inactivity, months: 6, warn_days: 30}\n")
AFTER_EARNING = parse_program(PROGRAM + "expiry: {mode: after_earning, months: 11}\n")
UTC_ZONE = ZoneInfo("UTC")


def at(value: str) -> datetime:
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


def credit(ledger: Ledger, member: str, points: int, key: str, when: str,
           expires: str | None) -> None:  # fmt: skip
    """A hand credit (an activity) at ``when``, dated ``expires``."""
    ledger.adjust("shop", member, "points", points, reason="gift", key=key, actor="test",
                  at=at(when), expires_at=None if expires is None else at(expires),
                  policy=INACTIVE.expiry, zone=UTC_ZONE)  # fmt: skip


def announced(db: Database, as_of: str) -> list[tuple[str, int, str, str]]:
    found = announce_expiring_points(db, "shop", at(as_of), policy=INACTIVE.expiry,
                                     zone=UTC_ZONE)  # fmt: skip
    return [(e["member"], e["points"], e["expires_at"], e["cause"]) for e in found]


def available(ledger: Ledger, member: str, as_of: str) -> int:
    return ledger.balance("shop", member, "points", as_of=at(as_of), policy=INACTIVE.expiry,
                          zone=UTC_ZONE).available  # fmt: skip


def test_a_dated_lot_lapsed_by_inactivity_is_not_announced(wdb: Database) -> None:
    """u: 100 points credited on 10 January, dated 25 December; no activity since, so
    they lapsed on 10 July. The run of 1 December (window to 31 December) announces
    nothing: the balance holds 0. v, active since (1 November), keeps their 100 dated
    25 December: announced for that date."""
    ledger = Ledger(wdb)
    ledger.open_program("shop", ["points"])
    ledger.create_member("shop", "u")
    ledger.create_member("shop", "v")
    credit(ledger, "u", 100, "u1", "2026-01-10T09:00:00", "2026-12-25T09:00:00")
    credit(ledger, "v", 100, "v1", "2026-01-10T09:00:00", "2026-12-25T09:00:00")
    credit(ledger, "v", 1, "v2", "2026-06-01T09:00:00", None)
    credit(ledger, "v", 1, "v3", "2026-11-01T09:00:00", None)
    assert available(ledger, "u", "2026-12-01T00:00:00") == 0
    assert available(ledger, "v", "2026-12-01T00:00:00") == 102
    assert announced(wdb, "2026-12-01T00:00:00") == [
        ("v", 100, "2026-12-25T09:00:00+00:00", "date"),
    ]
    assert [r["payload"]["member"] for r in outbox_rows(wdb)] == ["v"]


def test_a_dated_lot_lapsing_before_its_date_is_announced_for_the_deadline(
    wdb: Database,
) -> None:
    """w: 100 points credited on 10 June, dated 25 December; without activity they lapse
    on 10 December, before their date: one warning, for the deadline, as the balance
    counts them (expiring then)."""
    ledger = Ledger(wdb)
    ledger.open_program("shop", ["points"])
    ledger.create_member("shop", "w")
    credit(ledger, "w", 100, "w1", "2026-06-10T09:00:00", "2026-12-25T09:00:00")
    assert announced(wdb, "2026-12-01T00:00:00") == [
        ("w", 100, "2026-12-10T09:00:00+00:00", "inactivity"),
    ]
    assert announced(wdb, "2026-12-02T00:00:00") == []


def test_lots_dated_under_after_earning_then_lapsed_under_inactivity(wdb: Database) -> None:
    """Lots earned under after_earning (dated 11 months on), then the program switches
    to inactivity (6 months): the lot lapsed in July is not announced for its December
    date."""
    ledger = Ledger(wdb)
    ledger.open_program("shop", ["points"])
    ledger.create_member("shop", "x")
    ledger.earn("shop", "x", "points", 100, key="x1", at=at("2026-01-25T09:00:00"),
                expires_at=at("2026-12-25T09:00:00"), reason="purchase")  # fmt: skip
    assert available(ledger, "x", "2026-12-01T00:00:00") == 0
    assert announced(wdb, "2026-12-01T00:00:00") == []
    assert outbox_rows(wdb) == []
