"""Printed, a wide table wraps its cells to the page instead of running off it: on
screen a wide table scrolls in its own box, which paper cannot do (long product names in
"Products bought together" pushed 4 of its 7 columns off the printed page)."""

from __future__ import annotations

import re

from fidelite.report.build import STYLE


def _print_rules() -> str:
    found = re.search(r"@media print\{(.*)\}$", STYLE)
    assert found is not None
    return found.group(1)


def test_printed_cells_wrap() -> None:
    printed = _print_rules()
    assert "table{display:table;" in printed  # no scrolling box on paper
    assert "td{white-space:normal;overflow-wrap:anywhere}" in printed
