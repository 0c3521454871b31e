"""Each `clv` command's output states the parameters it used: input, calibration end
(the day actually used when the option is left out), observation end, time unit and how
CLV is discounted. `fit -f json` said `"calibration_end": null` by default, `predict`
and `validate` named neither the input nor the days, and `holdout_length` had no unit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fidelite.cli.main import _register, app
from tests.clv.cdnow import datasets_dir

runner = CliRunner()
_register()


@pytest.fixture(scope="module")
def cdnow_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """CDNOW_sample.txt as a transactions CSV; its last day is 1998-06-30."""
    path = tmp_path_factory.mktemp("cdnow") / "cdnow.csv"
    lines = ["customer_id,timestamp,amount"]
    with (datasets_dir() / "CDNOW_sample.txt").open() as handle:
        for line in handle:
            _, sample_id, day, _, value = line.split()
            lines.append(f"{sample_id},{day[:4]}-{day[4:6]}-{day[6:]},{value}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_fit_states_the_calibration_end_it_used(cdnow_csv: Path) -> None:
    args = ["clv", "fit", "-i", str(cdnow_csv), "-m", "bgnbd"]
    payload = json.loads(runner.invoke(app, [*args, "-f", "json"]).stdout)
    assert (payload["input"], payload["calibration_end"], payload["time_unit"]) == (
        str(cdnow_csv), "1998-06-30", "week",
    )  # fmt: skip
    table = runner.invoke(app, [*args, "--calibration-end", "1997-09-30"], env={"COLUMNS": "300"})
    assert table.exit_code == 0, table.output
    line = f"time unit week (alpha in weeks) · calibration end 1997-09-30 · input {cdnow_csv}"
    assert line in " ".join(table.stdout.split())  # long paths wrap
    pareto = runner.invoke(app, [*args[:-1], "paretonbd", "--time-unit", "day"],
                           env={"COLUMNS": "300"})  # fmt: skip
    line = "time unit day (alpha and beta in days) · calibration end 1998-06-30"
    assert line in " ".join(pareto.stdout.split())


def test_predict_states_input_calibration_end_and_discounting(
    cdnow_csv: Path, tmp_path: Path
) -> None:
    out = tmp_path / "clv.csv"
    args = ["clv", "predict", "-i", str(cdnow_csv), "-o", str(out), "-f", "json"]
    result = runner.invoke(app, [*args, "--calibration-end", "1997-09-30", "--horizon", "130"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert {k: payload[k] for k in list(payload)[:9]} == {
        "input": str(cdnow_csv),
        "calibration_end": "1997-09-30",
        "out": str(out),
        "customers": 2357,
        "horizon": 130.0,
        "time_unit": "week",
        "discount_rate": 0.1,
        "discount_steps": 30,
        "discounting": "discounted per month: the 130-week horizon in 30 equal steps of "
        "4.33333 weeks, the purchases expected in each discounted at its end t by "
        "(1 + 0.1)^(t / 52.1786), 0.1 being the yearly rate",
    }
    default = json.loads(runner.invoke(app, args).stdout)
    assert (default["calibration_end"], default["discount_steps"]) == ("1998-06-30", 12)


def test_validate_states_input_days_and_time_unit(cdnow_csv: Path) -> None:
    args = ["clv", "validate", "-i", str(cdnow_csv), "--calibration-end", "1997-09-30"]
    result = runner.invoke(app, [*args, "--time-unit", "day", "-f", "json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert {k: payload[k] for k in list(payload)[:6]} == {
        "input": str(cdnow_csv),
        "calibration_end": "1997-09-30",
        "observation_end": "1998-06-30",
        "time_unit": "day",
        "model": "bgnbd",
        "holdout_length": 273.0,  # days: 1997-10-01 .. 1998-06-30
    }
    table = runner.invoke(app, args, env={"COLUMNS": "200"})
    title = "Holdout of 39 weeks, after 1997-09-30 to 1998-06-30: bgnbd"  # wraps to the table
    assert title in " ".join(table.stdout.split())
