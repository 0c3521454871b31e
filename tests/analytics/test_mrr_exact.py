"""MRR movements are classified on exact sums, DuckDB and Spark alike.

As doubles 19.99 + 9.99 is 29.979999999999997: a customer whose two subscriptions
(19.99 and 9.99) became one of 29.98 showed, in a month where nothing moved, an
expansion of 3.5e-15, ``negative_churn: true`` and a net MRR churn rate of -0.0.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fidelite.analytics.engine import EngineName
from fidelite.analytics.metrics.mrr import Subscriptions, mrr
from fidelite.analytics.subscriptions import load_subscriptions

ENGINES: list[Any] = ["duckdb", pytest.param("spark", marks=pytest.mark.slow)]
SUBS = """
customer_id,mrr,start,end
a,19.99,2024-01-01,2024-02-01
a,9.99,2024-01-01,2024-02-01
a,29.98,2024-02-01,
b,10,2024-01-01,2024-03-01
"""


@pytest.mark.parametrize("engine", ENGINES)
def test_unchanged_mrr_split_differently_is_no_movement(
    write_csv: Callable[..., Path], engine: EngineName
) -> None:
    rows = mrr(Subscriptions(load_subscriptions(write_csv(SUBS, "s.csv")), engine)).rows
    moves = ("expansion_mrr", "contraction_mrr", "churned_mrr", "new_mrr", "reactivation_mrr")
    february = rows[1]
    assert february["period"] == "2024-02"
    assert {k: february[k] for k in moves} == dict.fromkeys(moves, 0.0)
    assert (february["starting_mrr"], february["ending_mrr"]) == (39.98, 39.98)
    assert february["negative_churn"] is False
    assert (february["gross_mrr_churn_rate"], february["net_revenue_retention"]) == (0.0, 100.0)
    net = february["net_mrr_churn_rate"]
    assert net == 0.0 and math.copysign(1.0, net) == 1.0  # not -0.0
    # March: b's 10 churns, 10 / 39.98 x 100 = 25.0125
    march = rows[2]
    assert (march["churned_mrr"], march["net_mrr_churn_rate"], march["negative_churn"]) == (
        10.0,
        25.0125,
        False,
    )
