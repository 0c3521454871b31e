"""The report's per-segment section, with ``--segment-col`` or ``--segments``.

``report.json``'s ``segments`` holds the monthly retention and the repeat purchase rate
(over the whole file) of each segment, in the ``fidelite metrics`` shape with the rows
led by the segment (:func:`fidelite.analytics.segments.by_segment`), plus one summary row
per segment for the HTML table: customers, repeat purchase rate and the monthly
retention pooled over the months (customers retained / customers at the start, summed
over every month), so a segment's figure weighs its months by their customers. The rest
of the report is the whole file's.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from typing import Any

from fidelite.analytics.engine import Dataset
from fidelite.analytics.metrics import repeat, retention
from fidelite.analytics.metrics.result import percent
from fidelite.analytics.segments import by_segment
from fidelite.report.numbers import rate

Section = Callable[[str, str, str, str, str], str]


def compute(ds: Dataset, step: Callable[[str], None]) -> dict[str, Any] | None:
    """The per-segment figures; ``None`` when the transactions were loaded unsegmented."""
    segmentation = ds.loaded.segmentation
    if segmentation is None:
        return None

    def progress(what: str) -> Callable[[str, int, int], None]:
        return lambda value, i, n: step(f"Computing {what} for segment {value} ({i}/{n})")

    monthly = by_segment(ds, lambda s: retention.retention(s, "month"), progress("retention"))
    repeats = by_segment(ds, repeat.repeat_rate, progress("repeat purchase"))
    table = []
    for row in repeats.rows:
        months = [r for r in monthly.rows if r["segment"] == row["segment"]]
        start = sum(r["customers_start"] for r in months)
        table.append(
            {
                "segment": row["segment"],
                "customers": row["customers"],
                "repeat_purchase_rate": row["repeat_purchase_rate"],
                "customers_start": start,
                "retained": sum(r["retained"] for r in months),
                "pooled_retention_rate": percent(sum(r["retained"] for r in months), start),
            }
        )
    return {
        "segment_by": segmentation.by,
        "rule": segmentation.rule,
        "summary": table,
        "retention": monthly.to_dict(),
        "repeat_rate": repeats.to_dict(),
    }


def section(data: dict[str, Any], make: Section) -> str:
    """A table: one line per segment, its customers, repeat rate and monthly retention."""
    head = "".join(
        f'<th scope="col">{escape(h)}</th>'
        for h in ("Segment", "Customers", "Repeat purchase rate", "Monthly retention")
    )
    lines = "".join(
        f"<tr><th>{escape(r['segment'])}</th><td>{r['customers']:,}</td>"
        f"<td>{escape(rate(r['repeat_purchase_rate']))}</td>"
        f"<td>{escape(rate(r['pooled_retention_rate']))}</td></tr>"
        for r in data["summary"]
    )
    return make(
        f"Segments by {data['segment_by']}",
        "Each segment's customers, the share of them who ordered twice or more, and the "
        "share of a month's customers who bought again the next month, over all months.",
        "Compare segments: a higher repeat rate and retention mean customers of that "
        "segment come back more. Every customer is in one segment, so the customers add "
        "up to the whole file's; report.json has each segment's month-by-month retention.",
        f"<table><caption>Segments by {escape(str(data['segment_by']))}</caption>"
        f"<thead><tr>{head}</tr></thead><tbody>{lines}</tbody></table>",
        f"Segments: {data['rule']}. Repeat purchase rate = customers with 2 or more orders "
        "/ customers with at least one, over the whole file. Monthly retention = customers "
        "who bought in a month and the month before / customers who bought the month "
        "before, summed over every month of the data (refunds excluded).",
    )
