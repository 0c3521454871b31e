"""An --out folder that cannot be made because a file stands where a parent folder
should be: the error names that file, and nothing is written."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from fidelite.cli.main import _register, app

_register()


def test_the_file_in_the_way_is_named(tmp_path: Path) -> None:
    src = tmp_path / "tx.csv"
    src.write_text("customer_id,timestamp,amount\nA,2024-01-01,1\nA,2024-02-01,2\n")
    blocking = tmp_path / "afile"
    blocking.write_text("keep me")
    out = blocking / "sub" / "report"
    result = CliRunner().invoke(app, ["report", str(src), "--out", str(out), "-f", "json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout)["error"] == {
        "code": "io",
        "message": f"--out {out}: cannot write the report ({blocking} is a file): Not a directory",
    }
    assert blocking.read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "tx.csv"]
