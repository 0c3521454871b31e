"""SPEC.md section 4 [vector] examples, reproduced through the CLI's JSON output."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from fidelite.cli.main import _register, app

_register()
runner = CliRunner()


def run_json(*args: str) -> dict[str, Any]:
    result = runner.invoke(app, ["metrics", *args, "--format", "json"])
    assert result.exit_code == 0, result.output
    payload: dict[str, Any] = json.loads(result.stdout)
    return payload


def test_retention_vector_gives_90_percent_and_churn_10(tmp_path: Path) -> None:
    # February: 100 customers. March: 90 of them come back (10 lost) and 10 new ones
    # buy, so S = 100, N = 10, E = 100.
    lines = ["customer_id,timestamp,amount"]
    lines += [f"c{i},2024-02-{1 + i % 28:02d},10" for i in range(100)]
    lines += [f"c{i},2024-03-{1 + i % 28:02d},10" for i in range(90)]
    lines += [f"n{i},2024-03-15,10" for i in range(10)]
    path = tmp_path / "tx.csv"
    path.write_text("\n".join(lines) + "\n")
    out = run_json("retention", "--input", str(path), "--period", "month")
    assert out["metric"] == "retention"
    assert "(E - N) / S" in out["definition"]
    assert out["parameters"]["period"] == "month"
    march = out["rows"][1]
    assert march["period"] == "2024-03"
    assert (march["customers_start"], march["new"], march["customers_end"]) == (100, 10, 100)
    assert (march["lost"], march["retention_rate"], march["churn_rate"]) == (10, 90.0, 10.0)


def test_repurchase_vector_gives_march_cohort_20_percent(tmp_path: Path) -> None:
    # 100 customers first buy in March. 20 order again within 30 days (the last one on
    # day 30 exactly); 10 more order again, but on day 31 or later.
    lines = ["customer_id,timestamp,amount"]
    for i in range(100):
        first = date(2024, 3, 1) + timedelta(days=i % 31)
        lines.append(f"m{i},{first.isoformat()},25")
        if i < 20:
            gap = 30 if i == 19 else 1 + i
            lines.append(f"m{i},{(first + timedelta(days=gap)).isoformat()},25")
        elif i < 30:
            lines.append(f"m{i},{(first + timedelta(days=31 + i)).isoformat()},25")
    path = tmp_path / "tx.csv"
    path.write_text("\n".join(lines) + "\n")
    out = run_json("repurchase", "--input", str(path), "--days", "30,60,90")
    march = out["rows"][0]
    assert march["cohort"] == "2024-03"
    assert march["customers"] == 100
    assert march["repurchased_30d"] == 20
    assert march["repurchase_rate_30d"] == 20.0
    assert march["repurchase_rate_60d"] == 30.0  # gaps 51..60 (i = 20..29) are within 60
