"""The loyalty report: offline HTML with charts, and report.json with every number."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from fidelite.cli.main import _register, app

_register()

TX = """customer_id,timestamp,amount,order_id
A,2024-01-03,10,o1
A,2024-02-10,30,o2
B,2024-01-20,50,o3
C,2024-02-05,5,o4
"""


def test_report_writes_offline_html_and_json(tmp_path: Path) -> None:
    src = tmp_path / "tx.csv"
    src.write_text(TX)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["report", str(src), "--out", str(out), "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads((out / "report.json").read_text())
    feb = data["metrics"]["retention"]["rows"][1]
    # S = {A, B}, E = {A, C}: A retained, B lost.
    assert (feb["retention_rate"], feb["churn_rate"]) == (50.0, 50.0)
    assert data["metrics"]["repeat_rate"]["rows"][0]["repeat_purchase_rate"] == round(100 / 3, 4)
    assert data["metrics"]["pareto"]["summary"]["top_revenue"] == 50.0  # ceil(0.2 x 3) = 1: B
    html = (out / "report.html").read_text()
    assert html.count("<svg") == 6
    assert "How to read it." in html
    assert "<script" not in html and "http://" not in html.replace("http://www.w3.org", "")


def test_report_on_bad_file_writes_nothing(tmp_path: Path) -> None:
    src = tmp_path / "tx.csv"
    src.write_text("customer_id,timestamp,amount\nA,yesterday,1\n")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["report", str(src), "--out", str(out), "--format", "json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout)["error"]["row"] == 2
    assert not out.exists()
