"""`program-kpis --engine spark`: the --input transactions run on Spark, with the same
figures as on DuckDB (the database KPIs are DuckDB's in both runs)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from fidelite.cli.main import _register, app
from fidelite.store import Database
from tests.analytics.test_cli_report import _run_program

_register()
pytestmark = pytest.mark.slow


def _kpis(*args: str) -> dict[str, Any]:
    result = CliRunner().invoke(app, ["metrics", "program-kpis", *args, "--format", "json"])
    assert result.exit_code == 0, result.output
    out: dict[str, Any] = json.loads(result.stdout)
    return out


def test_program_kpis_input_runs_on_spark_with_duckdbs_figures(
    sqlite_template: Path, tmp_path: Path
) -> None:
    path = tmp_path / "cafe.db"
    shutil.copy(sqlite_template, path)
    db = Database(f"sqlite:///{path}")
    _run_program(db)
    db.dispose()
    tx = tmp_path / "all.csv"
    tx.write_text(
        "customer_id,timestamp,amount\nann,2024-01-05,20\nbob,2024-02-01,15\n"
        "zoe,2024-01-07,9\nzoe,2024-02-07,3\n"
    )
    args = ["--db", f"{path}#cafe", "--input", str(tx), "--point-value", "0.01"]
    duck = _kpis(*args)
    spark = _kpis(*args, "--engine", "spark")
    assert spark["rows"] == duck["rows"]
    assert spark["summary"] == duck["summary"]
    # zoe is the one non-member customer of three: spend 12 against (20 + 15) / 2.
    summary = duck["summary"]
    assert (summary["customers"], summary["member_customers"]) == (3, 2)
    assert (summary["spend_per_member_customer"], summary["spend_per_non_member_customer"]) == (
        17.5,
        12.0,
    )
