"""Dates on the ledger's command line are the program's days when the program file is
known, as ``tier review`` reads them: the daily jobs' ``--as-of DATE`` is that date's
midnight in the program's time zone, and ``balance`` shows the next expiry as an instant
in it (UTC with a program id only). The installed script on a real SQLite file."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.cli.support import TIER_PROGRAM, fidelite


@pytest.fixture
def shop(tmp_path: Path) -> tuple[Path, str]:
    """A program in Paris where ann earned 10 points expiring at Paris midnight on
    2026-12-01, and 7 pending until 00:30 Paris time on 2026-03-01 (23:30 UTC the day
    before) that then expire at that same instant."""
    program = tmp_path / "shop.yaml"
    program.write_text(TIER_PROGRAM, encoding="utf-8")
    db = f"sqlite:///{tmp_path / 'shop.db'}"
    fidelite("db", "upgrade", db=db)
    fidelite("member", "add", "ann", "-p", program, db=db)
    fidelite("ledger", "earn", "ann", "10", "-k", "e1", "-p", program, "--at", "2026-01-05",
             "--expires", "2026-12-01T00:00:00+01:00", db=db)  # fmt: skip
    fidelite("ledger", "earn", "ann", "7", "-k", "e2", "-p", program, "--at", "2026-01-05",
             "--pending-until", "2026-02-28T23:30:00Z", db=db)  # fmt: skip
    return program, db


def _job(db: str, *args: str | Path) -> dict[str, object]:
    answer = json.loads(fidelite("ledger", *args, "-f", "json", db=db).stdout)
    return {k: answer[k] for k in ("as_of", "transactions", "points")}


def test_balance_shows_the_next_expiry_in_the_programs_time_zone(
    shop: tuple[Path, str],
) -> None:
    program, db = shop
    at = ("--as-of", "2026-06-01T00:00:00Z")
    by_file = fidelite("ledger", "balance", "ann", "-p", program, *at, db=db).stdout
    assert by_file == (
        "ann points: available 17, pending 0, expiring within 30 days 0, debt 0, "
        "next expiry 2026-12-01T00:00:00+01:00\n"
    )
    by_id = fidelite("ledger", "balance", "ann", "-p", "shop", *at, db=db).stdout
    assert by_id.endswith(", next expiry 2026-11-30T23:00:00+00:00\n")


def test_release_due_reads_a_date_as_midnight_in_the_programs_time_zone(
    shop: tuple[Path, str],
) -> None:
    program, db = shop
    # Paris midnight of 2026-03-01 is 2026-02-28T23:00Z: the hold ends 30 minutes later
    assert _job(db, "release-due", "--as-of", "2026-03-01", "-p", program) == {
        "as_of": "2026-02-28T23:00:00+00:00",
        "transactions": 0,
        "points": {},
    }
    assert _job(db, "release-due", "--as-of", "2026-03-02", "-p", program) == {
        "as_of": "2026-03-01T23:00:00+00:00",
        "transactions": 1,
        "points": {"points": 7},
    }


def test_release_due_with_a_program_id_reads_a_date_as_midnight_utc(
    shop: tuple[Path, str],
) -> None:
    _, db = shop
    assert _job(db, "release-due", "--as-of", "2026-03-01", "-p", "shop") == {
        "as_of": "2026-03-01T00:00:00+00:00",
        "transactions": 1,
        "points": {"points": 7},
    }


def test_expire_reads_a_date_as_midnight_in_the_programs_time_zone(
    shop: tuple[Path, str],
) -> None:
    program, db = shop
    fidelite("ledger", "earn", "ann", "3", "-k", "e3", "-p", program, "--at", "2026-01-05",
             "--expires", "2026-11-30T23:30:00Z", db=db)  # fmt: skip
    # Paris midnight of 2026-12-01 is 2026-11-30T23:00Z: the 10 points are due, the 3
    # points (00:30 in Paris) only as of the next day
    assert _job(db, "expire", "--as-of", "2026-12-01", "-p", program) == {
        "as_of": "2026-11-30T23:00:00+00:00",
        "transactions": 1,
        "points": {"points": 10},
    }
    assert _job(db, "expire", "--as-of", "2026-12-02", "-p", program) == {
        "as_of": "2026-12-01T23:00:00+00:00",
        "transactions": 1,
        "points": {"points": 3},
    }


def _balance(db: str, *args: str | Path) -> tuple[int, int]:
    answer = json.loads(fidelite("ledger", "balance", "ann", *args, "-f", "json", db=db).stdout)
    return answer["available"], answer["pending"]


def test_balance_reads_a_date_as_midnight_in_the_programs_time_zone(
    shop: tuple[Path, str],
) -> None:
    program, db = shop
    # Paris midnight of 2026-03-01 is 2026-02-28T23:00Z: the 7 points are held 30 minutes
    # more; midnight UTC (a program id only) is after the hold has ended
    assert _balance(db, "--as-of", "2026-03-01", "-p", program) == (10, 7)
    assert _balance(db, "--as-of", "2026-03-01", "--program-file", program) == (10, 7)
    assert _balance(db, "--as-of", "2026-03-01", "-p", "shop") == (17, 0)
    # a time with its offset is that instant, whatever the program option
    assert _balance(db, "--as-of", "2026-03-01T00:00:00+01:00", "-p", "shop") == (10, 7)
    assert _balance(db, "--as-of", "2026-03-01T00:00:00Z", "-p", program) == (17, 0)


def _announced(db: str, *args: str | Path) -> list[tuple[int, str]]:
    """Run ``webhooks expiring`` (30 days); every points.expiring event so far, by id:
    the points and the expiry instant announced."""
    fidelite("webhooks", "expiring", "--days", "30", *args, "-f", "json", db=db)
    with sqlite3.connect(db.removeprefix("sqlite:///")) as conn:
        rows = conn.execute(
            "SELECT payload FROM outbox WHERE event_type = 'points.expiring' ORDER BY id"
        ).fetchall()
    return [(json.loads(r[0])["points"], json.loads(r[0])["expires_at"]) for r in rows]


@pytest.mark.parametrize("by_file", [True, False])
def test_webhooks_expiring_reads_a_date_as_midnight_in_the_programs_time_zone(
    shop: tuple[Path, str], by_file: bool
) -> None:
    """Given the program file, --as-of 2026-03-01 starts the window at Paris midnight
    (2026-02-28T23:00Z), so it ends 30 days later at 2026-03-30T23:00Z: the 3 points
    expiring at 00:30 in Paris on 1 March are within it, the 4 points expiring at
    23:30Z on 30 March are not. With a program id, the window starts at midnight UTC."""
    program, db = shop
    for key, points, expires in (("e3", "3", "2026-02-28T23:30:00Z"),
                                 ("e4", "4", "2026-03-30T23:30:00Z")):  # fmt: skip
        fidelite("ledger", "earn", "ann", points, "-k", key, "-p", program,
                 "--at", "2026-01-05", "--expires", expires, db=db)  # fmt: skip
    if by_file:
        assert _announced(db, "--as-of", "2026-03-01", "--program-file", program) == [
            (3, "2026-02-28T23:30:00+00:00")
        ]
    else:
        assert _announced(db, "--as-of", "2026-03-01", "-p", "shop") == [
            (4, "2026-03-30T23:30:00+00:00")
        ]


def test_webhooks_expiring_keeps_a_time_with_its_offset_and_refuses_one_without(
    shop: tuple[Path, str],
) -> None:
    program, db = shop
    fidelite("ledger", "earn", "ann", "3", "-k", "e3", "-p", program, "--at", "2026-01-05",
             "--expires", "2026-02-28T23:30:00Z", db=db)  # fmt: skip
    refused = fidelite("webhooks", "expiring", "--as-of", "2026-03-01T00:00:00", "-p", program,
                       "-f", "json", db=db, ok=False)  # fmt: skip
    assert refused.returncode == 2
    assert json.loads(refused.stdout)["error"] == {
        "code": "usage",
        "message": "--as-of: '2026-03-01T00:00:00' needs a UTC offset (e.g. "
        "2026-03-01T00:00:00+01:00)",
    }
    assert _announced(db, "--as-of", "2026-03-01T00:00:00Z", "-p", program) == []
    assert _announced(db, "--as-of", "2026-03-01T00:00:00+01:00", "-p", "shop") == [
        (3, "2026-02-28T23:30:00+00:00")
    ]
