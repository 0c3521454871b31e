"""A bare date on the ledger's moves (``earn``, ``spend``, ``adjust``, ``reverse``,
``release``: ``--at``, ``--expires``, ``--pending-until``) is its midnight in the
program's time zone when the program file is given (``--program FILE`` or
``--program-file``), as ``ledger balance --as-of`` and ``ledger expire`` read it; with a
program id only it is midnight UTC. The instants stored, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from fidelite.store import Database
from fidelite.store.tables import LedgerTransaction, Lot
from tests.cli.support import as_json, fidelite

NEW_YORK = """\
id: ny
name: New York shop
time_zone: America/New_York
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
"""


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


@pytest.fixture
def shop(db: Database, tmp_path: Path) -> tuple[Path, str]:
    program = tmp_path / "ny.yaml"
    program.write_text(NEW_YORK, encoding="utf-8")
    fidelite("member", "add", "nm", "-p", program, db=db.url)
    return program, db.url


def lots(db: Database) -> list[tuple[int, datetime, datetime | None, datetime | None]]:
    with db.read() as conn:
        rows = conn.execute(
            select(Lot.points, Lot.earned_at, Lot.expires_at, Lot.pending_until).order_by(Lot.id)
        ).all()
    return [tuple(row) for row in rows]  # type: ignore[misc]


def occurred(db: Database, transaction: int) -> datetime:
    with db.read() as conn:
        return conn.execute(
            select(LedgerTransaction.occurred_at).where(LedgerTransaction.id == transaction)
        ).scalar_one()


def move(db: str, *args: str | Path) -> Any:
    return as_json(fidelite("ledger", *args, "-f", "json", db=db))


def test_earn_reads_dates_as_midnight_in_the_programs_time_zone(
    db: Database, shop: tuple[Path, str]
) -> None:
    program, url = shop
    move(url, "earn", "nm", "50", "-k", "k1", "-p", program, "--at", "2026-12-01",
         "--expires", "2027-03-28", "--reason", "goodwill")  # fmt: skip
    move(url, "earn", "nm", "7", "-k", "k2", "-p", "ny", "-P", program, "--at", "2026-12-02",
         "--pending-until", "2026-12-05", "--expires", "2027-03-28")  # fmt: skip
    assert lots(db) == [
        (50, utc("2026-12-01T00:00:00-05:00"), utc("2027-03-28T00:00:00-04:00"), None),
        (7, utc("2026-12-02T00:00:00-05:00"), utc("2027-03-28T00:00:00-04:00"),
         utc("2026-12-05T00:00:00-05:00")),
    ]  # fmt: skip
    # the balance reads the same date as the same instant: the points last to its eve
    before = move(url, "balance", "nm", "-p", program, "--as-of", "2027-03-27T23:59:59-04:00")
    on_the_day = move(url, "balance", "nm", "-p", program, "--as-of", "2027-03-28")
    assert (before["available"], before["next_expiry"]) == (57, "2027-03-28T00:00:00-04:00")
    assert (on_the_day["available"], on_the_day["next_expiry"]) == (0, None)


def test_earn_with_a_program_id_only_reads_a_date_as_midnight_utc(
    db: Database, shop: tuple[Path, str]
) -> None:
    _, url = shop
    move(url, "earn", "nm", "50", "-k", "k1", "-p", "ny", "--at", "2026-12-01",
         "--expires", "2027-03-28", "--pending-until", "2026-12-05")  # fmt: skip
    assert lots(db) == [
        (50, utc("2026-12-01T00:00:00+00:00"), utc("2027-03-28T00:00:00+00:00"),
         utc("2026-12-05T00:00:00+00:00")),
    ]  # fmt: skip


def test_spend_adjust_release_and_reverse_read_dates_in_the_programs_time_zone(
    db: Database, shop: tuple[Path, str]
) -> None:
    program, url = shop
    held = move(url, "earn", "nm", "40", "-k", "e1", "-p", program, "--at", "2026-12-01",
                "--pending-until", "2027-01-01")  # fmt: skip
    released = move(url, "release", str(held["transaction_id"]), "-k", "r1", "-p", program,
                    "--at", "2026-12-10")  # fmt: skip
    credit = move(url, "adjust", "nm", "20", "--reason", "outage", "--actor", "ops", "-k", "a1",
                  "-p", program, "--at", "2026-12-11", "--expires", "2027-06-01")  # fmt: skip
    spent = move(url, "spend", "nm", "5", "-k", "s1", "-P", program, "--at", "2026-12-12")
    back = move(url, "reverse", str(spent["transaction_id"]), "-k", "v1", "-p", program,
                "--at", "2026-12-13")  # fmt: skip
    assert [occurred(db, answer["transaction_id"]) for answer in
            (held, released, credit, spent, back)] == [
        utc(f"2026-12-{day}T00:00:00-05:00") for day in ("01", "10", "11", "12", "13")
    ]  # fmt: skip
    assert lots(db)[1][2] == utc("2027-06-01T00:00:00-04:00")


def test_a_refused_date_changes_nothing(db: Database, shop: tuple[Path, str]) -> None:
    program, url = shop
    refused = fidelite("ledger", "earn", "nm", "50", "-k", "k1", "-p", program,
                       "--expires", "2027-03-28T10:00", db=url, ok=False)  # fmt: skip
    assert refused.returncode == 2
    assert "--expires: '2027-03-28T10:00' needs a UTC offset" in refused.stderr
    assert lots(db) == []


def test_the_help_of_each_move_says_how_a_date_is_read() -> None:
    for command in ("earn", "spend", "adjust", "reverse", "release"):
        text = " ".join(fidelite("ledger", command, "--help").stdout.split())
        assert "midnight in the program's time zone when the program file is given" in text
        assert "else midnight UTC" in text
