"""A single-precision (float32) amount or quantity column is read as it was written.

12.34 written into a Parquet or Arrow float32 column is the binary value
12.340000152587890625; cast to a double as it is, it was summed as 12.34000015258789,
and 100,000 such purchases made 1,234,000.02 of revenue instead of 1,234,000.00. The
loader now reads each float32 as the double nearest the shortest decimal that reads back
as it (12.34, as numpy writes it and the import reads it), so a float32 column gives the
same figures as the double column of the same amounts.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fidelite.analytics.errors import InputError
from fidelite.analytics.io import LoadOptions, load_transactions

START = datetime(2024, 1, 1, 10)


def _table(amounts: list[Any], kind: pa.DataType, quantities: list[Any] | None = None) -> pa.Table:
    """One row per amount for customers a, b, a, b..., a day apart."""
    n = len(amounts)
    columns: dict[str, Any] = {
        "customer_id": [("a", "b")[i % 2] for i in range(n)],
        "timestamp": [START + timedelta(days=i) for i in range(n)],
        "amount": pa.array(amounts, kind),
    }
    if quantities is not None:
        columns["quantity"] = pa.array(quantities, kind)
    return pa.table(columns)


def _loaded(source: Path | pa.Table, materialize: bool = True) -> list[tuple[Any, ...]]:
    loaded = load_transactions(source, LoadOptions(materialize=materialize))
    return loaded.connection.execute(
        "SELECT customer_id, amount, quantity, is_refund FROM transactions ORDER BY ts"
    ).fetchall()


# Amounts of up to 9 significant digits, those a float32 tells apart; 343126.12 is one
# DuckDB writes as text with a digit too many (343126.125).
AMOUNTS = [12.34, 0.1, -5.25, 1999.95, 343126.12, 0.0, 1e-05, 16777216.0, 123456.78]


@pytest.mark.parametrize("materialize", [True, False])
def test_a_float32_parquet_column_holds_the_amounts_written(
    tmp_path: Path, materialize: bool
) -> None:
    quantities = [1.5, None, 2.0, 0.3, 1.0, 7.0, 0.25, 3.0, 0.1]
    pq.write_table(_table(AMOUNTS, pa.float32(), quantities), tmp_path / "tx.parquet")
    rows = _loaded(tmp_path / "tx.parquet", materialize)
    assert rows == [
        ("a", 12.34, 1.5, False), ("b", 0.1, None, False), ("a", -5.25, 2.0, True),
        ("b", 1999.95, 0.3, False), ("a", 343126.12, 1.0, False), ("b", 0.0, 7.0, False),
        ("a", 1e-05, 0.25, False), ("b", 16777216.0, 3.0, False),
        ("a", 123456.78, 0.1, False),
    ]  # fmt: skip
    assert [repr(r[1]) for r in rows] == [repr(float(str(np.float32(a)))) for a in AMOUNTS]


def test_an_arrow_float32_table_is_read_as_the_parquet_file_is() -> None:
    rows = _loaded(_table(AMOUNTS, pa.float32()))
    assert [r[1] for r in rows] == AMOUNTS


def test_each_float32_value_is_its_shortest_decimal(tmp_path: Path) -> None:
    """Random bit patterns of every magnitude, and cents up to 10^6: the same doubles
    as numpy's shortest decimal of each float32 (the import's reading)."""
    rng = np.random.default_rng(2026)
    bits = rng.integers(0, 2**32, 200_000, dtype=np.uint64).astype(np.uint32).view(np.float32)
    cents = (rng.integers(0, 100_000_000, 100_000) / 100).astype(np.float32)
    values = np.concatenate([bits[np.isfinite(bits)], cents])
    table = pa.table({"customer_id": ["a"] * len(values), "timestamp": [START] * len(values),
                      "amount": pa.array(values, pa.float32())})  # fmt: skip
    pq.write_table(table, tmp_path / "tx.parquet")
    loaded = load_transactions(tmp_path / "tx.parquet")
    got = loaded.connection.execute("SELECT amount FROM transactions").fetchnumpy()["amount"]
    want = np.array([float(str(v)) for v in values])
    assert len(got) == len(want)
    assert (got == want).all()


def test_a_float64_column_is_read_as_before(tmp_path: Path) -> None:
    pq.write_table(_table([12.34000015258789, 12.34], pa.float64()), tmp_path / "tx.parquet")
    assert [r[1] for r in _loaded(tmp_path / "tx.parquet")] == [12.34000015258789, 12.34]


def test_nan_in_a_float32_column_is_still_refused(tmp_path: Path) -> None:
    pq.write_table(_table([12.34, float("nan")], pa.float32()), tmp_path / "tx.parquet")
    with pytest.raises(InputError) as err:
        load_transactions(tmp_path / "tx.parquet")
    assert (err.value.row, err.value.column) == (2, "amount")


def test_metrics_of_a_float32_file_equal_those_of_the_double_file(
    tmp_path: Path, metrics_json: Callable[..., dict[str, Any]]
) -> None:
    """100,000 purchases of 12.34 by one customer: 1,234,000.00, as in a double column
    (as float32 noise, 1,234,000.0153 shown 1,234,000.02)."""
    n = 100_000
    for kind, name in ((pa.float32(), "f32"), (pa.float64(), "f64")):
        table = pa.table({"customer_id": ["a"] * n,
                          "timestamp": [START + timedelta(minutes=i) for i in range(n)],
                          "amount": pa.array([12.34] * n, kind)})  # fmt: skip
        pq.write_table(table, tmp_path / f"{name}.parquet")
    for name in ("f32", "f64"):
        pareto = metrics_json("pareto", "-i", str(tmp_path / f"{name}.parquet"))
        assert pareto["summary"]["revenue"] == 1_234_000.0
        assert pareto["rows"][0]["revenue"] == 1_234_000.0
    three = pa.table({"customer_id": ["a"] * 3,
                      "timestamp": [START + timedelta(days=i) for i in range(3)],
                      "amount": pa.array([12.34] * 3, pa.float32())})  # fmt: skip
    pq.write_table(three, tmp_path / "three.parquet")
    rfm = metrics_json("rfm", "-i", str(tmp_path / "three.parquet"))
    assert [(r["customer_id"], r["monetary"]) for r in rfm["rows"]] == [("a", 37.02)]
    loaded = load_transactions(tmp_path / "three.parquet")
    total = loaded.connection.execute("SELECT sum(amount) FROM transactions").fetchone()
    assert total == (12.34 + 12.34 + 12.34,)  # the doubles' sum, no float32 noise
