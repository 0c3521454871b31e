"""The bar charts say what their bars are, the RFM section spells out RFM, and the CLV
section reads its horizontal bars as they are drawn."""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path

from typer.testing import CliRunner

from fidelite.cli.main import _register, app
from tests.report.test_report import _history
from tests.report.test_report_axis_labels import _section

_register()


def _titles(section: str) -> list[str]:
    """The bar chart's title over its bar names (right-aligned at x = 150, y = 14)."""
    found = re.findall(
        r'<text x="150" y="14" font-size="11" text-anchor="end" fill="#555">([^<]*)</text>',
        section,
    )
    return [unescape(t) for t in found]


def test_bar_charts_name_their_bars_and_rfm_is_spelled_out(tmp_path: Path) -> None:
    """Was: bars labelled 0-65, 65-129... or 0.0-0.1... with nothing saying what they
    measure; "RFM" never spelled out; the CLV text pointed to a tail "on the right" of
    bars that run top to bottom."""
    _history(tmp_path / "tx.csv")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["report", str(tmp_path / "tx.csv"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    html = (out / "report.html").read_text()
    rfm = _section(html, "RFM segments")
    assert _titles(rfm) == ["segment"]
    assert "(RFM: recency, frequency, monetary value; each customer gets a recency" in rfm
    clv = _section(html, "Customer lifetime value (next 12 months)")
    assert _titles(clv) == ["expected value"]
    assert "on the right" not in clv
    assert (
        "Each bar counts the customers whose expected value falls in that band (in the "
        "currency of the amounts). Most customers sit in the first bands; the few in the "
        "lower bars, worth more each, are where the value is."
    ) in clv
    assert _titles(_section(html, "Probability that a customer is still active")) == [
        "P(alive), 0 to 1"
    ]
    # the first bar sits under the title: y = 10 + 22
    assert '<rect x="160" y="32" width=' in rfm
