"""The repurchase chart: days to scale, rates of windows the data do not cover yet
drawn faded with hollow points (provisional), the complete ones as before."""

from __future__ import annotations

import json
import re
from pathlib import Path

from typer.testing import CliRunner

from fidelite.cli.main import _register, app
from fidelite.report.svg import line_chart

_register()

# January: A again after 15 days, B after 51; C starts on the last day (15 April), 75
# days after January's end: January's 30- and 60-day windows are complete, not its 90.
TX = """customer_id,timestamp,amount
A,2024-01-05,10
A,2024-01-20,10
B,2024-01-10,20
B,2024-03-01,20
C,2024-04-15,5
"""


def _section(html: str, title: str) -> str:
    start = html.index(f"<h2>{title}</h2>")
    return html[start : html.index("</section>", start)]


def test_provisional_windows_are_faded_and_days_to_scale(tmp_path: Path) -> None:
    src = tmp_path / "tx.csv"
    src.write_text(TX)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["report", str(src), "--out", str(out), "-f", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads((out / "report.json").read_text())["metrics"]["repurchase"]["rows"]
    days = (30, 60, 90, 180, 360)
    # report.json keeps every rate, provisional ones flagged
    assert [(r["cohort"], [(r[f"repurchase_rate_{d}d"], r[f"complete_{d}d"]) for d in days])
            for r in rows] == [
        ("2024-01", [(50.0, True), (100.0, True), (100.0, False), (100.0, False),
                     (100.0, False)]),
        ("2024-04", [(0.0, False)] * 5),
    ]  # fmt: skip
    section = _section((out / "report.html").read_text(), "Repurchase curves")
    # x = 56 + 514 * days / 360: 30 and 60 days close together, 360 at the right end
    assert re.findall(r'<text x="([\d.]+)" y="268"[^>]*>(\d+ d)</text>', section) == [
        ("98.8", "30 d"), ("141.7", "60 d"), ("184.5", "90 d"), ("313.0", "180 d"),
        ("570.0", "360 d"),
    ]  # fmt: skip
    solid = '<polyline fill="none" stroke="{}" stroke-width="2" points="{}"/>'
    hollow = '<circle cx="{}" cy="{}" r="3" fill="#fff" stroke="{}" stroke-dasharray="none"/>'
    january = "#2563eb"
    assert re.findall(r"<polyline [^>]*/>|<circle [^>]*/>|<g [^>]*>", section)[:6] == [
        solid.format(january, "98.8,134.0 141.7,16.0"),  # 50 % then 100 %: measured
        '<g opacity="0.35">',
        solid.format(january, "141.7,16.0 184.5,16.0 313.0,16.0 570.0,16.0"),
        hollow.format("184.5", "16.0", january),
        hollow.format("313.0", "16.0", january),
        hollow.format("570.0", "16.0", january),
    ]
    april = "#dc2626"  # no window complete: all faded and hollow
    line = " ".join(f"{x},252.0" for x in ("98.8", "141.7", "184.5", "313.0", "570.0"))
    assert f'<g opacity="0.35">{solid.format(april, line)}</g>' in section
    assert section.count(f'fill="#fff" stroke="{april}"') == 5
    assert ">provisional</text>" in section
    assert (
        "Faded lines and hollow points are provisional: the data do not yet reach that "
        "many days past the end of the month, so the rate may still rise (complete_Dd "
        "false in report.json). Here 8 of the 10 points are provisional.</p>"
    ) in section


def test_complete_windows_only_have_no_provisional_legend(tmp_path: Path) -> None:
    src = tmp_path / "tx.csv"
    # data until 400 days after January: every window of January complete
    src.write_text(TX.replace("C,2024-04-15,5", "C,2025-02-05,5"))
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["report", str(src), "--out", str(out), "-f", "json"])
    assert result.exit_code == 0, result.output
    section = _section((out / "report.html").read_text(), "Repurchase curves")
    assert re.findall(r"<polyline [^>]*/>", section)[0] == (
        '<polyline fill="none" stroke="#2563eb" stroke-width="2" '
        'points="98.8,134.0 141.7,16.0 184.5,16.0 313.0,16.0 570.0,16.0"/>'
    )
    assert 'fill="#fff" stroke="#2563eb"' not in section
    # February 2025's cohort (C) is provisional
    assert "Here 5 of the 10 points are provisional." in section


def test_hollow_points_are_solid_rings_and_described_only_when_there_are_some() -> None:
    """A provisional point's ring does not take its series' dash pattern (the second
    series is dashed), and the description speaks of provisional points only when the
    chart has some."""
    series = [("a", [10.0, 20.0]), ("b", [30.0, 40.0])]
    some = line_chart(["30 d", "60 d"], series, x_label="days", y_label="rate",
                      provisional=[[False, False], [False, True]])  # fmt: skip
    rings = re.findall(r'<circle [^>]*fill="#fff" stroke="#dc2626"[^>]*/>', some)
    assert len(rings) == 1 and 'stroke-dasharray="none"' in rings[0]
    assert "Faded lines with hollow points are provisional." in some
    none = line_chart(["30 d", "60 d"], series, x_label="days", y_label="rate",
                      provisional=[[False, False], [False, False]])  # fmt: skip
    assert "provisional" not in none
