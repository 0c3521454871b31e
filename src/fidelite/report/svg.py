"""Charts rendered server-side as inline SVG, so the report opens offline with no script.

Each function takes plain numbers and returns one ``<svg>`` element. Values of ``None``
are gaps (not zeros). Colours come from one small palette. Every chart names its axes
(the titles are required arguments): the report's readers are not analysts, and a
number without its unit or direction is a guess.

A line chart's y axis runs between round values, a step of 1, 2 or 5 times a power of
ten apart (0 to 150 by 50, not 0 to 129.98 by 32.495), each written in full with
thousands separators (1,500,000, never 1.5e+06); a money axis steps by at least 0.01,
so no label has more than two decimals.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape
from itertools import pairwise

PALETTE = ("#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777")
W, H, PAD_L, PAD_B, PAD_T, PAD_R = 720, 300, 56, 48, 16, 150


def line_chart(
    x_labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None]]],
    *,
    x_label: str,
    y_label: str,
    y_max: float = 100.0,
    y_min: float = 0.0,
    money: bool = False,
    x_at: Sequence[float] | None = None,
    provisional: Sequence[Sequence[bool]] | None = None,
    title: str = "",
    shade_from: int | None = None,
    shade_label: str = "",
) -> str:
    """Lines over shared x positions, on a y axis from ``y_min`` to ``y_max`` (widened to
    the round values of :func:`ticks`; ``money``: steps of at least 0.01); a legend on
    the right; both axes titled. A ``None`` value breaks the line (a gap, not a zero); a
    value with no neighbour on either side is drawn as a dot.

    The x positions are evenly spaced, or, given ``x_at`` (one increasing number per
    label, e.g. days), to scale on an axis from 0 (or the first value when below 0) to
    the last value.

    ``provisional`` (per series, per position) marks values still open (a window the
    data do not cover yet): drawn with a hollow point, the line to and from them faded,
    and a legend entry saying so.

    ``shade_from`` (a position) shades the plot from halfway before that position to
    its right edge, ``shade_label`` written above it (right-aligned on the plot's edge):
    the month in progress, whose values are not comparable with complete months (the
    section's text says so to every reader; the description stays the axes').

    The x labels are thinned to those that fit side by side (:func:`x_label_indexes`,
    the last one always kept); every position keeps a short tick.

    ``title`` names the chart to assistive technology (default: the y axis by the x
    axis); its description says what the axes and lines are."""
    at, labels = ticks(y_min, y_max, min_step=0.01 if money else None)
    y_min, y_max = at[0], at[-1]
    # room on the left for the longest tick label, between the axis and its title
    left = max(PAD_L, math.ceil(26 + 5.6 * max(len(t) for t in labels)))
    pw, ph = W - left - PAD_R, H - PAD_T - PAD_B
    xs = _x_positions(len(x_labels), x_at, left, pw)
    span = (y_max - y_min) or 1.0
    parts = [
        _frame(y_label, at, labels, left),
        f'<text x="{left + pw / 2:.1f}" y="{H - 8}" font-size="11" text-anchor="middle" '
        f'fill="#555">{escape(x_label)}</text>',
    ]
    if shade_from is not None and 0 <= shade_from < len(xs):
        parts.append(_shade(xs, shade_from, shade_label, left + pw))
    shown = set(x_label_indexes(xs, x_labels, evenly=x_at is None))
    for i, label in enumerate(x_labels):
        x = xs[i]
        # a short tick for every position, its label only where it has room
        parts.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{H - PAD_B}" y2="{H - PAD_B + 4}" '
            'stroke="#9ca3af"/>'
        )
        if i in shown:
            parts.append(
                f'<text x="{x:.1f}" y="{H - PAD_B + 16}" font-size="{X_TICK_SIZE}" '
                f'text-anchor="middle">{escape(label)}</text>'
            )
    for k, (name, values) in enumerate(series):
        colour = PALETTE[k % len(PALETTE)]
        open_ = provisional[k] if provisional is not None else [False] * len(values)
        drawn = []
        for run in _runs(values):
            points = [(xs[i], PAD_T + ph * (1 - (v - y_min) / span), open_[i]) for i, v in run]
            drawn.append(_line(points, colour))
            drawn += [_marker(k, x, y, colour) for x, y, o in points if not o]
        parts.append(_styled(k, "".join(drawn)))
        y = PAD_T + 14 * k + 8
        sample = (
            f'<line x1="{W - PAD_R + 6}" x2="{W - PAD_R + 28}" y1="{y - 3}" y2="{y - 3}" '
            f'stroke="{colour}" stroke-width="2"/>' + _marker(k, W - PAD_R + 17, y - 3, colour)
        )
        parts.append(
            _styled(k, sample)
            + f'<text x="{W - PAD_R + 32}" y="{y + 1}" font-size="11">{escape(name)}</text>'
        )
    if provisional is not None and any(any(p) for p in provisional):
        y = PAD_T + 14 * len(series) + 14
        parts.append(
            f'<g opacity="{FADED}"><line x1="{W - PAD_R + 10}" x2="{W - PAD_R + 24}" '
            f'y1="{y - 3}" y2="{y - 3}" stroke="#555" stroke-width="2"/></g>'
            f'<circle cx="{W - PAD_R + 17}" cy="{y - 3}" r="3" fill="#fff" stroke="#555"/>'
            f'<text x="{W - PAD_R + 30}" y="{y + 1}" font-size="11">provisional</text>'
        )
    names = ", ".join(name for name, _ in series)
    desc = (
        f"Line chart of {names}: {x_label} across"
        + (f", from {x_labels[0]} to {x_labels[-1]}" if x_labels else "")
        + f"; {y_label} up, from {labels[0]} to {labels[-1]}."
        + (
            " Faded lines with hollow points are provisional."
            if provisional is not None and any(any(p) for p in provisional)
            else ""
        )
    )
    return _svg(parts, title=title or f"{y_label} by {x_label}", desc=desc)


X_TICK_SIZE = 10  # font size of the x axis labels
LABEL_GAP = 6.0  # least room between two x labels


# DejaVu Sans advance widths in em of the printable ASCII characters, space to tilde,
# as Chromium measures them: the widest of the common default sans-serif faces (Arial
# and Liberation Sans are narrower), so text that fits by them fits in any of them.
ASCII_EM = (
    0.318, 0.401, 0.46, 0.838, 0.636, 0.95, 0.78, 0.275, 0.39, 0.39, 0.5, 0.838, 0.318,
    0.361, 0.318, 0.337, 0.636, 0.636, 0.636, 0.636, 0.636, 0.636, 0.636, 0.636, 0.636,
    0.636, 0.337, 0.337, 0.838, 0.838, 0.838, 0.531, 1, 0.684, 0.686, 0.698, 0.77, 0.632,
    0.575, 0.775, 0.752, 0.295, 0.295, 0.656, 0.557, 0.863, 0.748, 0.787, 0.603, 0.787,
    0.695, 0.635, 0.611, 0.732, 0.684, 0.989, 0.685, 0.611, 0.685, 0.39, 0.337, 0.39,
    0.838, 0.5, 0.5, 0.613, 0.635, 0.55, 0.635, 0.615, 0.352, 0.635, 0.634, 0.278, 0.278,
    0.579, 0.278, 0.974, 0.634, 0.612, 0.635, 0.635, 0.411, 0.521, 0.392, 0.634, 0.592,
    0.818, 0.592, 0.592, 0.525, 0.636, 0.337, 0.636, 0.838,
)  # fmt: skip


def text_width(text: str, size: float) -> float:
    """The width of ``text`` at font ``size`` in the widest common sans-serif face
    (:data:`ASCII_EM`; any other character counted 1 em wide)."""
    return size * sum(ASCII_EM[ord(c) - 32] if " " <= c <= "~" else 1.0 for c in text)


def x_label_indexes(xs: Sequence[float], labels: Sequence[str], *, evenly: bool) -> list[int]:
    """The positions whose x label is written: no two drawn labels overlap (at least
    ``LABEL_GAP`` between them, widths by :func:`text_width`). Evenly spaced labels (the
    months of a time axis) are written every k-th, counting back from the last (the
    most recent month is always named), k the smallest step that fits; labels to scale
    are kept from the last backwards, each one that fits beside the previous kept."""
    n = len(labels)
    if n == 0:
        return []
    half = [text_width(label, X_TICK_SIZE) / 2 for label in labels]

    def fits(i: int, j: int) -> bool:  # i left of j
        return xs[j] - xs[i] >= half[i] + half[j] + LABEL_GAP

    if evenly:
        for step in range(1, n + 1):
            kept = list(range((n - 1) % step, n, step))
            if all(fits(a, b) for a, b in pairwise(kept)):
                return kept
        return [n - 1]
    kept = [n - 1]
    for i in range(n - 2, -1, -1):
        if fits(i, kept[-1]):
            kept.append(i)
    return sorted(kept)


def _shade(xs: Sequence[float], start: int, label: str, right: float) -> str:
    """A light band over the plot from halfway before position ``start`` to ``right``,
    its label above the plot, right-aligned on ``right``."""
    gap = (xs[1] - xs[0]) if len(xs) > 1 else 20.0
    x0 = xs[start] - gap / 2 if start > 0 else xs[0] - min(gap / 2, 10.0)
    x1 = min(right + min(gap / 2, 5.0), W - PAD_R + 4)
    top, bottom = PAD_T, H - PAD_B
    band = (
        f'<path d="M{x0:.1f} {top}H{x1:.1f}V{bottom}H{x0:.1f}Z" fill="#e5e7eb" fill-opacity="0.7"/>'
    )
    if not label:
        return band
    return band + (
        f'<text x="{right:.1f}" y="{PAD_T - 5}" font-size="10" text-anchor="end" '
        f'fill="#374151">{escape(label)}</text>'
    )


# Series differ by more than colour: a dash pattern (the first solid) and a marker shape.
DASHES = ("", "7 4", "2 3", "10 3 2 3", "4 4", "1 3", "12 4")


def _styled(k: int, marks: str) -> str:
    """``marks`` of series ``k`` with its dash pattern (wrapped in a group)."""
    dash = DASHES[k % len(DASHES)]
    return f'<g stroke-dasharray="{dash}">{marks}</g>' if dash else marks


def _marker(k: int, x: float, y: float, colour: str) -> str:
    """The point marker of series ``k`` at (x, y): square, triangle, diamond,
    down-triangle, cross, plus, bar, in turn (always drawn solid)."""
    shapes = (
        "m-3-3h6v6h-6z", "m0-4l3.5 6h-7z", "m0-4l4 4l-4 4l-4-4z", "m0 4l3.5-6h-7z",
        "m-3-3l6 6m0-6l-6 6", "m0-4v8m-4-4h8", "m-1-4h2v8h-2z",
    )  # fmt: skip
    shape = shapes[k % len(shapes)]
    lines_only = shape.startswith(("m-3-3l", "m0-4v"))  # the cross and the plus
    paint = f'stroke="{colour}" stroke-width="1.5" fill="none"'
    if not lines_only:
        paint = f'fill="{colour}"'
    return f'<path d="M{x:.1f} {y:.1f}{shape}" {paint} stroke-dasharray="none"/>'


FADED = 0.35  # the opacity of a line to or from a provisional value


def _line(points: Sequence[tuple[float, float, bool]], colour: str) -> str:
    """One run of a series: ``(x, y, provisional)`` points, in order, with no gap.

    A stretch between two values of which one is provisional is faded; a provisional
    value gets a hollow point; a run of one complete value is a dot (a polyline through
    one point is invisible)."""
    parts: list[str] = []
    stretch: list[tuple[float, float]] = []
    faded = False
    for (x0, y0, open0), (x1, y1, open1) in pairwise(points):
        if stretch and faded != (open0 or open1):
            parts.append(_polyline(stretch, colour, faded))
            stretch = []
        faded = open0 or open1
        stretch = stretch or [(x0, y0)]
        stretch.append((x1, y1))
    if stretch:
        parts.append(_polyline(stretch, colour, faded))
    for x, y, open_ in points:
        if open_:
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="#fff" stroke="{colour}" '
                'stroke-dasharray="none"/>'
            )
        elif len(points) == 1:
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"/>')
    return "".join(parts)


def _polyline(points: Sequence[tuple[float, float]], colour: str, faded: bool) -> str:
    line = (
        f'<polyline fill="none" stroke="{colour}" stroke-width="2" '
        f'points="{" ".join(f"{x:.1f},{y:.1f}" for x, y in points)}"/>'
    )
    return f'<g opacity="{FADED}">{line}</g>' if faded else line


def _x_positions(count: int, x_at: Sequence[float] | None, left: int, pw: int) -> list[float]:
    """The x coordinate of each of ``count`` labels: evenly spaced from ``left`` to
    ``left + pw``, or ``x_at`` to scale from min(0, first) to the last."""
    if x_at is None:
        n = max(count, 2)
        return [left + pw * i / (n - 1) for i in range(count)]
    low = min(0.0, x_at[0]) if x_at else 0.0
    span = ((x_at[-1] if x_at else 0.0) - low) or 1.0
    return [left + pw * (x - low) / span for x in x_at]


def _runs(values: Sequence[float | None]) -> list[list[tuple[int, float]]]:
    """The stretches of consecutive values between gaps, each as (position, value)."""
    runs: list[list[tuple[int, float]]] = [[]]
    for i, v in enumerate(values):
        if v is None:
            if runs[-1]:
                runs.append([])
        else:
            runs[-1].append((i, v))
    return [r for r in runs if r]


def bar_chart(
    items: Sequence[tuple[str, float]], *, x_label: str, title: str = "", y_label: str = ""
) -> str:
    """Horizontal bars, longest first as given; ``title`` names the chart to assistive
    technology (default: ``x_label``), its description lists every bar's value.
    ``x_label`` names the bars' values (under them), ``y_label`` what the bars are
    (above their names, right-aligned like them)."""
    head = 22 if y_label else 0
    height = 24 * len(items) + 40 + head
    top = max((v for _, v in items), default=1.0) or 1.0
    parts = []
    if y_label:
        parts.append(
            f'<text x="150" y="14" font-size="11" text-anchor="end" fill="#555">'
            f"{escape(y_label)}</text>"
        )
    for i, (name, value) in enumerate(items):
        y = 10 + head + 24 * i
        width = (W - 260) * value / top
        parts.append(
            f'<text x="150" y="{y + 14}" font-size="12" text-anchor="end">{escape(name)}</text>'
            f'<rect x="160" y="{y}" width="{width:.1f}" height="18" fill="{PALETTE[0]}"/>'
            f'<text x="{164 + width:.1f}" y="{y + 14}" font-size="11">{value:,.0f}</text>'
        )
    parts.append(
        f'<text x="160" y="{height - 8}" font-size="11" fill="#555">{escape(x_label)}</text>'
    )
    values = "; ".join(f"{name}: {value:,.0f}" for name, value in items)
    desc = f"Bar chart of {x_label} per bar: {values}."
    return _svg(parts, height, title=title or x_label, desc=desc)


def heat_map(
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    cells: Sequence[Sequence[float | None]],
    *,
    x_label: str,
    y_label: str,
    title: str = "",
    partial: Sequence[Sequence[bool]] | None = None,
    partial_note: str = "",
) -> str:
    """Cohort matrix: darker blue = higher percentage, each cell's % with one decimal in
    white or near-black, whichever reads best (:func:`cell_colours`); blank = not
    observed yet. ``title`` names it to assistive technology.

    ``x_label`` titles the columns (above them), ``y_label`` the row labels (above
    them, right-aligned like them); the row labels' column is as wide as the longer of
    the two (:func:`text_width`), so neither is cut at the image's left edge.

    ``partial`` (per row, per column) outlines cells measured over part of a month
    only (the month in progress when the data end) with a dashed border, and
    ``partial_note`` says so under the map."""
    cw, ch, top = 38, 20, 40
    widest = max([text_width(y_label, 11), *(text_width(label, 10) for label in row_labels)])
    left = max(150, math.ceil(widest + 14))
    width = max(left + cw * len(col_labels) + 10, left + math.ceil(text_width(x_label, 11)) + 10)
    marked = [
        (i, j)
        for i, row in enumerate(partial or [])
        for j, p in enumerate(row)
        if p and j < len(cells[i]) and cells[i][j] is not None
    ]
    note = partial_note if marked else ""
    height = top + ch * len(row_labels) + 10 + (22 if note else 0)
    parts = [
        f'<text x="{left}" y="12" font-size="11" fill="#555">{escape(x_label)}</text>'
        f'<text x="{left - 6}" y="{top - 8}" font-size="11" text-anchor="end" fill="#555">'
        f"{escape(y_label)}</text>"
    ]
    parts += [
        f'<text x="{left + cw * j + cw / 2}" y="{top - 8}" font-size="10" '
        f'text-anchor="middle">{escape(c)}</text>'
        for j, c in enumerate(col_labels)
    ]
    for i, (label, row) in enumerate(zip(row_labels, cells, strict=True)):
        y = top + ch * i
        parts.append(
            f'<text x="{left - 6}" y="{y + 14}" font-size="10" text-anchor="end">'
            f"{escape(label)}</text>"
        )
        for j, v in enumerate(row):
            if v is None:
                continue
            alpha, fg = cell_colours(v)
            parts.append(
                f'<rect x="{left + cw * j}" y="{y}" width="{cw - 1}" height="{ch - 1}" '
                f'fill="rgba(37,99,235,{alpha:.2f})"/>'
                f'<text x="{left + cw * j + cw / 2}" y="{y + 14}" font-size="9" '
                f'text-anchor="middle" fill="{fg}">{v:.1f}</text>'
            )
    for i, j in marked:
        parts.append(
            f'<rect x="{left + cw * j + 0.5}" y="{top + ch * i + 0.5}" width="{cw - 2}" '
            f'height="{ch - 2}" fill="none" stroke="#111" stroke-dasharray="3 2"/>'
        )
    if note:
        y = top + ch * len(row_labels) + 22
        parts.append(
            f'<rect x="{left}" y="{y - 11}" width="{cw - 2}" height="{ch - 6}" fill="none" '
            'stroke="#111" stroke-dasharray="3 2"/>'
            f'<text x="{left + cw + 4}" y="{y}" font-size="11" fill="#374151">'
            f"{escape(note)}</text>"
        )
        width = max(width, left + cw + 10 + math.ceil(text_width(note, 11)))
    desc = (
        f"Heat map: one row per {y_label}, one column per {x_label}; each cell is a %, "
        "darker for higher, blank when not observed yet."
        + (f" Dashed outline: {note}." if note else "")
    )
    return _svg(parts, height, width, title=title or "heat map", desc=desc)


HEAT_RGB = (37, 99, 235)  # the heat map's blue, laid over white at the cell's opacity
TEXT_COLOURS = {"#fff": (255, 255, 255), "#111": (17, 17, 17)}
MIN_CONTRAST = 4.5  # WCAG AA for normal text


def cell_colours(value: float) -> tuple[float, str]:
    """A heat-map cell's opacity (two decimals) and its text colour, the one of white
    and near-black that contrasts most with the cell, at least 4.5:1 (WCAG AA).

    The opacity grows with ``value`` (0.08 at 0 %, 1 at 100 % and above); around 85-91 %
    neither text colour reaches 4.5:1, so the cell is darkened (0.01 at a time) until
    white text does."""
    alpha = round(0.08 + 0.92 * min(max(value, 0.0), 100.0) / 100.0, 2)
    while True:
        fill = _luminance(tuple(255 * (1 - alpha) + c * alpha for c in HEAT_RGB))
        ratios = {fg: _contrast(fill, _luminance(rgb)) for fg, rgb in TEXT_COLOURS.items()}
        fg = max(ratios, key=lambda k: ratios[k])
        if ratios[fg] >= MIN_CONTRAST or alpha >= 1.0:
            return alpha, fg
        alpha = round(alpha + 0.01, 2)


def _luminance(rgb: Sequence[float]) -> float:
    """WCAG relative luminance of an sRGB colour (0-255 channels)."""
    r, g, b = (
        c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in (x / 255 for x in rgb)
    )
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _contrast(first: float, second: float) -> float:
    """WCAG contrast ratio of two relative luminances."""
    return (max(first, second) + 0.05) / (min(first, second) + 0.05)


def ticks(
    low: float, high: float, *, count: int = 4, min_step: float | None = None
) -> tuple[list[float], list[str]]:
    """Round values for an axis covering ``low`` to ``high`` in about ``count`` steps, and
    their labels: the step is 1, 2 or 5 times a power of ten (at least ``min_step``), the
    first value the largest multiple of it at or below ``low``, the last the smallest at
    or above ``high``; labels carry the step's decimals and thousands separators.

    >>> ticks(0, 129.98)
    ([0.0, 50.0, 100.0, 150.0], ['0', '50', '100', '150'])
    """
    if not high > low:
        high = low + 1.0
    raw = (high - low) / count
    power = math.floor(math.log10(raw))
    digits = 1 if raw / 10**power < 1.5 else 2 if raw / 10**power < 3 else 5
    if raw / 10**power >= 7:
        digits, power = 1, power + 1
    if min_step is not None and digits * 10.0**power < min_step:
        power = math.floor(math.log10(min_step) + 1e-9)
        digits = 1
    step = digits * 10.0**power
    decimals = max(0, -power)
    first = math.floor(low / step + 1e-9)
    last = math.ceil(high / step - 1e-9)
    values = [round(k * step, decimals) + 0.0 for k in range(first, last + 1)]  # + 0.0: no -0
    return values, [f"{v:,.{decimals}f}" for v in values]


def _frame(y_label: str, values: Sequence[float], labels: Sequence[str], left: int) -> str:
    """Grid lines and labels at ``values`` (the first at the bottom, the last at the top),
    and the axis title left of the labels."""
    ph = H - PAD_T - PAD_B
    span = (values[-1] - values[0]) or 1.0
    lines = []
    for v, text in zip(values, labels, strict=True):
        y = PAD_T + ph * (1 - (v - values[0]) / span)
        lines.append(
            f'<line x1="{left}" x2="{W - PAD_R}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e7eb"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="10" text-anchor="end">'
            f"{escape(text)}</text>"
        )
    lines.append(
        f'<text x="12" y="{PAD_T + ph / 2}" font-size="11" transform="rotate(-90 12 '
        f'{PAD_T + ph / 2})" text-anchor="middle">{escape(y_label)}</text>'
    )
    return "".join(lines)


def _svg(parts: Sequence[str], height: int = H, width: int = W, *, title: str, desc: str) -> str:
    """One image to assistive technology (``role="img"``), named by its ``<title>`` and
    described by its ``<desc>`` (the texts drawn inside are not read one by one), in a
    ``chart`` box: it shrinks with the page down to ``MIN_WIDTH``, then scrolls sideways
    in its box rather than widening the page."""
    return (
        f'<div class="chart{" wide" if width >= MIN_WIDTH else ""}">'
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" '
        f'style="max-width:{width}px;min-width:{min(width, MIN_WIDTH)}px" role="img">'
        f"<title>{escape(title)}</title><desc>{escape(desc)}</desc>"
        + "".join(parts)
        + "</svg></div>"
    )


# A chart shrinks with a narrow page down to this width (three quarters of a 720-wide
# chart: its 10 px labels still read at 7.5 px); below it, it scrolls sideways in its box.
MIN_WIDTH = 540


def no_data(reason: str) -> str:
    """What stands in place of a chart that would be empty, and why."""
    return f"<p class='nodata'><b>No data to chart:</b> {escape(reason)}.</p>"
