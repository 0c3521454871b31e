"""The jobs that write refuse an ``--as-of`` later than now: they apply their date at
once and for good (``ledger expire --as-of`` a year ahead took today the points due in
a year; ``tier review`` ended a manual assignment months early). The refusal is a usage
error (exit 2) naming the option and both moments, and nothing is read or written; a
past or present ``--as-of`` still runs, and the read-only ``ledger balance`` may look
ahead. The installed script on a real SQLite file, with the machine's clock (the
processor's too: ``real_clock``)."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import typer

from fidelite.cli.output import OutputFormat
from fidelite.cli.policy import job_as_of
from tests.cli.support import TIER_PROGRAM, fidelite

pytestmark = pytest.mark.usefixtures("real_clock")

PARIS = ZoneInfo("Europe/Paris")
NOW = datetime.now(UTC)
SOON = (NOW + timedelta(days=30)).isoformat(timespec="seconds")
"""When ann's 150 points expire: a month after the tests start."""
HOLD_ENDS = (NOW + timedelta(days=10)).isoformat(timespec="seconds")
"""When the hold on ann's 40 points ends."""
UNTIL = (NOW + timedelta(days=200)).date().isoformat()
"""The end of bob's gold assignment."""
NEXT_YEAR = (NOW + timedelta(days=400)).date().isoformat()
"""A date after all of these: the job would apply each of them today."""


