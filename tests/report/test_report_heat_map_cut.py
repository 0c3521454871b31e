"""The cohort heat map says what it leaves out (its 18 rows and 18 columns)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from fidelite.cli.main import _register, app

_register()


def _report(tmp_path: Path, months: int) -> tuple[dict, str]:
    """One new customer a month over ``months`` months, the first back in the last."""
    lines = [f"c{m},{2023 + m // 12}-{m % 12 + 1:02d}-10,10" for m in range(months)]
    last = months - 1
    lines.append(f"c0,{2023 + last // 12}-{last % 12 + 1:02d}-20,10")
    src = tmp_path / "tx.csv"
    src.write_text("customer_id,timestamp,amount\n" + "\n".join(lines) + "\n")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["report", str(src), "--out", str(out), "-f", "json"])
    assert result.exit_code == 0, result.output
    return json.loads((out / "report.json").read_text()), (out / "report.html").read_text()


def _section(html: str) -> str:
    start = html.index("<h2>Cohort heat map</h2>")
    return html[start : html.index("</section>", start)]


def test_the_heat_map_names_the_months_it_leaves_out(tmp_path: Path) -> None:
    data, html = _report(tmp_path, 20)
    rows = data["metrics"]["cohorts"]["rows"]
    assert (len(rows), rows[0]["cohort"], rows[0]["month_19"]) == (20, "2023-01", 100.0)
    assert (
        "is how many customers the group has. For reading, the map shows the 18 most "
        "recent first-purchase months and months 0 to 17: left out here are the 2 earliest "
        "first-purchase months (2023-01 to 2023-02) and months 18 to 19 after the first "
        "purchase; report.json&#x27;s metrics.cohorts has every one.</p>"
    ) in _section(html)


def test_a_map_that_shows_everything_says_nothing_more(tmp_path: Path) -> None:
    _, html = _report(tmp_path, 3)
    assert "is how many customers the group has.</p>" in _section(html)
    assert "left out here" not in html
