"""Line-chart series differ by dash pattern and point marker, not by colour alone, and
the legend shows each series' line and marker."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from fidelite.cli.main import _register, app

_register()

# a buys in January, February and March, b in February only: retention 100 % in
# February (x = 313), 50 % in March (x = 570); churn 0 % then 50 %.
TX = "customer_id,timestamp,amount\na,2024-01-05,10\na,2024-02-05,10\nb,2024-02-06,10\na,2024-03-05,10\n"  # noqa: E501


def test_retention_and_churn_differ_by_dash_and_marker(tmp_path: Path) -> None:
    src = tmp_path / "tx.csv"
    src.write_text(TX)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["report", str(src), "--out", str(out), "-f", "json"])
    assert result.exit_code == 0, result.output
    html = (out / "report.html").read_text()
    start = html.index("<h2>Monthly retention and churn</h2>")
    section = html[start : html.index("</section>", start)]
    square = 'm-3-3h6v6h-6z" fill="#2563eb" stroke-dasharray="none"/>'
    triangle = 'm0-4l3.5 6h-7z" fill="#dc2626" stroke-dasharray="none"/>'
    assert (
        '<polyline fill="none" stroke="#2563eb" stroke-width="2" points="313.0,16.0 570.0,134.0"/>'
        f'<path d="M313.0 16.0{square}<path d="M570.0 134.0{square}'
        '<line x1="576" x2="598" y1="21" y2="21" stroke="#2563eb" stroke-width="2"/>'
        f'<path d="M587.0 21.0{square}'
    ) in section
    assert (
        '<g stroke-dasharray="7 4">'
        '<polyline fill="none" stroke="#dc2626" stroke-width="2" points="313.0,252.0 570.0,134.0"/>'
        f'<path d="M313.0 252.0{triangle}<path d="M570.0 134.0{triangle}</g>'
        '<g stroke-dasharray="7 4">'
        '<line x1="576" x2="598" y1="35" y2="35" stroke="#dc2626" stroke-width="2"/>'
        f'<path d="M587.0 35.0{triangle}</g>'
    ) in section
    assert "<rect" not in section  # the legend's colour squares are gone
    assert re.search(r"rising blue line", section) is None
    assert (
        "A rising retention line (solid blue, square points) means more customers keep "
        "coming back month after month; churn is the dashed red line with triangles."
    ) in section
