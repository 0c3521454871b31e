"""``import events`` / ``import members`` draw their progress bar on stderr (none with
``-f json``): stdout holds the summary only, so a pipe or a file can read it."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.support import TIER_EVENTS, TIER_PROGRAM, fidelite

MEMBERS = "member,joined_at\nann,2026-01-01T10:00:00+01:00\nbob,2026-01-02T10:00:00+01:00\n"


def test_imports_keep_the_progress_bar_off_stdout(tmp_path: Path) -> None:
    program = tmp_path / "shop.yaml"
    program.write_text(TIER_PROGRAM, encoding="utf-8")
    db = f"sqlite:///{tmp_path / 'shop.db'}"
    fidelite("db", "upgrade", db=db)
    (tmp_path / "crm.csv").write_text(MEMBERS, encoding="utf-8")
    (tmp_path / "events.csv").write_text(TIER_EVENTS, encoding="utf-8")
    members = fidelite("import", "members", tmp_path / "crm.csv", "-p", program, db=db)
    events = fidelite("import", "events", tmp_path / "events.csv", "-p", program, db=db)
    for name, done in (("crm.csv", members), ("events.csv", events)):
        assert f"Importing {name}" not in done.stdout
        assert done.stdout.lstrip().startswith(f"Import of {name}")  # the summary only
    again = fidelite("import", "events", tmp_path / "events.csv", "-p", program, "-f", "json",
                     db=db)  # fmt: skip
    assert json.loads(again.stdout)["rejects_file"] is None
    assert again.stderr == ""
