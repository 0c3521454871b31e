"""What the report's figures mean, stated in the report itself (SPEC §4)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from fidelite.cli.main import _register, app

_register()

# One day: a bought twice (two orders), b and c once.
ONE_DAY = """customer_id,timestamp,amount,order_id
a,2024-03-05T09:00:00,10,o1
a,2024-03-05T10:00:00,20,o2
b,2024-03-05T11:00:00,30,o3
c,2024-03-05T12:00:00,40,o4
"""


def _report(tmp_path: Path, text: str, *args: str) -> tuple[dict, str]:  # type: ignore[type-arg]
    src = tmp_path / "tx.csv"
    src.write_text(text)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["report", str(src), "--out", str(out), "-f", "json", *args])
    assert result.exit_code == 0, result.output
    return json.loads((out / "report.json").read_text()), (out / "report.html").read_text()


def test_the_clv_models_count_purchase_days_not_orders(tmp_path: Path) -> None:
    data, html = _report(tmp_path, ONE_DAY)
    # a has two orders (a repeat customer for the repeat rate) but on one day only
    assert data["metrics"]["repeat_rate"]["rows"][0]["repeat_customers"] == 1
    reason = (
        "only 0 customers bought on more than one day (the models count a day's purchases "
        "as one); the models need at least 10"
    )
    assert data["clv_models"] == {"error": reason}
    assert reason.replace("'", "&#x27;") in html
