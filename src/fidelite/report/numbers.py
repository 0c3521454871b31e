"""How the report's HTML writes numbers for a reader (``report.json`` keeps full precision).

Rates (percentages 0-100) get one decimal and a ``%`` sign, money two decimals, counts
thousands separators; a value the data do not define (``None``) is written ``n/a``.
"""

from __future__ import annotations

from typing import Any

from fidelite.analytics.metrics.result import money as cents

MISSING = "n/a"


def rate(value: Any) -> str:
    """A percentage with one decimal: ``69.3333`` -> ``69.3 %``."""
    return MISSING if value is None else f"{float(value):,.1f} %"


def number(value: Any, digits: int = 1) -> str:
    """A plain number with ``digits`` decimals and thousands separators."""
    return MISSING if value is None else f"{float(value):,.{digits}f}"


def money(value: Any) -> str:
    """An amount with two decimals and thousands separators, rounded half away from
    zero as the metrics round money (152.625 -> 152.63)."""
    return number(cents(value), 2)
