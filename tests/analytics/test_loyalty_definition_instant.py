"""The kinds of loyal customers say which answer is the latest as docs/metrics.md does:
the latest instant, not local time (which repeats an hour when the clocks go back)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from fidelite.cli.main import _register, app


def test_definition_says_latest_instant(tmp_path: Path) -> None:
    _register()
    tx = tmp_path / "tx.csv"
    tx.write_text("customer_id,timestamp,amount,order_id\na,2024-06-01,10,a1\na,2024-06-20,10,a2\n")
    answers = tmp_path / "answers.csv"
    answers.write_text("customer_id,timestamp,question,score\na,2024-06-21,nps,10\n")
    args = ["metrics", "loyalty-kinds", "-i", str(tx), "--surveys", str(answers), "-f", "json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    definition = json.loads(result.stdout)["definition"]
    assert definition.endswith(
        "Latest answer = latest instant, not local time (highest score on ties)."
    )
    assert "latest timestamp" not in definition
