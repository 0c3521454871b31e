"""Orders in a file without order ids: each row is one order, even on the same day.

An analyst's file often has dates only. Two purchases by one customer on one day are
two orders (docs/metrics.md "Orders"), so that customer is a repeat customer; only the
BTYD summary groups a customer's purchases per day, by definition.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fidelite.analytics.engine import Dataset, open_dataset
from fidelite.analytics.io import LoadOptions, load_transactions
from fidelite.analytics.metrics.clv import simple_clv
from fidelite.analytics.metrics.products import multi_product
from fidelite.analytics.metrics.repeat import repeat_rate
from fidelite.analytics.metrics.rfm import rfm
from fidelite.analytics.summary import customer_summary
from fidelite.cli.main import _register, app

_register()

# a: two purchases on Jan 1 (two products); b: one; c: two on Jan 10 (one product).
SAME_DAY = """
customer_id,timestamp,amount,product_id
a,2024-01-01,10,p1
a,2024-01-01,20,p2
b,2024-01-01,30,p1
c,2024-01-10,5,p1
c,2024-01-10,15,p1
"""


@pytest.fixture
def same_day(write_csv: Callable[..., Path]) -> Path:
    return write_csv(SAME_DAY)


@pytest.fixture
def ds(same_day: Path) -> Dataset:
    return open_dataset(same_day)


def test_load_gives_each_row_its_own_order_id_without_an_order_column(same_day: Path) -> None:
    loaded = load_transactions(same_day)
    ids = loaded.connection.execute("SELECT order_id FROM transactions").fetchall()
    assert [r[0] for r in ids] == ["#row1", "#row2", "#row3", "#row4", "#row5"]


def test_repeat_rate_counts_same_day_purchases_as_two_orders(same_day: Path) -> None:
    result = CliRunner().invoke(app, ["metrics", "repeat-rate", "-i", str(same_day), "-f", "json"])
    assert result.exit_code == 0, result.output
    # a and c bought twice (same day each), b once: 2 of 3 customers repeat.
    assert json.loads(result.stdout)["rows"] == [
        {"customers": 3, "repeat_customers": 2, "repeat_purchase_rate": 66.6667}
    ]


def test_repeat_rate_per_month_counts_same_day_purchases(ds: Dataset) -> None:
    (january,) = repeat_rate(ds, "month").rows
    assert (january["period"], january["customers"], january["repeat_customers"]) == (
        "2024-01",
        3,
        2,
    )


def test_rfm_frequency_counts_same_day_purchases(ds: Dataset) -> None:
    rows = {r["customer_id"]: r for r in rfm(ds).rows}
    assert {c: (r["frequency"], r["monetary"]) for c, r in rows.items()} == {
        "a": (2, 30.0),
        "b": (1, 30.0),
        "c": (2, 20.0),
    }


def test_clv_counts_same_day_purchases_as_orders(ds: Dataset) -> None:
    (row,) = simple_clv(ds, lifespan_years=2.0).rows
    # 5 orders, 3 customers, 80 revenue, 10 observed days (Jan 1 to Jan 10).
    # AOV = 80 / 5 = 16; per year = 5 / 3 / (10 / 365.25) = 60.875; CLV = 16 x 60.875 x 2.
    assert (row["orders"], row["customers"]) == (5, 3)
    assert row["average_order_value"] == 16.0
    assert row["purchases_per_year"] == 60.875
    assert row["clv"] == 1948.0


def test_multi_product_counts_same_day_repeat_buyers(ds: Dataset) -> None:
    (row,) = multi_product(ds).rows
    # Repeat customers: a and c; a bought two products, c one.
    assert row == {
        "customers": 3,
        "repeat_customers": 2,
        "multi_product_customers": 1,
        "multi_product_rate": 50.0,
    }


def test_btyd_summary_still_groups_a_day_into_one_period(ds: Dataset) -> None:
    summary = {r["customer_id"]: r for r in customer_summary(ds).to_pylist()}
    # One purchase day each: no repeat period, whatever the number of orders.
    assert {c: (r["frequency"], r["monetary_value"]) for c, r in summary.items()} == {
        "a": (0, 0.0),
        "b": (0, 0.0),
        "c": (0, 0.0),
    }


def test_rows_sharing_an_order_id_are_one_order_and_empty_ids_each_one(
    write_csv: Callable[..., Path],
) -> None:
    path = write_csv(
        """
        customer_id,timestamp,amount,order_id
        a,2024-01-01,10,o1
        a,2024-01-01,5, o1
        b,2024-01-01,7,
        b,2024-01-01,8,
        """
    )
    rows = rfm(open_dataset(path)).rows
    # a: two lines of order o1 (the id trimmed) = one order; b: two rows without an id.
    assert {r["customer_id"]: r["frequency"] for r in rows} == {"a": 1, "b": 2}


@pytest.mark.parametrize("materialize", [True, False])
def test_missing_order_ids_are_the_row_positions_in_a_table_and_in_a_view(
    write_csv: Callable[..., Path], materialize: bool
) -> None:
    """A view (one query, e.g. the customer summary) computes the ids on demand; they
    must be the ones a loaded table stores: the file's own id, else the row position."""
    path = write_csv(
        """
        customer_id,timestamp,amount,order_id
        a,2024-01-01,10,o1
        a,2024-01-01,5,
        b,2024-01-02,7, o9
        b,2024-01-03,8,
        """
    )
    loaded = load_transactions(path, LoadOptions(materialize=materialize))
    ids = loaded.connection.execute("SELECT order_id FROM transactions").fetchall()
    assert [r[0] for r in ids] == ["o1", "#row2", "o9", "#row4"]


@pytest.mark.parametrize("materialize", [True, False])
def test_complete_order_ids_are_kept_as_they_are(
    write_csv: Callable[..., Path], materialize: bool
) -> None:
    path = write_csv(
        """
        customer_id,timestamp,amount,order_id
        a,2024-01-01,10,o1
        b,2024-01-02,7,o2
        """
    )
    loaded = load_transactions(path, LoadOptions(materialize=materialize))
    ids = loaded.connection.execute("SELECT order_id FROM transactions").fetchall()
    assert [r[0] for r in ids] == ["o1", "o2"]
