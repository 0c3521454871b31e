"""With stderr not a terminal (a scheduler's log, a file), imports and daily jobs draw
no progress bar: their stderr stays empty, not a lone empty line per run."""

from __future__ import annotations

from pathlib import Path

from tests.cli.support import TIER_EVENTS, TIER_PROGRAM, fidelite

MEMBERS = "member,joined_at\nann,2026-01-01T10:00:00+01:00\n"


def test_imports_and_jobs_leave_stderr_empty_when_it_is_not_a_terminal(tmp_path: Path) -> None:
    program = tmp_path / "shop.yaml"
    program.write_text(TIER_PROGRAM, encoding="utf-8")
    db = f"sqlite:///{tmp_path / 'shop.db'}"
    fidelite("db", "upgrade", db=db)
    (tmp_path / "crm.csv").write_text(MEMBERS, encoding="utf-8")
    (tmp_path / "events.csv").write_text(TIER_EVENTS, encoding="utf-8")
    runs = [
        ("import", "members", tmp_path / "crm.csv", "-p", program),
        ("import", "events", tmp_path / "events.csv", "-p", program),
        ("ledger", "expire", "-p", program, "--as-of", "2026-02-01"),
        ("ledger", "release-due", "-p", program, "--as-of", "2026-02-01"),
        ("tier", "review", "-p", program, "--as-of", "2026-02-01"),
    ]
    for args in runs:
        done = fidelite(*args, db=db, separate=True)
        assert done.stderr == "", args
        assert done.stdout.strip(), args
