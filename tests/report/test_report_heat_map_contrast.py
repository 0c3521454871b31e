"""Heat-map cell text reads at 4.5:1 or more (WCAG AA) on every shade of the cells."""

from __future__ import annotations

import re

from fidelite.report import svg


def _luminance(r: float, g: float, b: float) -> float:
    def channel(c: float) -> float:
        c /= 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def _cells(values: list[float]) -> list[tuple[float, str, str]]:
    """(opacity, text colour, text) of each drawn cell."""
    drawn = svg.heat_map(["c"], [str(i) for i in range(len(values))], [values],
                         x_label="months", y_label="cohort")  # fmt: skip
    return [
        (float(a), fg, text)
        for a, fg, text in re.findall(
            r'fill="rgba\(37,99,235,([\d.]+)\)"/><text [^>]*fill="(#[0-9a-f]+)">([^<]*)</text>',
            drawn,
        )
    ]


def test_every_cell_text_contrasts_at_least_4_5() -> None:
    values = [i / 10 for i in range(1001)]
    cells = _cells(values)
    assert len(cells) == 1001
    for (alpha, fg, text), value in zip(cells, values, strict=True):
        fill = _luminance(*(255 * (1 - alpha) + c * alpha for c in (37, 99, 235)))
        ink = _luminance(255, 255, 255) if fg == "#fff" else _luminance(17, 17, 17)
        ratio = (max(fill, ink) + 0.05) / (min(fill, ink) + 0.05)
        assert ratio >= 4.5, (value, alpha, fg, round(ratio, 2))
        assert text == f"{value:.1f}"


def test_mid_cells_get_dark_text_and_near_full_ones_a_darker_blue() -> None:
    assert _cells([0.0, 57.5, 63.0, 85.0, 88.0, 100.0]) == [
        (0.08, "#111", "0.0"),
        (0.61, "#111", "57.5"),  # white text here read at under 3:1
        (0.66, "#111", "63.0"),
        (0.86, "#111", "85.0"),
        (0.93, "#fff", "88.0"),  # 0.89 reads at under 4.5:1 either way: darkened
        (1.0, "#fff", "100.0"),
    ]
