"""``fidelite tier show`` of a member in a grace period gives as ``review_at`` the next
re-qualification, the grace period's end, not the past date the grace period started
from."""

from __future__ import annotations

from pathlib import Path

from tests.cli.support import TIER_PROGRAM as PROGRAM
from tests.cli.support import as_json, fidelite

EVENTS = """\
event_id,type,member,at,amount
p1,purchase,ann,2025-01-10T10:00:00+01:00,120
"""


def test_tier_show_in_a_grace_period_gives_its_end_as_the_next_review(tmp_path: Path) -> None:
    program = tmp_path / "shop.yaml"
    program.write_text(PROGRAM, encoding="utf-8")
    db = f"sqlite:///{tmp_path / 'shop.db'}"
    fidelite("db", "upgrade", db=db)
    (tmp_path / "events.csv").write_text(EVENTS, encoding="utf-8")
    fidelite("import", "events", tmp_path / "events.csv", "-p", program, db=db)
    shown = as_json(fidelite("tier", "show", "ann", "-p", program, "-f", "json", db=db))
    assert (shown["tier"], shown["review_at"], shown["grace_until"]) == (
        "silver", "2026-01-10T09:00:00+00:00", None)  # fmt: skip
    # re-qualification on 2026-01-10: spend 0 below 100, grace for a month
    fidelite("tier", "review", "-p", program, "--as-of", "2026-01-20", db=db)
    shown = as_json(fidelite("tier", "show", "ann", "-p", program, "-f", "json", db=db))
    assert {k: shown[k] for k in ("tier", "since", "review_at", "grace_until")} == {
        "tier": "silver", "since": "2025-01-10T09:00:00+00:00",
        "review_at": "2026-02-10T09:00:00+00:00", "grace_until": "2026-02-10T09:00:00+00:00",
    }  # fmt: skip
    assert [t["kind"] for t in shown["timeline"]] == ["upgrade", "grace_started"]
    table = fidelite("tier", "show", "ann", "-p", program, db=db).stdout
    assert "review_at 2026-02-10T09:00:00+00:00" in table
    assert "2026-01-10T09:00:00+00:00, grace_until" not in table
