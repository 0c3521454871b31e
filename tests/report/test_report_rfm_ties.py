"""The RFM section says how ties are scored: a value everyone shares scores 1."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from fidelite.cli.main import _register, app

_register()


def test_everyone_buying_on_the_last_day_is_explained(tmp_path: Path) -> None:
    src = tmp_path / "tx.csv"
    src.write_text("customer_id,timestamp,amount\na,2024-05-17,10\nb,2024-05-17,20\n")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["report", str(src), "--out", str(out), "-f", "json"])
    assert result.exit_code == 0, result.output
    segments = json.loads((out / "report.json").read_text())["rfm_segments"]
    assert [(s["segment"], s["customers"]) for s in segments] == [("lost", 2)]
    html = (out / "report.html").read_text()
    start = html.index("<h2>RFM segments</h2>")
    assert (
        "Customers with the same value get the same score, the lowest their group reaches: "
        "a value every customer shares scores 1, so when everyone bought on the last day "
        "all have recency 1 (and a single customer, compared with nobody, scores 1 and 1: "
        "lost); read such segments as &#x27;no difference between customers&#x27;, not as "
        "lost customers. The segment follows from the two scores"
    ) in html[start : html.index("</section>", start)]
