"""Given the program file, the CLI shows the instants of an inactivity lapse in the
program's time zone, as the deadline is computed there (the same local time): `ledger
balance -f json`'s next_expiry and as_of (as the table and --help say), the refusal of a spend
of lapsed points, and the `webhooks expiring` table. They used to be in UTC (10:00 in
Paris shown as 09:00+00:00). With a program id only, the zone is unknown: UTC."""

from __future__ import annotations

import json
from pathlib import Path

from fidelite.store import Database
from tests.cli.support import fidelite
from tests.conftest import CheckedLedger
from tests.support import snapshot

PROGRAM = """\
id: shop
name: Shop
time_zone: Europe/Paris
currencies:
  - {id: points, name: Points, value: 0.01}
  - {id: miles, name: Miles, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
expiry: {mode: inactivity, months: 3, warn_days: 30}
"""


def test_lapse_instants_are_shown_in_the_programs_zone(
    ledger: CheckedLedger, db: Database, tmp_path: Path
) -> None:
    program = tmp_path / "shop.yaml"
    program.write_text(PROGRAM, encoding="utf-8")
    ledger.earn("shop", "alice", "points", 40, key="e1", at="2026-08-15T10:00:00+02:00")
    balance = ["ledger", "balance", "alice", "--as-of", "2026-09-01", "-f", "json"]
    by_file = json.loads(fidelite(*balance, "-P", str(program), db=db.url).stdout)
    assert by_file["next_expiry"] == "2026-11-15T10:00:00+01:00"
    # as_of in the same zone as next_expiry (it was in UTC: 2026-08-31T22:00:00+00:00)
    assert by_file["as_of"] == "2026-09-01T00:00:00+02:00"
    by_id = json.loads(fidelite(*balance, "-p", "shop", db=db.url).stdout)
    assert by_id["next_expiry"] is None  # no policy known: nothing lapses
    assert by_id["as_of"] == "2026-09-01T00:00:00+00:00"  # zone unknown: midnight UTC
    # The deadline is 10:00 local time; the refusal says so in the program's zone.
    before = snapshot(db)
    spend = ["ledger", "spend", "alice", "5", "--key", "s1", "--at", "2026-11-20"]
    refused = fidelite(*spend, "-P", str(program), "-f", "json", db=db.url, ok=False)
    assert refused.returncode == 1
    assert json.loads(refused.stdout)["error"] == {
        "code": "insufficient_points",
        "field": "points",
        "message": "member 'alice' has 0 points available, 5 requested; 40 lapsed at"
        " 2026-11-15T10:00:00+01:00 after no activity since 2026-08-15T10:00:00+02:00",
        "detail": {"available": 0, "requested": 5, "lapsed": 40,
                   "lapsed_at": "2026-11-15T10:00:00+01:00"},
    }  # fmt: skip
    assert snapshot(db) == before
    # The warning: the table in Paris time, the events (and -f json) in UTC.
    table = fidelite("webhooks", "expiring", "--as-of", "2026-10-20", "-P", str(program),
                     db=db.url).stdout  # fmt: skip
    assert "2026-11-15T10:00:00+01:00" in table
    assert "2026-08-15T10:00:00+02:00" in table
    assert "+00:00" not in table
