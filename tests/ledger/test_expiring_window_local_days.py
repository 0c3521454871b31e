"""The balance's ``expiring_soon`` window counts local calendar days of the program's
zone, as expiry dates keep the local clock: 30 days from midnight of 2 October in
Paris end at midnight of 1 November (winter time), where the points of a lot rounded to
the end of October expire. On a SQLite file and on PostgreSQL, exact values.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from tests.support import CheckedLedger

PARIS = ZoneInfo("Europe/Paris")
AS_OF = "2026-10-02T00:00:00+02:00"


def test_expiring_soon_ends_at_the_same_local_time_across_a_dst_change(
    ledger: CheckedLedger,
) -> None:
    ledger.earn("shop", "bob", "points", 40, key="e1", at="2026-09-01T10:00:00+02:00",
                expires_at="2026-11-01T00:00:00+01:00")  # fmt: skip
    ledger.earn("shop", "bob", "points", 7, key="e2", at="2026-09-01T10:00:00+02:00",
                expires_at="2026-11-01T00:00:00.000001+01:00")  # fmt: skip
    b = ledger.balance("shop", "bob", "points", as_of=AS_OF, soon_days=30, zone=PARIS)
    assert (b.available, b.expiring_soon, b.expiring_window_days) == (47, 40, 30)
    assert b.next_expiry == datetime.fromisoformat("2026-11-01T00:00:00+01:00")
    # without a zone the window is 30 days of UTC (24 hours each): the lot is beyond it
    b = ledger.balance("shop", "bob", "points", as_of=AS_OF, soon_days=30)
    assert (b.available, b.expiring_soon) == (47, 0)
