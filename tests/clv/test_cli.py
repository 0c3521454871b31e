"""`fidelite clv` end to end on the CDNOW transactions (summary by fidelite.analytics)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.csv as pa_csv
import pytest
from typer.testing import CliRunner

from fidelite.cli.main import _register, app
from tests.clv.cdnow import datasets_dir

runner = CliRunner()
_register()


@pytest.fixture(scope="module")
def cdnow_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """CDNOW_sample.txt rewritten as a transactions CSV (one row per purchase record)."""
    path = tmp_path_factory.mktemp("cdnow") / "cdnow.csv"
    lines = ["customer_id,timestamp,amount"]
    with (datasets_dir() / "CDNOW_sample.txt").open() as handle:
        for line in handle:
            _, sample_id, day, _, value = line.split()
            lines.append(f"{sample_id},{day[:4]}-{day[4:6]}-{day[6:]},{value}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_fit_json_matches_published_bgnbd_estimates(cdnow_csv: Path) -> None:
    args = ["clv", "fit", "-i", str(cdnow_csv), "-m", "bgnbd", "--calibration-end", "1997-09-30"]
    result = runner.invoke(app, [*args, "--time-unit", "week", "--format", "json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["model"] == "bgnbd"
    assert {k: round(v, 3) for k, v in payload["params"].items()} == {
        "r": 0.243,
        "alpha": 4.414,
        "a": 0.793,
        "b": 2.426,
    }
    assert round(payload["log_likelihood"], 1) == -9582.4
    assert payload["n_customers"] == 2357
    assert set(payload["std_errors"]) == {"r", "alpha", "a", "b"}


def test_predict_writes_one_row_per_customer(cdnow_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "clv.csv"
    args = ["clv", "predict", "-i", str(cdnow_csv), "--calibration-end", "1997-09-30"]
    result = runner.invoke(app, [*args, "--horizon", "39", "-o", str(out), "-f", "json"])
    assert result.exit_code == 0, result.output
    table = pa_csv.read_csv(out).to_pylist()
    assert len(table) == 2357
    first = table[0]
    # Customer 1: x = 2, t_x = 30.43, T = 38.86 -> 1.226 purchases in 39 weeks (FHL 2005).
    assert round(first["expected_purchases"], 3) == 1.226
    assert set(first) >= {"probability_alive", "expected_spend", "clv", "alive_risk"}


def test_fit_reports_bad_row_and_column(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("customer_id,timestamp,amount\n1,2020-01-01,5\n2,notadate,3\n")
    result = runner.invoke(app, ["clv", "fit", "-i", str(bad), "-m", "bgnbd", "-f", "json"])
    assert result.exit_code == 1
    error = json.loads(result.stdout)["error"]
    assert (error["code"], error["row"], error["column"]) == ("bad_input", 3, "timestamp")


@pytest.mark.parametrize("model", ["bgnbd", "gammagamma", "sbg"])
def test_fit_with_a_calibration_end_before_any_purchase_is_a_clear_error(
    tmp_path: Path, model: str
) -> None:
    data = tmp_path / "tx.csv"
    data.write_text("customer_id,timestamp,amount\n1,2020-01-01,5\n1,2020-02-01,7\n")
    args = ["clv", "fit", "-i", str(data), "-m", model, "--calibration-end", "0001-01-01"]
    result = runner.invoke(app, [*args, "-f", "json"])
    assert result.exit_code == 1, result.output
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "bad_input" and error["message"].startswith("customer summary: ")


def test_predict_rejects_unknown_output_type_and_writes_nothing(
    cdnow_csv: Path, tmp_path: Path
) -> None:
    out = tmp_path / "clv.txt"
    result = runner.invoke(app, ["clv", "predict", "-i", str(cdnow_csv), "-o", str(out)])
    assert result.exit_code == 2
    assert list(tmp_path.iterdir()) == []
