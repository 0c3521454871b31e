"""`clv predict`'s risk column is `alive_risk` (P(alive) only), not `churn_risk`.

predict wrote a `churn_risk` column from P(alive) alone while `clv health`'s
`churn_risk` also makes a customer with a falling purchase frequency `medium`, the rule
docs/clv.md gives: on the CDNOW sample 195 of 2,357 customers were `low` in one and
`medium` in the other under the same name.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.csv as pa_csv
import pytest
from typer.testing import CliRunner

from fidelite.cli.main import _register, app
from fidelite.clv.health import ChurnRiskThresholds, alive_risk, churn_risk
from tests.clv.cdnow import datasets_dir

runner = CliRunner()
_register()


def test_alive_risk_cuts_probability_alive_only() -> None:
    alive = [0.0, 0.2999, 0.3, 0.6999, 0.7, 1.0]
    assert alive_risk(alive).tolist() == ["high", "high", "medium", "medium", "low", "low"]
    strict = ChurnRiskThresholds(high_below=0.6, medium_below=0.9)
    assert alive_risk([0.5, 0.95], strict).tolist() == ["high", "low"]
    # churn_risk with a falling trend differs from alive_risk for the same P(alive).
    assert churn_risk([0.9], [0.2]).tolist() == ["medium"]
    assert alive_risk([0.9]).tolist() == ["low"]


@pytest.fixture(scope="module")
def cdnow_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cdnow") / "cdnow.csv"
    lines = ["customer_id,timestamp,amount"]
    with (datasets_dir() / "CDNOW_sample.txt").open() as handle:
        for line in handle:
            _, sample_id, day, _, value = line.split()
            lines.append(f"{sample_id},{day[:4]}-{day[4:6]}-{day[6:]},{value}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_predict_writes_alive_risk_and_health_keeps_churn_risk(
    cdnow_csv: Path, tmp_path: Path
) -> None:
    out = tmp_path / "clv.csv"
    result = runner.invoke(
        app, ["clv", "predict", "-i", str(cdnow_csv), "-o", str(out), "-f", "json"]
    )
    assert result.exit_code == 0, result.output
    table = pa_csv.read_csv(out, convert_options=pa_csv.ConvertOptions(
        column_types={"customer_id": "string"})).to_pylist()  # fmt: skip
    assert list(table[0]) == [
        "customer_id", "frequency", "recency", "T", "monetary_value", "probability_alive",
        "expected_purchases", "expected_spend", "clv", "alive_risk",
    ]  # fmt: skip
    alive = np.array([r["probability_alive"] for r in table])
    assert [r["alive_risk"] for r in table] == alive_risk(alive).tolist()
    counts = {k: sum(r["alive_risk"] == k for r in table) for k in ("high", "medium", "low")}
    health = runner.invoke(app, ["clv", "health", "-i", str(cdnow_csv), "-f", "json"])
    rows = {r["customer_id"]: r for r in json.loads(health.stdout)["rows"]}
    differ = [r["customer_id"] for r in table
              if r["alive_risk"] != rows[r["customer_id"]]["churn_risk"]]  # fmt: skip
    # Health's churn_risk adds the falling-trend rule: 195 customers low here are medium there.
    assert len(differ) == 195
    assert {(rows[c]["churn_risk"], next(r["alive_risk"] for r in table if r["customer_id"] == c))
            for c in differ} == {("medium", "low")}  # fmt: skip
    assert counts == {"high": 282, "medium": 376, "low": 1699}
