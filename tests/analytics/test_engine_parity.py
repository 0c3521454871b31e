"""DuckDB and Spark (local mode) give the same results for every metric.

Slow: starting Spark takes tens of seconds on a busy 2-core machine.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from fidelite.analytics.engine import Dataset, open_dataset
from fidelite.analytics.io import LoadOptions, load_transactions
from fidelite.analytics.metrics.clv import simple_clv
from fidelite.analytics.metrics.cohorts import cohorts
from fidelite.analytics.metrics.pareto import pareto
from fidelite.analytics.metrics.products import basket_affinity, multi_product
from fidelite.analytics.metrics.repeat import repeat_rate
from fidelite.analytics.metrics.repurchase import repurchase
from fidelite.analytics.metrics.result import MetricResult
from fidelite.analytics.metrics.retention import new_vs_returning, retention
from fidelite.analytics.metrics.rfm import rfm
from fidelite.analytics.summary import calibration_holdout_summary, customer_summary

pytestmark = pytest.mark.slow

METRICS: dict[str, Callable[[Dataset], MetricResult]] = {
    "retention-week": lambda ds: retention(ds, "week"),
    "retention-quarter": lambda ds: retention(ds, "quarter"),
    "new-vs-returning": lambda ds: new_vs_returning(ds, "month"),
    "repeat-rate": lambda ds: repeat_rate(ds, "month"),
    "repurchase": lambda ds: repurchase(ds, [7, 30, 90]),
    "repurchase-product": lambda ds: repurchase(ds, [30], per_product=True),
    "cohorts-nday": lambda ds: cohorts(ds, "month", "n-day"),
    "cohorts-unbounded": lambda ds: cohorts(ds, "week", "unbounded"),
    "cohorts-bracket": lambda ds: cohorts(ds, "month", "bracket"),
    "rfm": lambda ds: rfm(ds),
    "rfm-end": lambda ds: rfm(ds, end=date(2024, 3, 1)),
    "pareto": lambda ds: pareto(ds, 20.0, None),
    "clv": lambda ds: simple_clv(ds),
    "clv-given": lambda ds: simple_clv(ds, lifespan_years=2.5),
    "multi-product": lambda ds: multi_product(ds),
    "basket": lambda ds: basket_affinity(ds, min_support=0.5, top=100),
}


@pytest.fixture(scope="module")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> tuple[Dataset, Dataset]:
    rng = random.Random(42)
    path: Path = tmp_path_factory.mktemp("parity") / "tx.csv"
    lines = ["customer_id,timestamp,amount,order_id,product_id,refund"]
    start = datetime(2023, 11, 1)
    numbered: dict[str, int] = {}  # each customer numbers their own orders o1, o2...
    customer, ts, order = "", start, ""
    for n in range(3000):
        if not n or rng.random() >= 0.2:  # else another line of the previous order
            customer = f"c{rng.randrange(300)}"
            ts = start + timedelta(minutes=rng.randrange(200 * 24 * 60))
            numbered[customer] = numbered.get(customer, 0) + 1
            order = f"o{numbered[customer]}"
        refund = rng.random() < 0.03
        amount = rng.randrange(100, 20000) / 100
        lines.append(f"{customer},{ts.isoformat()}Z,{amount},{order},p{rng.randrange(8)},{refund}")
    path.write_text("\n".join(lines) + "\n")
    loaded = load_transactions(path, LoadOptions(timezone="America/New_York"))
    return open_dataset(loaded, engine="duckdb"), open_dataset(loaded, engine="spark")


def _comparable(result: MetricResult) -> dict[str, Any]:
    out = result.to_dict()
    out["parameters"] = {k: v for k, v in out["parameters"].items() if k != "engine"}
    return out


@pytest.mark.parametrize("name", sorted(METRICS))
def test_metric_is_identical_on_duckdb_and_spark(
    name: str, datasets: tuple[Dataset, Dataset]
) -> None:
    duck, spark = datasets
    left, right = METRICS[name](duck), METRICS[name](spark)
    assert left.rows, "the generated data must produce rows"
    if name == "clv":  # the lifespan comes from monthly churn of the complete months
        assert left.rows[0]["churn_months"] > 0 and left.rows[0]["clv"] is not None
    assert _comparable(left) == _comparable(right)


def test_summary_is_identical_on_duckdb_and_spark(datasets: tuple[Dataset, Dataset]) -> None:
    duck, spark = datasets
    left = customer_summary(duck, time_unit="week").to_pylist()
    right = customer_summary(spark, time_unit="week").to_pylist()
    assert [r["customer_id"] for r in left] == [r["customer_id"] for r in right]
    for a, b in zip(left, right, strict=True):
        assert (a["frequency"], a["recency"], a["T"]) == (b["frequency"], b["recency"], b["T"])
        assert a["monetary_value"] == pytest.approx(b["monetary_value"], rel=1e-12)


def test_holdout_summary_is_identical_on_duckdb_and_spark(
    datasets: tuple[Dataset, Dataset],
) -> None:
    duck, spark = datasets
    cal = datetime(2024, 3, 1).date()
    left = calibration_holdout_summary(duck, calibration_end=cal).to_pylist()
    right = calibration_holdout_summary(spark, calibration_end=cal).to_pylist()
    assert len(left) == len(right) > 0
    for a, b in zip(left, right, strict=True):
        assert a.pop("customer_id") == b.pop("customer_id")
        assert a == pytest.approx(b, rel=1e-12)
