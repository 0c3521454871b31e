"""Coupon lift and incremental revenue from the exact revenue, hand-computed.

Revenue was summed as doubles and lift divided the revenue already rounded to cents:
(100.01 / 3 - 50.03 / 2) x 3 = 24.965 showed as 24.96, not 24.97, and a treated 10.004
against a holdout 5 showed a lift of 100.0 %, not 100.08 %. A holdout base of 0 or
below has no meaningful lift (10 against -5 read -300 % next to +15 incremental).
DuckDB and Spark alike.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from fidelite.analytics.engine import EngineName, open_dataset
from fidelite.analytics.metrics.coupons import coupon_effectiveness, load_targeting

ENGINES: list[Any] = ["duckdb", pytest.param("spark", marks=pytest.mark.slow)]
HEADER = "customer_id,timestamp,amount,coupon_code"


def _treated(
    write_csv: Callable[..., Path], tx: list[str], groups: list[str], engine: EngineName
) -> dict[str, Any]:
    ds = open_dataset(write_csv(HEADER + "\n" + "\n".join(tx)), engine=engine)
    targeting = load_targeting(
        write_csv("customer_id,campaign,group\n" + "\n".join(groups), "groups.csv")
    )
    rows = coupon_effectiveness(ds, targeting, date(2024, 3, 1), date(2024, 3, 31)).rows
    treated = [r for r in rows if r["group"] == "treatment"]
    assert len(treated) == 1
    return treated[0]


@pytest.mark.parametrize("engine", ENGINES)
def test_incremental_revenue_is_computed_exactly(
    write_csv: Callable[..., Path], engine: EngineName
) -> None:
    tx = ["t1,2024-03-02,33.33,", "t2,2024-03-02,33.34,", "t3,2024-03-02,33.34,",
          "h1,2024-03-02,25.01,", "h2,2024-03-02,25.02,"]  # fmt: skip
    groups = ["t1,spring,treatment", "t2,spring,treatment", "t3,spring,treatment",
              "h1,spring,holdout", "h2,spring,holdout"]  # fmt: skip
    row = _treated(write_csv, tx, groups, engine)
    # 100.01 - 50.03 x 3 / 2 = 24.965 -> 24.97 (half up);
    # lift = (100.01 x 2 - 50.03 x 3) / (50.03 x 3) x 100 = 33.26670...
    assert (row["revenue"], row["incremental_revenue"], row["lift"]) == (100.01, 24.97, 33.2667)


@pytest.mark.parametrize("engine", ENGINES)
def test_lift_uses_the_unrounded_revenue(
    write_csv: Callable[..., Path], engine: EngineName
) -> None:
    row = _treated(
        write_csv,
        ["t1,2024-03-02,10.004,", "h1,2024-03-02,5,"],
        ["t1,spring,treatment", "h1,spring,holdout"],
        engine,
    )
    # (10.004 - 5) / 5 x 100 = 100.08; the revenue shown is rounded to 10.0
    assert (row["revenue"], row["lift"], row["incremental_revenue"]) == (10.0, 100.08, 5.0)


@pytest.mark.parametrize("engine", ENGINES)
def test_lift_is_null_when_the_holdout_base_is_not_positive(
    write_csv: Callable[..., Path], engine: EngineName
) -> None:
    negative = _treated(
        write_csv,
        ["t1,2024-03-02,10,", "h1,2024-03-02,-5,"],
        ["t1,spring,treatment", "h1,spring,holdout"],
        engine,
    )
    # holdout net -5: incremental 10 - (-5) = 15, lift undefined (not -300 %)
    assert (negative["lift"], negative["incremental_revenue"]) == (None, 15.0)
    zero = _treated(
        write_csv,
        ["t1,2024-03-02,10,", "h1,2024-02-02,5,"],
        ["t1,spring,treatment", "h1,spring,holdout"],
        engine,
    )
    assert (zero["lift"], zero["incremental_revenue"]) == (None, 10.0)