def _utc(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _rows(db: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table of the SQLite file (the WAL read too)."""
    with closing(sqlite3.connect(db.removeprefix("sqlite:///"))) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {name: sorted(conn.execute(f'SELECT * FROM "{name}"').fetchall(), key=repr)
                for name in sorted(names)}  # fmt: skip


@pytest.fixture
def shop(tmp_path: Path) -> tuple[Path, str]:
    """A Paris program where ann has 25 points that expired on 2026-01-05, 150 expiring
    in a month and 40 held for 10 days more, and bob is gold by hand for 200 days."""
    program = tmp_path / "shop.yaml"
    program.write_text(TIER_PROGRAM, encoding="utf-8")
    db = f"sqlite:///{tmp_path / 'shop.db'}"
    fidelite("db", "upgrade", db=db)
    for member in ("ann", "bob"):
        fidelite("member", "add", member, "-p", program, db=db)
    for key, points, until in (("e1", "25", ("--expires", "2026-01-05T00:00:00+01:00")),
                               ("e2", "150", ("--expires", SOON)),
                               ("e3", "40", ("--pending-until", HOLD_ENDS))):  # fmt: skip
        fidelite("ledger", "earn", "ann", points, "-k", key, "-p", program, "--at", "2025-01-05",
                 *until, db=db)  # fmt: skip
    fidelite("tier", "assign", "bob", "gold", "--until", UNTIL, "--reason", "store opening",
             "-k", "opening-1", "-p", program, db=db)  # fmt: skip
    return program, db


def _books(program: Path, db: str) -> tuple[Any, ...]:
    """ann's balance now and bob's tier, as the read-only commands show them."""
    balance = json.loads(fidelite("ledger", "balance", "ann", "-p", program, "-f", "json",
                                  db=db).stdout)  # fmt: skip
    tier = json.loads(fidelite("tier", "show", "bob", "-p", program, "-f", "json", db=db).stdout)
    return balance["available"], balance["pending"], tier["tier"]


JOBS = {
    "ledger expire": ["ledger", "expire"],
    "ledger release-due": ["ledger", "release-due"],
    "webhooks expiring": ["webhooks", "expiring", "--days", "30"],
    "tier review": ["tier", "review"],
}
LOOK_AHEAD = {
    "ledger expire": "use `fidelite ledger balance MEMBER --as-of DATE` to look ahead",
    "ledger release-due": "use `fidelite ledger balance MEMBER --as-of DATE` to look ahead",
    "webhooks expiring": "use `fidelite ledger balance MEMBER --as-of DATE` to look ahead",
    "tier review": "use `fidelite tier show MEMBER` to see when each step falls due",
}


@pytest.mark.parametrize("job", JOBS)
def test_a_job_refuses_an_as_of_later_than_now_and_changes_nothing(
    shop: tuple[Path, str], job: str
) -> None:
    program, db = shop
    before, books = _rows(db), _books(program, db)
    assert books == (150, 40, "gold")
    started = datetime.now(UTC).replace(microsecond=0)
    refused = fidelite(*JOBS[job], "--as-of", NEXT_YEAR, "-p", program, "-f", "json", db=db,
                       ok=False)  # fmt: skip
    assert refused.returncode == 2, refused.stdout + refused.stderr
    error = json.loads(refused.stdout)["error"]
    at = _utc(datetime.fromisoformat(NEXT_YEAR).replace(tzinfo=PARIS))
    assert started <= datetime.fromisoformat(error["now"]) <= datetime.now(UTC)
    assert error == {
        "code": "usage",
        "field": "as_of",
        "as_of": at,
        "now": error["now"],
        "message": f"--as-of {NEXT_YEAR} ({at}) is later than now ({error['now']}): a job "
        "applies its date at once and cannot be undone; run it on or after that date, or "
        f"{LOOK_AHEAD[job]}",
    }
    assert _rows(db) == before
    assert _books(program, db) == (150, 40, "gold")


@pytest.mark.parametrize("job", JOBS)
def test_a_time_a_few_minutes_ahead_is_refused_too(shop: tuple[Path, str], job: str) -> None:
    """No tolerance, unlike an event's date: the clock is the machine's that runs it."""
    program, db = shop
    before = _rows(db)
    ahead = (datetime.now(UTC) + timedelta(minutes=2)).isoformat(timespec="seconds")
    refused = fidelite(*JOBS[job], "--as-of", ahead, "-p", program, db=db, ok=False)
    assert refused.returncode == 2
    assert f"--as-of {ahead} (" in refused.stderr
    assert "is later than now (" in refused.stderr
    assert _rows(db) == before


def test_the_readme_expiry_line_with_a_later_date_is_refused(shop: tuple[Path, str]) -> None:
    """The line as a user copies it (table output, program file): an error on stderr
    that names the option and the two moments, and the 150 points stay."""
    program, db = shop
    before = _rows(db)
    refused = fidelite("ledger", "expire", "--as-of", NEXT_YEAR, "--program", program, db=db,
                       ok=False)  # fmt: skip
    assert refused.returncode == 2
    assert refused.stdout == ""
    text = " ".join(refused.stderr.split())
    assert text.startswith(f"error [usage] --as-of {NEXT_YEAR} (")
    assert "is later than now (" in text
    assert "run it on or after that date" in text
    assert _rows(db) == before


def test_a_past_or_present_as_of_still_runs(shop: tuple[Path, str]) -> None:
    program, db = shop
    present = (datetime.now(UTC) - timedelta(minutes=1)).isoformat(timespec="seconds")
    expired = json.loads(fidelite("ledger", "expire", "--as-of", "2026-06-01", "-p", program,
                                  "-f", "json", db=db).stdout)  # fmt: skip
    assert (expired["as_of"], expired["points"]) == ("2026-05-31T22:00:00+00:00", {"points": 25})
    released = json.loads(fidelite("ledger", "release-due", "--as-of", present, "-p", program,
                                   "-f", "json", db=db).stdout)  # fmt: skip
    assert (released["transactions"], released["points"]) == (0, {})  # held 10 days more
    default = json.loads(fidelite("ledger", "release-due", "-p", program, "-f", "json",
                                  db=db).stdout)  # fmt: skip
    assert default["points"] == {}
    announced = json.loads(fidelite("webhooks", "expiring", "--days", "31", "--as-of", present,
                                    "-p", program, "-f", "json", db=db).stdout)  # fmt: skip
    assert [row["points"] for row in announced["expiring"]] == [150]
    reviewed = json.loads(fidelite("tier", "review", "--as-of", present, "-p", program, "-f",
                                   "json", db=db).stdout)  # fmt: skip
    assert reviewed["changes"] == []
    assert _books(program, db) == (150, 40, "gold")


def test_the_balance_may_still_look_ahead(shop: tuple[Path, str]) -> None:
    program, db = shop
    before = _rows(db)
    ahead = json.loads(fidelite("ledger", "balance", "ann", "--as-of", NEXT_YEAR, "-p", program,
                                "-f", "json", db=db).stdout)  # fmt: skip
    assert (ahead["available"], ahead["pending"]) == (40, 0)  # the 150 expired by then
    assert _rows(db) == before


def test_an_as_of_at_exactly_now_is_applied_and_a_second_later_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    now = datetime(2026, 12, 7, 3, 30, tzinfo=UTC)
    at = job_as_of("2026-12-07T04:30:00+01:00", PARIS, now, OutputFormat.json, "look")
    assert at == now
    assert job_as_of(None, PARIS, now, OutputFormat.json, "look") == now
    with pytest.raises(typer.Exit) as refused:
        job_as_of("2026-12-07T03:30:01Z", PARIS, now, OutputFormat.json, "look")
    assert refused.value.exit_code == 2
    assert json.loads(capsys.readouterr().out)["error"] == {
        "code": "usage",
        "field": "as_of",
        "as_of": "2026-12-07T03:30:01Z",
        "now": "2026-12-07T03:30:00Z",
        "message": "--as-of 2026-12-07T03:30:01Z (2026-12-07T03:30:01Z) is later than now "
        "(2026-12-07T03:30:00Z): a job applies its date at once and cannot be undone; run it "
        "on or after that date, or look",
    }
