"""engagement's bad_input error has the shape of every other bad_input error (file, row,
column), on a real SQLite program database built with the CLI."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.support import fidelite


def test_engagement_errors_carry_row_and_column_as_the_others(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'shop.db'}"
    fidelite("db", "upgrade", db=db)
    fidelite("ledger", "open", "cafe", db=db)
    name = f"sqlite:///{(tmp_path / 'shop.db').resolve()}"
    errors = [
        json.loads(fidelite("metrics", cmd, "--input", f"{tmp_path / 'shop.db'}#nope",
                            "-f", "json", ok=False).stdout)["error"]
        for cmd in ("retention", "engagement")
    ]  # fmt: skip
    expected = {"code": "bad_input",
                "message": f"{name}: no program 'nope' in this database (it holds cafe)",
                "file": name, "row": None, "column": None}  # fmt: skip
    assert errors == [expected, expected]
