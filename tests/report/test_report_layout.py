"""The page fits a phone and a tablet (charts shrink to a floor, then scroll in their own
box; wide tables scroll in theirs) and prints without the folded tables."""

from __future__ import annotations

import re
from pathlib import Path

from tests.report.test_report_axis_labels import _months, _report


def test_the_page_fits_a_phone_and_prints(tmp_path: Path) -> None:
    """Was: no viewport, charts of a fixed 720 px and an 11-column table widening a
    390 px page to 901 px; the printed page kept the folded tables' show lines."""
    _, html = _report(tmp_path, _months(3))
    assert "<meta name='viewport' content='width=device-width, initial-scale=1'>" in html
    charts = re.findall(r'<div class="chart( wide)?"><svg [^>]*width="(\d+)"[^>]*style="([^"]*)"',
                        html)  # fmt: skip
    assert len(charts) == html.count("<svg") == 6
    for wide, width, style in charts:
        # shrinks with the page, never below 540 px (then scrolls in its box)
        assert style == f"max-width:{width}px;min-width:{min(int(width), 540)}px"
        assert bool(wide) == (int(width) >= 540)
    style = html[html.index("<style>") : html.index("</style>")]
    assert ".chart{overflow-x:auto;" in style and ".chart svg{display:block;width:100%" in style
    assert "table{border-collapse:collapse;display:block;overflow-x:auto;max-width:100%" in style
    assert "@media (max-width:720px){" in style
    assert "@media print{" in style and "details.values{display:none}" in style
