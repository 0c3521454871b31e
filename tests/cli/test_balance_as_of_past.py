"""`ledger balance --as-of` looks ahead from the member's latest ledger move: it counts
the points held now and applies the date to holds and expiry dates. An --as-of before
that move used to show today's holdings as if they were the past's (a member who joined
in November "had" 33 points on 1 January); it is refused (exit 2, nothing else), on
SQLite and PostgreSQL, pointing to `ledger history` with the program (and currency),
so that the command runs as written."""

from __future__ import annotations

import json
import shlex
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
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
expiry: {mode: after_earning, months: 12}
"""


def test_balance_before_the_latest_move_is_refused(
    ledger: CheckedLedger, db: Database, tmp_path: Path
) -> None:
    program = tmp_path / "shop.yaml"
    program.write_text(PROGRAM, encoding="utf-8")
    ledger.earn("shop", "alice", "points", 100, key="e1", at="2026-11-24T10:00:00+01:00",
                expires_at="2027-11-24T10:00:00+01:00")  # fmt: skip
    ledger.spend("shop", "alice", "points", 30, key="s1", at="2026-12-04T10:00:00+01:00")
    balance = ["ledger", "balance", "alice", "-P", str(program), "-f", "json"]
    before = snapshot(db)
    for as_of, shown in (
        ("2025-01-01", "2025-01-01T00:00:00+01:00"),  # before she joined
        ("2026-12-04T09:59:59+01:00", "2026-12-04T09:59:59+01:00"),  # a second before
    ):
        refused = fidelite(*balance, "--as-of", as_of, db=db.url, ok=False)
        assert refused.returncode == 2
        assert json.loads(refused.stdout) == {
            "error": {
                "code": "usage",
                "message": f"--as-of {as_of} ({shown}) is before alice's latest ledger move"
                " (2026-12-04T10:00:00+01:00): the balance counts the points held now"
                " (earned, spent, refunded and expired since then included) and can only"
                " look ahead from that move; see `fidelite ledger history alice --program"
                " shop` for the moves before it",
                "field": "as_of",
                "as_of": shown,
                "latest_move": "2026-12-04T10:00:00+01:00",
            }
        }
    assert snapshot(db) == before
    # The command it points to runs as written: shop's history, not program 'default'.
    history = fidelite(*shlex.split("ledger history alice --program shop"), "-f", "json",
                       db=db.url)  # fmt: skip
    assert [(row["kind"], row["available_change"]) for row in json.loads(history.stdout)] == [
        ("spend", -30), ("earn", 100)
    ]  # fmt: skip
    # The program id as -p, and another currency: named in the command too.
    stars = ["-c", "stars", "--as-of", "2025-01-01", "-f", "json"]
    ledger.open_program("shop", ["stars"])
    ledger.earn("shop", "alice", "stars", 5, key="e2", at="2026-11-24T10:00:00+01:00")
    refused = fidelite("ledger", "balance", "alice", "-p", "shop", *stars, db=db.url, ok=False)
    assert refused.returncode == 2
    assert (
        "see `fidelite ledger history alice --program shop --currency stars` for the moves"
        in json.loads(refused.stdout)["error"]["message"]
    )
    before = snapshot(db)
    # At the latest move and after it, the balance is the one held then.
    for as_of, available in (
        ("2026-12-04T10:00:00+01:00", 70),
        ("2027-11-24T09:59:59+01:00", 70),
        ("2027-11-24T10:00:00+01:00", 0),  # expired
    ):
        shown = json.loads(fidelite(*balance, "--as-of", as_of, db=db.url).stdout)
        assert (shown["available"], shown["pending"], shown["debt"]) == (available, 0, 0)
    # Another currency's moves do not count: alice has no miles, as of any date.
    miles = ["ledger", "balance", "alice", "-P", str(program), "-c", "miles", "-f", "json"]
    shown = json.loads(fidelite(*miles, "--as-of", "2020-01-01", db=db.url).stdout)
    assert (shown["available"], shown["pending"], shown["debt"]) == (0, 0, 0)
    assert snapshot(db) == before
