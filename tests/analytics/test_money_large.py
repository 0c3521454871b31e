"""Money of any size is rounded to cents: past 10^26 the 28-digit default context
raised decimal.InvalidOperation, a traceback for `metrics program-kpis --point-value
1e30` and for an MRR of 10^26."""

from __future__ import annotations

from decimal import Decimal

from fidelite.analytics.metrics.result import money


def test_money_rounds_amounts_past_28_digits() -> None:
    assert money(Decimal("1e30")) == 1e30
    assert money(1e26) == 1e26
    assert money(Decimal("123456789012345678901234567890.125")) == float(
        Decimal("123456789012345678901234567890.13")
    )
    assert money(152.625) == 152.63
