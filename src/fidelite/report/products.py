"""The report's product section: multi-product buyers and products bought together.

Computed only when the transactions have a product column (``product_id``, or the
column named with ``--product-col``), by the metric functions of
:mod:`fidelite.analytics.metrics.products` with their defaults (pairs in at least 1 % of
baskets, top 50), so the numbers are those of ``fidelite metrics multi-product`` and
``fidelite metrics basket``. The HTML shows the first ``SHOWN_PAIRS`` pairs;
``report.json`` keeps all of them.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from typing import Any

from fidelite.analytics.engine import Dataset
from fidelite.analytics.metrics import products
from fidelite.analytics.metrics.result import MetricResult
from fidelite.report.numbers import number, rate

SHOWN_PAIRS = 10
Section = Callable[[str, str, str, str, str], str]


def has_products(ds: Dataset) -> bool:
    """Whether the input names a product for each line (the section needs it)."""
    return "product_id" in ds.loaded.present


def jobs(ds: Dataset) -> dict[str, Callable[[], MetricResult]]:
    """The product metrics to compute, keyed as in ``report.json``'s ``metrics``."""
    if not has_products(ds):
        return {}
    return {
        "multi_product": lambda: products.multi_product(ds),
        "basket_affinity": lambda: products.basket_affinity(ds),
    }


def section(metrics: dict[str, Any], make: Section) -> str:
    """Multi-product buyers in words, and a table of the pairs bought together most."""
    multi = metrics["multi_product"]["rows"][0]
    basket = metrics["basket_affinity"]
    pairs = basket["rows"][:SHOWN_PAIRS]
    what = (
        f"{rate(multi['multi_product_rate'])} of repeat customers "
        f"({multi['multi_product_customers']:,} of {multi['repeat_customers']:,}) bought more "
        f"than one product. Below: the pairs of products most often in the same basket, out "
        f"of {basket['parameters']['baskets']:,} baskets."
    )
    if pairs:
        body = _pairs_table(pairs)
    else:
        body = (
            "<p>No two products were bought together in at least "
            f"{basket['parameters']['min_support']:g} % of the baskets.</p>"
        )
    return make(
        "Products bought together",
        what,
        "A pair bought together in many baskets is a bundle or cross-selling idea. "
        "'Also took' reads: of the baskets with the first product, the share that also had "
        "the second. A lift above 1 means the two go together more often than chance would "
        "give; below 1, less often.",
        body,
        f"{basket['definition']} {metrics['multi_product']['definition']}",
    )


def _pairs_table(pairs: list[dict[str, Any]]) -> str:
    head = ("product A", "product B", "baskets with both", "% of all baskets",
            "A baskets that also took B", "B baskets that also took A", "lift")  # fmt: skip
    rows = "".join(
        "<tr>"
        + "".join(
            f"<td>{escape(v)}</td>"
            for v in (
                str(p["a"]),
                str(p["b"]),
                f"{p['baskets_with_both']:,}",
                rate(p["support"]),
                rate(p["confidence_a_to_b"]),
                rate(p["confidence_b_to_a"]),
                number(p["lift"], 2),
            )
        )
        + "</tr>"
        for p in pairs
    )
    header = "".join(f'<th scope="col">{escape(h)}</th>' for h in head)
    return (
        "<table><caption>Pairs of products bought together</caption>"
        f"<thead><tr>{header}</tr></thead><tbody>{rows}</tbody></table>"
    )
