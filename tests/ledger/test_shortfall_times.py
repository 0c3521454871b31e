"""An ``insufficient_points`` refusal gives its times in the program's time zone, with
their offset: when the first pending points become available as when points lapsed
(the detail's ``pending_until`` stays in UTC, as docs/api.md documents it). Nothing is
written. On a SQLite file and on PostgreSQL."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from fidelite.ledger import Rejected, RejectionCode
from fidelite.program.policy import ExpiryPolicy
from tests.support import CheckedLedger, snapshot

PARIS = ZoneInfo("Europe/Paris")
MONTHLY = ExpiryPolicy(mode="inactivity", months=1)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def refused(ledger: CheckedLedger, points: int, **kw: object) -> Rejected:
    before = snapshot(ledger.db)
    with pytest.raises(Rejected) as caught:
        ledger.spend("shop", "alice", "points", points, key="s1", **kw)  # type: ignore[arg-type]
    assert caught.value.code is RejectionCode.INSUFFICIENT_POINTS
    assert snapshot(ledger.db) == before
    return caught.value


def test_the_first_hold_end_is_given_in_the_programs_time_zone(ledger: CheckedLedger) -> None:
    ledger.earn("shop", "alice", "points", 10, key="e1", at=at("2026-03-01T10:00:00+01:00"))
    ledger.earn("shop", "alice", "points", 40, key="e2", at=at("2026-03-01T10:00:00+01:00"),
                pending_until=at("2026-04-01T00:00:00+02:00"))  # fmt: skip
    short = refused(ledger, 30, at=at("2026-03-20T12:00:00+01:00"), zone=PARIS)
    assert short.message == (
        "member 'alice' has 10 points available, 30 requested; 40 more pending "
        "(the first available from 2026-04-01T00:00:00+02:00)"
    )
    assert short.detail == {"available": 10, "requested": 30, "pending": 40,
                            "pending_until": "2026-03-31T22:00:00+00:00"}  # fmt: skip
    # without the program's zone the ledger knows only UTC, and says so by the offset
    unzoned = refused(ledger, 30, at=at("2026-03-20T12:00:00+01:00"))
    assert unzoned.message.endswith("(the first available from 2026-03-31T22:00:00+00:00)")


def test_pending_and_lapsed_times_are_given_in_the_same_zone(ledger: CheckedLedger) -> None:
    ledger.earn("shop", "alice", "points", 120, key="e1", at=at("2026-01-05T10:00:00+01:00"))
    ledger.earn("shop", "alice", "points", 40, key="e2", at=at("2026-01-05T10:00:00+01:00"),
                pending_until=at("2026-03-01T00:00:00+01:00"))  # fmt: skip
    short = refused(ledger, 30, at=at("2026-02-10T12:00:00+01:00"), policy=MONTHLY, zone=PARIS)
    assert short.message == (
        "member 'alice' has 0 points available, 30 requested; 40 more pending "
        "(the first available from 2026-03-01T00:00:00+01:00); 120 lapsed at "
        "2026-02-05T10:00:00+01:00 after no activity since 2026-01-05T10:00:00+01:00"
    )
    assert short.detail is not None
    assert short.detail["pending_until"] == "2026-02-28T23:00:00+00:00"
    assert short.detail["lapsed_at"] == "2026-02-05T10:00:00+01:00"
