"""The report names the engine given with --engine, also for a program database whose
program has no purchases."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.support import fidelite
from tests.report.test_report_program_without_purchases import _ledger_only


def test_a_spark_report_of_a_program_without_purchases_names_spark(tmp_path: Path) -> None:
    """Was: --engine spark on a program database without purchases said engine duckdb."""
    path = _ledger_only(tmp_path)
    out = tmp_path / "out"
    fidelite("report", path, "--out", out, "--engine", "spark", "-f", "json")
    data = json.loads((out / "report.json").read_text())
    assert data["input"]["engine"] == "spark"
    assert " &middot; engine spark &middot; " in (out / "report.html").read_text()
