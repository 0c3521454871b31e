"""The daily jobs (``ledger release-due``, ``ledger expire``) report one total per
currency: points of different currencies (points, stars) are never added together, in
the ledger's report, in the CLI's sentence or in its JSON."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from fidelite.ledger.service import JobReport
from tests.cli.support import fidelite
from tests.conftest import BACKENDS, make_database
from tests.support import CheckedLedger

AT = "2026-03-01T10:00:00+00:00"
DUE = "2026-03-10T00:00:00+00:00"
# (member, currency, points, key): 131 points and 2 stars, in three earns
EARNS = [("ann", "points", 100, "e1"), ("ann", "stars", 2, "e2"), ("bob", "points", 31, "e3")]


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated database with program ``cafe`` (currencies points and stars)."""
    database = make_database(request.param, request, tmp_path)
    database.dispose()
    fidelite("ledger", "open", "cafe", "-c", "points", "-c", "stars", db=database.url)
    for member in ("ann", "bob"):
        fidelite("member", "add", member, "-p", "cafe", db=database.url)
    yield database.url


def earn(url: str, member: str, currency: str, points: int, key: str, *hold: str) -> None:
    fidelite("ledger", "earn", member, str(points), "-k", key, "-c", currency, "-p", "cafe",
             "--at", AT, *hold, db=url)  # fmt: skip


def test_release_due_reports_points_and_stars_apart(url: str) -> None:
    for member, currency, points, key in EARNS:
        earn(url, member, currency, points, key, "--pending-until", DUE)
    earn(url, "bob", "stars", 1, "e4", "--pending-until", "2026-04-01T00:00:00+00:00")
    as_json = json.loads(fidelite("ledger", "release-due", "--as-of", DUE, "-p", "cafe",
                                  "-f", "json", db=url).stdout)  # fmt: skip
    assert as_json == {"as_of": DUE, "transactions": 3, "lots": 3,
                       "points": {"points": 131, "stars": 2}}  # fmt: skip
    again = fidelite("ledger", "release-due", "--as-of", DUE, "-p", "cafe", db=url).stdout
    assert again.strip() == "released 0 points (0 earns)"  # already released: nothing twice
    later = fidelite("ledger", "release-due", "--as-of", "2026-04-01", "-p", "cafe", db=url)
    assert later.stdout.strip() == "released 1 stars (1 earns)"


def test_release_due_table_names_each_currency(url: str) -> None:
    for member, currency, points, key in EARNS:
        earn(url, member, currency, points, key, "--pending-until", DUE)
    earn(url, "bob", "stars", 1, "e4", "--pending-until", DUE)
    shown = fidelite("ledger", "release-due", "--as-of", DUE, "-p", "cafe", db=url).stdout
    assert shown.strip() == "released 131 points, 3 stars (4 earns)"


def test_expire_reports_points_and_stars_apart(url: str) -> None:
    for member, currency, points, key in EARNS:
        earn(url, member, currency, points, key, "--expires", DUE)
    earn(url, "bob", "stars", 1, "e4", "--expires", "2026-04-01T00:00:00+00:00")
    shown = fidelite("ledger", "expire", "--as-of", DUE, "-p", "cafe", db=url).stdout
    assert shown.splitlines()[0] == (
        f"expired 131 points, 2 stars from 3 lots (3 members/currencies) as of {DUE}"
    )
    later = json.loads(fidelite("ledger", "expire", "--as-of", "2026-04-01", "-p", "cafe",
                                "-f", "json", db=url).stdout)  # fmt: skip
    assert later == {"as_of": "2026-04-01T00:00:00+00:00", "program": "cafe", "inactivity": None,
                     "transactions": 1, "lots": 1, "points": {"stars": 1}}  # fmt: skip


def test_the_ledgers_job_reports_carry_points_per_currency(ledger: CheckedLedger) -> None:
    for member, currency, points in (("alice", "points", 100), ("alice", "miles", 2),
                                     ("bob", "points", 31)):  # fmt: skip
        ledger.earn("shop", member, currency, points, key=f"p-{member}-{currency}", at=AT,
                    pending_until=DUE, expires_at="2026-03-20T00:00:00+00:00")  # fmt: skip
    assert ledger.release_due("shop", DUE) == JobReport(3, 3, {"points": 131, "miles": 2})
    assert ledger.release_due("shop", DUE) == JobReport(0, 0, {})
    report = ledger.expire("shop", "2026-03-20T00:00:00+00:00")
    assert report == JobReport(3, 3, {"points": 131, "miles": 2})
