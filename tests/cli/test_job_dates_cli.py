"""Dates on the ledger's command line are the program's days when the program file is
known, as ``tier review`` reads them: the daily jobs' ``--as-of DATE`` is that date's
midnight in the program's time zone, and ``balance`` shows the next expiry as an instant
in it (UTC with a program id only). The installed script on a real SQLite file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.support import TIER_PROGRAM, fidelite


@pytest.fixture
def shop(tmp_path: Path) -> tuple[Path, str]:
    """A program in Paris where ann earned 10 points expiring at Paris midnight on
    2027-12-01, and 7 pending until 00:30 Paris time on 2026-03-01 (23:30 UTC the day
    before) that then expire at that same instant."""
    program = tmp_path / "shop.yaml"
    program.write_text(TIER_PROGRAM, encoding="utf-8")
    db = f"sqlite:///{tmp_path / 'shop.db'}"
    fidelite("db", "upgrade", db=db)
    fidelite("member", "add", "ann", "-p", program, db=db)
    fidelite("ledger", "earn", "ann", "10", "-k", "e1", "-p", program, "--at", "2026-01-05",
             "--expires", "2027-12-01T00:00:00+01:00", db=db)  # fmt: skip
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
        "next expiry 2027-12-01T00:00:00+01:00\n"
    )
    by_id = fidelite("ledger", "balance", "ann", "-p", "shop", *at, db=db).stdout
    assert by_id.endswith(", next expiry 2027-11-30T23:00:00+00:00\n")


def test_release_due_reads_a_date_as_midnight_in_the_programs_time_zone(
    shop: tuple[Path, str],
) -> None:
    program, db = shop
    # Paris midnight of 2026-03-01 is 2026-02-28T23:00Z: the hold ends 30 minutes later
    assert _job(db, "release-due", "--as-of", "2026-03-01", "-p", program) == {
        "as_of": "2026-03-01", "transactions": 0, "points": {}}  # fmt: skip
    assert _job(db, "release-due", "--as-of", "2026-03-02", "-p", program) == {
        "as_of": "2026-03-02", "transactions": 1, "points": {"points": 7}}  # fmt: skip


def test_release_due_with_a_program_id_reads_a_date_as_midnight_utc(
    shop: tuple[Path, str],
) -> None:
    _, db = shop
    assert _job(db, "release-due", "--as-of", "2026-03-01", "-p", "shop") == {
        "as_of": "2026-03-01", "transactions": 1, "points": {"points": 7}}  # fmt: skip


def test_expire_reads_a_date_as_midnight_in_the_programs_time_zone(
    shop: tuple[Path, str],
) -> None:
    program, db = shop
    fidelite("ledger", "earn", "ann", "3", "-k", "e3", "-p", program, "--at", "2026-01-05",
             "--expires", "2027-11-30T23:30:00Z", db=db)  # fmt: skip
    # Paris midnight of 2027-12-01 is 2027-11-30T23:00Z: the 10 points are due, the 3
    # points (00:30 in Paris) only as of the next day
    assert _job(db, "expire", "--as-of", "2027-12-01", "-p", program) == {
        "as_of": "2027-12-01", "transactions": 1, "points": {"points": 10}}  # fmt: skip
    assert _job(db, "expire", "--as-of", "2027-12-02", "-p", program) == {
        "as_of": "2027-12-02", "transactions": 1, "points": {"points": 3}}  # fmt: skip
