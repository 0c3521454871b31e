"""``ledger history`` shows each move's occurred_at in the program's time zone when the
program file is given (as ``ledger balance`` shows the next expiry), in UTC with a
program id only: the same instants, on a real SQLite file."""

from __future__ import annotations

from pathlib import Path

from tests.cli.support import TIER_PROGRAM, as_json, fidelite


def test_history_shows_times_in_the_programs_time_zone_with_the_file(tmp_path: Path) -> None:
    program = tmp_path / "shop.yaml"
    program.write_text(TIER_PROGRAM, encoding="utf-8")
    db = f"sqlite:///{tmp_path / 'shop.db'}"
    fidelite("db", "upgrade", db=db)
    fidelite("member", "add", "ann", "-p", program, db=db)
    fidelite("ledger", "earn", "ann", "10", "-k", "e1", "-p", program,
             "--at", "2026-01-05T23:30:00Z", db=db)  # fmt: skip
    by_file = as_json(fidelite("ledger", "history", "ann", "-p", program, "-f", "json", db=db))
    by_flag = as_json(fidelite("ledger", "history", "ann", "-P", program, "-f", "json", db=db))
    by_id = as_json(fidelite("ledger", "history", "ann", "-p", "shop", "-f", "json", db=db))
    assert [r["occurred_at"] for r in by_file] == ["2026-01-06T00:30:00+01:00"]
    assert by_flag == by_file
    assert [r["occurred_at"] for r in by_id] == ["2026-01-05T23:30:00+00:00"]
    table = fidelite("ledger", "history", "ann", "-p", program, db=db).stdout
    assert "2026-01-06T00:30:00+01:00" in table
