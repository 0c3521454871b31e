"""A credit (goodwill adjustment) whose points would expire at or before now is refused:
back-dated with ``at`` so that the program's ``after_earning`` policy dates it in the
past, or given such an ``expires_at``. It would otherwise be shown as credited and then
taken away by the next expiry run. A refused credit changes nothing (the checked ledger
compares every table); a key used before replays as it was. The command line refuses it
the same way. On a SQLite file and on PostgreSQL, exact values."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from fidelite.ledger import Rejected
from fidelite.program.policy import ExpiryPolicy
from fidelite.store import Database
from tests.cli.support import fidelite
from tests.support import CheckedLedger, snapshot

# 2 months, end of month: a credit of 1 July 2026 (Paris) expires 1 October 2026
POLICY = ExpiryPolicy(mode="after_earning", months=2, rounding="end_of_month")  # type: ignore[arg-type]
PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2026, 12, 8, 1, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def books(db: Database, clock: Clock) -> CheckedLedger:
    checked = CheckedLedger(db, clock=clock)
    checked.open_program("cafe", ["points"])
    checked.create_member("cafe", "M0010")
    checked.earn("cafe", "M0010", "points", 471, key="e1", at="2026-12-01T10:00:00+00:00")
    return checked


def refusal(books: CheckedLedger, **kwargs: object) -> Rejected:
    with pytest.raises(Rejected) as caught:
        books.adjust("cafe", "M0010", "points", 30, reason="backdated goodwill", actor="carol",
                     policy=POLICY, zone=PARIS, **kwargs)  # type: ignore[arg-type]  # fmt: skip
    return caught.value


def available(books: CheckedLedger) -> int:
    return books.balance("cafe", "M0010", "points", policy=POLICY, zone=PARIS).available


def test_a_backdated_credit_the_policy_dates_in_the_past_is_refused(books: CheckedLedger) -> None:
    before = snapshot(books.db)
    refused = refusal(books, key="adj-bd", at="2026-07-01T00:00:00+02:00")
    assert (refused.code.value, refused.field) == ("invalid_request", "expires_at")
    assert refused.message == (
        "expires_at: the points would expire at 2026-10-01T00:00:00+02:00, the date the "
        "program's expiry policy gives points earned at 2026-07-01T00:00:00+02:00, which is "
        "not later than now (2026-12-08T02:00:00+01:00): give a later expiry date, or credit "
        "them at a later time"
    )
    assert snapshot(books.db) == before
    assert available(books) == 471
    # nothing for the expiry job to take either
    assert books.expire("cafe", NOW, policy=POLICY, zone=PARIS).points == {}


@pytest.mark.parametrize("expires", ["2026-08-01T00:00:00+02:00", "2026-12-08T01:00:00+00:00"])
def test_a_given_date_at_or_before_now_is_refused(books: CheckedLedger, expires: str) -> None:
    before = snapshot(books.db)
    refused = refusal(books, key="adj-bd", at="2026-07-01T00:00:00+02:00", expires_at=expires)
    assert (refused.code.value, refused.field) == ("invalid_request", "expires_at")
    shown = datetime.fromisoformat(expires).astimezone(PARIS).isoformat()
    assert refused.message == (
        "expires_at: must be later than now (2026-12-08T02:00:00+01:00): points expiring at "
        f"{shown} would already be expired"
    )
    assert snapshot(books.db) == before
    assert available(books) == 471


def test_a_credit_expiring_after_now_is_made(books: CheckedLedger) -> None:
    # back-dated to 1 November: the policy gives 1 February 2027, still to come
    done = books.adjust("cafe", "M0010", "points", 30, key="adj-nov", reason="goodwill",
                        actor="carol", at="2026-11-01T00:00:00+01:00", policy=POLICY,
                        zone=PARIS)  # fmt: skip
    given = books.adjust("cafe", "M0010", "points", 5, key="adj-given", reason="goodwill",
                         actor="carol", at="2026-07-01T00:00:00+02:00",
                         expires_at="2026-12-08T01:00:01+00:00")  # fmt: skip
    assert (done.available_after, given.available_after) == (501, 506)
    with books.db.read() as conn:
        dates = conn.execute(text("SELECT points, expires_at FROM lots ORDER BY id")).all()
    found = [(int(p), x if isinstance(x, datetime) else datetime.fromisoformat(str(x)))
             for p, x in dates[1:]]  # fmt: skip
    assert [(p, x.replace(tzinfo=x.tzinfo or UTC)) for p, x in found] == [
        (30, datetime(2027, 1, 31, 23, tzinfo=UTC)),
        (5, datetime(2026, 12, 8, 1, 0, 1, tzinfo=UTC)),
    ]


def test_a_credit_made_before_replays_after_its_date_passed(
    books: CheckedLedger, clock: Clock
) -> None:
    clock.now = datetime(2026, 7, 2, tzinfo=UTC)
    first = books.adjust("cafe", "M0010", "points", 30, key="adj-bd", reason="goodwill",
                         actor="carol", at="2026-07-01T00:00:00+02:00", policy=POLICY,
                         zone=PARIS)  # fmt: skip
    clock.now = NOW
    again = books.adjust("cafe", "M0010", "points", 30, key="adj-bd", reason="goodwill",
                         actor="carol", at="2026-07-01T00:00:00+02:00", policy=POLICY,
                         zone=PARIS)  # fmt: skip
    assert (again.replayed, again.transaction_id) == (True, first.transaction_id)


PROGRAM = """\
id: cafe
name: Cafe
time_zone: Europe/Paris
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
expiry: {mode: after_earning, months: 2, rounding: end_of_month}
"""


def test_the_command_line_refuses_it_and_changes_nothing(db: Database, tmp_path: Path) -> None:
    program = tmp_path / "cafe.yaml"
    program.write_text(PROGRAM, encoding="utf-8")
    fidelite("member", "add", "M0010", "-p", program, db=db.url)
    before = snapshot(db)
    # a year ago (the real clock: these dates are past whenever the test runs)
    for extra in ((), ("--expires", "2020-08-01")):
        proc = fidelite("ledger", "adjust", "M0010", "30", "-p", program, "--reason",
                        "backdated goodwill", "--actor", "carol", "-k", "adj-bd", "--at",
                        "2020-07-01", *extra, "-f", "json", db=db.url, ok=False)  # fmt: skip
        assert proc.returncode == 1
        assert '"field": "expires_at"' in proc.stdout
        assert "would" in proc.stdout and "2020-" in proc.stdout
        assert snapshot(db) == before
