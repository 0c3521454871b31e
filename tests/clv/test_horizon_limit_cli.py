"""`clv predict --horizon` over 100 years is a usage error naming the allowed range.

`--horizon 1e6 --discount-rate 0.1` (weeks) ended in an OverflowError traceback, exit 1,
without the `{"error": ...}` object of `-f json`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fidelite.cli.main import _register, app

runner = CliRunner()
_register()


@pytest.mark.parametrize(
    ("unit", "horizon", "limit"),
    [("week", "1e6", "5,217.857 weeks"), ("week", "5218", "5,217.857 weeks"),
     ("day", "36526", "36,525.000 days")],
)  # fmt: skip
def test_horizon_over_100_years_refused_before_reading(
    tmp_path: Path, unit: str, horizon: str, limit: str
) -> None:
    missing = tmp_path / "no-such-file.csv"  # reading it would be exit 1, bad_input
    out = tmp_path / "clv.csv"
    args = ["clv", "predict", "-i", str(missing), "-o", str(out), "--time-unit", unit]
    result = runner.invoke(
        app, [*args, "--horizon", horizon, "--discount-rate", "0.1", "-f", "json"]
    )
    assert result.exit_code == 2, result.output
    assert json.loads(result.stdout) == {
        "error": {
            "code": "usage",
            "message": f"--horizon must be at most 100 years ({limit}; CLV is discounted per "
            f"month, 1,200 steps at most), got {float(horizon):g}",
        }
    }
    assert list(tmp_path.iterdir()) == []


def test_help_states_the_limit_and_the_monthly_discounting() -> None:
    result = runner.invoke(app, ["clv", "predict", "--help"], env={"COLUMNS": "200"})
    text = " ".join(result.stdout.replace("│", " ").split())
    assert "at most 100 years (5217.857 weeks, 36525 days)" in text
    assert "Yearly discount rate for CLV, applied per month" in text
