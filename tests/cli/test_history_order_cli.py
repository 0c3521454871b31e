"""``fidelite ledger history`` lists moves most recently recorded first, as the
append-only ledger keeps them, and its help says so (not "newest first": a purchase
dated earlier but imported later is listed above)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.support import fidelite


def test_history_is_most_recently_recorded_first_and_its_help_says_so(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'shop.db'}"
    fidelite("db", "upgrade", db=db)
    fidelite("ledger", "open", "shop", db=db)
    fidelite("member", "add", "ann", "-p", "shop", db=db)
    for key, at in (("k1", "2026-03-01T10:00:00Z"), ("k2", "2026-01-15T10:00:00Z")):
        fidelite("ledger", "earn", "ann", "5", "-k", key, "-p", "shop", "--at", at, db=db)
    rows = json.loads(fidelite("ledger", "history", "ann", "-p", "shop", "-f", "json",
                               db=db).stdout)  # fmt: skip
    assert [(r["transaction_id"], r["occurred_at"]) for r in rows] == [
        (2, "2026-01-15T10:00:00+00:00"),
        (1, "2026-03-01T10:00:00+00:00"),
    ]
    shown = " ".join(fidelite("ledger", "history", "--help").stdout.split())
    assert "Every move on a member's points, most recently recorded first, with reason" in shown
    assert "newest first" not in shown
