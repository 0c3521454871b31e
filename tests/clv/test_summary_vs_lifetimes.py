"""docs/clv.md's worked example: the CLV summary, `fidelite metrics rfm` and lifetimes'
``summary_data_from_transaction_data`` on one three-customer file."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pyarrow.csv as pa_csv
import pytest
from typer.testing import CliRunner

from fidelite.cli.main import _register, app

runner = CliRunner()
_register()

EXAMPLE = """customer_id,timestamp,amount
alice,2024-01-01T09:00:00,20.00
alice,2024-01-01T17:30:00,10.00
alice,2024-01-15T12:00:00,25.00
alice,2024-02-01T10:00:00,35.00
bob,2024-01-10T11:00:00,50.00
bob,2024-02-20T15:00:00,30.00
bob,2024-02-22T10:00:00,-30.00
carol,2024-03-01T14:00:00,40.00
"""

# The documented numbers, days: (frequency, recency, T, monetary).
SUMMARY = {"alice": (2, 31, 60, 30.0), "bob": (1, 41, 51, 30.0), "carol": (0, 0, 0, 0.0)}
RFM = {"alice": (4, 29, 60, 90.0), "bob": (2, 10, 51, 50.0), "carol": (1, 0, 0, 40.0)}
FIELDS = ("frequency", "recency", "T", "monetary_value")


@pytest.fixture
def example(tmp_path: Path) -> Path:
    path = tmp_path / "example.csv"
    path.write_text(EXAMPLE)
    return path


def _clv_summary(example: Path, unit: str) -> dict[str, tuple[float, ...]]:
    out = example.with_name(f"out-{unit}.csv")
    args = ["clv", "predict", "-i", str(example), "--time-unit", unit, "-o", str(out),
            "--allow-unconverged"]  # fmt: skip
    result = runner.invoke(app, [*args, "-f", "json"])
    assert result.exit_code == 0, result.output
    rows = pa_csv.read_csv(out).to_pylist()
    return {row["customer_id"]: tuple(row[f] for f in FIELDS) for row in rows}


def test_clv_summary_in_days_and_weeks(example: Path) -> None:
    assert _clv_summary(example, "day") == SUMMARY
    weeks = _clv_summary(example, "week")
    assert weeks.keys() == SUMMARY.keys()
    for customer, (x, t, T, m) in SUMMARY.items():
        assert weeks[customer] == pytest.approx((x, t / 7, T / 7, m), abs=1e-12)
    assert round(weeks["alice"][1], 6) == 4.428571 and round(weeks["alice"][2], 6) == 8.571429


def test_rfm_and_its_relation_to_the_clv_summary(example: Path) -> None:
    result = runner.invoke(app, ["metrics", "rfm", "-i", str(example), "-f", "json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["parameters"]["observation_end"] == "2024-03-01"
    rows = {
        r["customer_id"]: (r["frequency"], r["recency"], r["T"], r["monetary"])
        for r in payload["rows"]
    }
    assert rows == RFM
    for customer, (_, recency, T, _) in SUMMARY.items():
        assert rows[customer][1] == T - recency  # RFM recency = T - lifetimes' recency
        assert rows[customer][2] == T


def test_lifetimes_gives_the_clv_summary_on_the_purchase_rows(example: Path) -> None:
    pd = pytest.importorskip("pandas")
    utils = pytest.importorskip("lifetimes.utils")
    tx = pd.read_csv(example, parse_dates=["timestamp"])
    args = {"observation_period_end": "2024-03-01", "freq": "D"}

    def summary(rows: object, **extra: object) -> dict[str, tuple[float, ...]]:
        frame = utils.summary_data_from_transaction_data(
            rows, "customer_id", "timestamp", monetary_value_col="amount", **args, **extra
        )
        return {str(c): tuple(float(v) for v in frame.loc[c, list(FIELDS)]) for c in frame.index}

    purchases = tx[tx["amount"] > 0]
    assert summary(purchases) == {c: tuple(map(float, v)) for c, v in SUMMARY.items()}
    weeks = summary(purchases, freq_multiplier=7)
    for customer, (x, t, T, m) in SUMMARY.items():
        assert weeks[customer] == pytest.approx((x, t / 7, T / 7, m), abs=1e-12)
    # On the whole file lifetimes counts bob's refund day as a repeat purchase.
    assert summary(tx)["bob"] == (2.0, 43.0, 51.0, 0.0)


def test_the_documented_predict_command_runs_on_the_documented_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The command docs/clv.md gives for the worked example works as written."""
    doc = (Path(__file__).parents[2] / "docs" / "clv.md").read_text()
    (block,) = re.findall(r"```csv\n(customer_id,timestamp,amount\n.*?)```", doc, flags=re.S)
    assert block == EXAMPLE
    (command,) = re.findall(r"`fidelite (clv predict -i example\.csv[^`]*)`", doc)
    monkeypatch.chdir(tmp_path)
    Path("example.csv").write_text(block)
    result = runner.invoke(app, shlex.split(command))
    assert result.exit_code == 0, result.output
    rows = pa_csv.read_csv("out.csv").to_pylist()
    assert {row["customer_id"]: tuple(row[f] for f in FIELDS) for row in rows} == SUMMARY
