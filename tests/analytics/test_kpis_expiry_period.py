"""Program KPIs count expired points in the period of the expiry job's as-of date.

Not in the period the job ran (here: years later), nor in that of the lots' own expiry
dates; and the result's definition says what ``points_expired`` is (it defined every
other flow but that one).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from fidelite.analytics.kpis import program_kpis
from fidelite.processing import EventProcessor
from fidelite.program import parse_program
from fidelite.store import Database
from tests.analytics.test_kpis import PROGRAM, _event


def test_points_expired_count_at_the_jobs_as_of_date(db: Database) -> None:
    p = EventProcessor(db, parse_program(PROGRAM))
    p.process(_event("p1", "purchase", "ann", "2024-01-05T10:00:00+00:00", amount=Decimal(100)))
    p.process(_event("p2", "purchase", "bob", "2024-01-06T10:00:00+00:00", amount=Decimal(40)))
    p.redeem("ann", "cup", key="r1", at=datetime.fromisoformat("2024-01-08T10:00:00+00:00"))
    # The lots expire on 5 and 6 February; the job runs now, as of 15 March 2024.
    p.ledger.expire("cafe", as_of="2024-03-15T12:00:00+00:00")
    result = program_kpis(db.url, "cafe", value=Decimal("0.01"))
    expired = {r["period"]: r["points_expired"] for r in result.rows}
    # ann's 100 (50 left after the cup) and bob's 40: 90, all in March
    assert expired == {"2024-01": 0, "2024-02": 0, "2024-03": 90}
    assert (
        "expired = points the expiry job expired, in the period of its as-of date (net of "
        "the expired points of purchases refunded in the period)"
    ) in result.definition
