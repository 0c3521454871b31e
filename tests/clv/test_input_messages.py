"""Clear messages for a folder given as --input and for a file without purchases.

A folder was reported as "dir.csv: file not found"; a file whose rows are all refunds
as "the summary has no customers", without saying that refunds are not purchases.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fidelite.cli.main import _register, app

runner = CliRunner()
_register()

NO_CUSTOMERS = (
    "customer summary: the summary has no customers: no purchase on or before {end} (the "
    "calibration end); refund rows (a negative amount or a refund flag) are not purchases"
)


@pytest.mark.parametrize(
    "args",
    [["clv", "fit", "-m", "bgnbd"], ["clv", "predict", "-o", "OUT"],
     ["clv", "validate", "--calibration-end", "2024-01-01"], ["clv", "health"]],
)  # fmt: skip
def test_folder_as_input_is_named_a_folder(tmp_path: Path, args: list[str]) -> None:
    folder = tmp_path / "tx.csv"
    folder.mkdir()
    out = tmp_path / "clv.csv"
    args = [str(out) if a == "OUT" else a for a in args]
    result = runner.invoke(app, [*args, "-i", str(folder), "-f", "json"])
    assert result.exit_code == 1, result.output
    assert json.loads(result.stdout)["error"] == {
        "code": "bad_input",
        "message": f"{folder}: is a folder, not a file: give a transactions file "
        "(.csv or .parquet)",
        "file": str(folder),
        "row": None,
        "column": None,
    }
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tx.csv"]  # nothing written


@pytest.mark.parametrize(
    ("args", "end"),
    [(["clv", "fit", "-m", "bgnbd"], "2024-01-02"),
     (["clv", "fit", "-m", "gammagamma"], "2024-01-02"),
     (["clv", "fit", "-m", "sbg"], "2024-01-02"), (["clv", "predict", "-o", "OUT"], "2024-01-02"),
     (["clv", "validate", "--calibration-end", "2024-01-01"], "2024-01-01")],
)  # fmt: skip
def test_only_refunds_says_refunds_are_not_purchases(
    tmp_path: Path, args: list[str], end: str
) -> None:
    data = tmp_path / "refunds.csv"
    data.write_text("customer_id,timestamp,amount\na,2024-01-01,-5\nb,2024-01-02,-3\n")
    out = tmp_path / "clv.csv"
    args = [str(out) if a == "OUT" else a for a in args]
    result = runner.invoke(app, [*args, "-i", str(data), "-f", "json"])
    assert result.exit_code == 1, result.output
    assert json.loads(result.stdout)["error"] == {
        "code": "bad_input",
        "message": NO_CUSTOMERS.format(end=end),
    }
    assert sorted(p.name for p in tmp_path.iterdir()) == ["refunds.csv"]
