"""repurchase --days and cohorts --brackets: an empty item and a window past the
supported days are usage errors naming the option; repurchase states its cohort period."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fidelite.cli.main import _register, app

_register()

LIMIT = "must be at most 3651693 days (from 0001-01-01 to 9998-12-31, the supported days)"


def _run(args: list[str]) -> tuple[int, dict]:
    result = CliRunner().invoke(app, [*args, "--format", "json"])
    return result.exit_code, json.loads(result.stdout)


@pytest.fixture
def tx(tmp_path: Path) -> Path:
    path = tmp_path / "tx.csv"
    path.write_text(
        "customer_id,timestamp,amount\na,2024-01-15,10\na,2024-02-20,10\nb,2024-01-20,10\n"
    )
    return path


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["repurchase", "--days", "3651694"], f"--days: {LIMIT}, got 3651694 in '3651694'"),
        (["repurchase", "--days", "30,2147483648"],
         f"--days: {LIMIT}, got 2147483648 in '30,2147483648'"),
        (["repurchase", "--days", "99999999999999999999"],
         f"--days: {LIMIT}, got 99999999999999999999 in '99999999999999999999'"),
        (["repurchase", "--days", "30,,60"],
         "--days: an empty item in '30,,60': give whole days above 0 separated by commas, "
         "e.g. 30,60,90"),
        (["cohorts", "--kind", "bracket", "--brackets", "1-99999999999999999999"],
         f"--brackets: {LIMIT}, got 99999999999999999999 in '1-99999999999999999999'"),
        (["cohorts", "--kind", "bracket", "--brackets", "1-7,"],
         "--brackets: an empty item in '1-7,': brackets look like 1-7,8-30,31-90"),
    ],
)  # fmt: skip
def test_refused(tx: Path, args: list[str], message: str) -> None:
    code, out = _run(["metrics", args[0], "-i", str(tx), *args[1:]])
    assert code == 2
    assert out == {"error": {"code": "usage", "message": message}}


def test_longest_windows_computed(tx: Path) -> None:
    code, out = _run(["metrics", "repurchase", "-i", str(tx), "--days", "36,3651693"])
    assert code == 0
    assert out["parameters"]["period"] == "month"
    jan = out["rows"][0]
    counts = (jan["customers"], jan["repurchased_36d"], jan["repurchased_3651693d"])
    assert (jan["cohort"], counts) == ("2024-01", (2, 1, 1))
    # a: 15 Jan -> 20 Feb is 36 days; data end 20 Feb: 36 days after 31 Jan not reached
    assert (jan["complete_36d"], jan["complete_3651693d"]) == (False, False)
    code, out = _run(["metrics", "cohorts", "-i", str(tx), "--kind", "bracket",
                      "--brackets", "3000000-3000001,1-40"])  # fmt: skip
    assert code == 0
    assert [(r["cohort"], r["days_3000000_3000001"], r["days_1_40"]) for r in out["rows"]] == [
        ("2024-01", None, 50.0)]  # fmt: skip
