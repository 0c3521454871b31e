"""A customer id written as a float (pandas writes float64 whenever an id is missing) or
as a decimal names the customer of its whole number, as the program imports read ids:
``1001.0`` is customer ``1001``, the one a survey answers or segments file names
``1001`` — it was ``'1001.0'``, matching nothing there. A fraction, NaN or a float past
its column's precision (float64 from 2^53, float32 from 2^24, float16 from 2^11) names
no id: one error naming the file, row and column, in the imports' words. A missing id
stays what it was: "missing customer"."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from fidelite.analytics.answers import load_answers
from fidelite.analytics.errors import InputError
from fidelite.analytics.io import EXACT_WHOLE, LoadOptions, load_transactions
from fidelite.analytics.subscriptions import load_subscriptions
from fidelite.analytics.support import load_support_cases
from fidelite.cli.main import _register, app
from fidelite.processing.cells import EXACT_FLOAT, Float16, Float32

_register()

START = datetime(2024, 1, 5, 10)
NOT_WHOLE = (
    "is not a whole number, so it names no id (an id column holds text or whole numbers: "
    "1001, or 1001.0 as a decimal column holds it)"
)


def _too_large(value: str, kind: str, exact: int) -> str:
    return (
        f"{value} is too large for the precision of a {kind} column to hold an id exactly "
        f"(from {exact} on, not every whole number is such a float): the id may have been "
        "rounded; export the column as whole numbers (int64) or text"
    )


def _ids(values: list[Any], kind: pa.DataType) -> pa.Array:
    if kind == pa.float16():
        return pa.array(np.array(values, dtype=np.float16))
    return pa.array(values, kind)


def _transactions(path: Path, ids: pa.Array) -> Path:
    n = len(ids)
    pq.write_table(
        pa.table(
            {
                "customer_id": ids,
                "timestamp": [START + timedelta(days=i) for i in range(n)],
                "amount": [10.0 + i for i in range(n)],
            }
        ),
        path,
    )
    return path


def test_the_imports_float_precision_rule_is_the_loaders() -> None:
    assert {
        "float16": Float16.exact,
        "float32": Float32.exact,
        "float64": EXACT_FLOAT,
    } == EXACT_WHOLE


@pytest.mark.parametrize("materialize", [True, False])
@pytest.mark.parametrize(
    "ids",
    [
        pa.array([1001.0, 1002.0, 1001.0, -0.0, 9007199254740991.0]),
        pa.array([1001.0, 1002.0, 1001.0, -0.0, 16777215.0], pa.float32()),
        pa.array(
            [
                Decimal("1001.00"),
                Decimal("1002.00"),
                Decimal("1001"),
                Decimal("0.00"),
                Decimal("9007199254740991.00"),
            ],
            pa.decimal128(20, 2),
        ),
    ],
    ids=["float64", "float32", "decimal"],
)
def test_whole_numbers_name_the_customer_of_their_integer(
    tmp_path: Path, ids: pa.Array, materialize: bool
) -> None:
    path = _transactions(tmp_path / "tx.parquet", ids)
    loaded = load_transactions(path, LoadOptions(materialize=materialize))
    rows = loaded.connection.execute("SELECT customer_id FROM transactions ORDER BY ts").fetchall()
    last = "16777215" if ids.type == pa.float32() else "9007199254740991"
    assert [r[0] for r in rows] == ["1001", "1002", "1001", "0", last]


def test_a_float16_column_reads_its_whole_numbers(tmp_path: Path) -> None:
    path = _transactions(tmp_path / "tx.parquet", _ids([1001.0, 2047.0, 5.0], pa.float16()))
    loaded = load_transactions(path)
    rows = loaded.connection.execute("SELECT customer_id FROM transactions ORDER BY ts").fetchall()
    assert [r[0] for r in rows] == ["1001", "2047", "5"]


@pytest.mark.parametrize(
    ("values", "kind", "reason"),
    [
        ([1001.0, 1001.5, 1002.0], pa.float64(), f"1001.5 {NOT_WHOLE}"),
        ([1001.0, float("nan"), 1002.0], pa.float64(), f"nan {NOT_WHOLE}"),
        ([1001.0, float("inf"), 1002.0], pa.float64(), f"inf {NOT_WHOLE}"),
        (
            [1001.0, 2.0**53, 1002.0],
            pa.float64(),
            _too_large("9007199254740992.0", "float64", 2**53),
        ),
        (
            [1001.0, -(2.0**53), 1002.0],
            pa.float64(),
            _too_large("-9007199254740992.0", "float64", 2**53),
        ),
        ([1001.0, 2.0**24, 1002.0], pa.float32(), _too_large("16777216.0", "float32", 2**24)),
        ([1001.0, 0.5, 1002.0], pa.float32(), f"0.5 {NOT_WHOLE}"),
        ([1001.0, 2048.0, 5.0], pa.float16(), _too_large("2048.0", "float16", 2**11)),
        (
            [Decimal("1001"), Decimal("1001.50"), Decimal("7")],
            pa.decimal128(10, 2),
            f"1001.50 {NOT_WHOLE}",
        ),
    ],
    ids=[
        "fraction",
        "nan",
        "infinity",
        "2^53",
        "-2^53",
        "float32-2^24",
        "float32-fraction",
        "float16-2^11",
        "decimal-fraction",
    ],
)
def test_a_float_that_names_no_id_is_refused_naming_its_row(
    tmp_path: Path, values: list[Any], kind: pa.DataType, reason: str
) -> None:
    path = _transactions(tmp_path / "tx.parquet", _ids(values, kind))
    with pytest.raises(InputError) as refused:
        load_transactions(path)
    assert str(refused.value) == f"{path}, row 2, column 'customer_id': {reason}"
    assert (refused.value.file, refused.value.row, refused.value.column) == (
        str(path),
        2,
        "customer_id",
    )


def test_a_missing_float_id_is_still_a_missing_customer(tmp_path: Path) -> None:
    path = _transactions(tmp_path / "tx.parquet", pa.array([1001.0, None, 1002.0]))
    with pytest.raises(InputError) as refused:
        load_transactions(path)
    assert str(refused.value) == (
        f"{path}, row 2, column 'customer_id': missing customer: empty value"
    )


def test_an_arrow_table_float_id_is_read_the_same() -> None:
    table = pa.table(
        {
            "customer_id": pa.array([1001.0, 1002.0]),
            "timestamp": [START, START + timedelta(days=1)],
            "amount": [1.0, 2.0],
        }
    )
    loaded = load_transactions(table)
    rows = loaded.connection.execute("SELECT customer_id FROM transactions ORDER BY ts").fetchall()
    assert rows == [("1001",), ("1002",)]


def _answers(path: Path, ids: pa.Array) -> Path:
    n = len(ids)
    pq.write_table(
        pa.table(
            {
                "customer_id": ids,
                "timestamp": [START] * n,
                "question": ["nps"] * n,
                "score": [10 - i for i in range(n)],
            }
        ),
        path,
    )
    return path


def _subscriptions(path: Path, ids: pa.Array) -> Path:
    n = len(ids)
    pq.write_table(
        pa.table({"customer_id": ids, "mrr": [10.0] * n, "start": ["2024-01-01"] * n}), path
    )
    return path


def _support(path: Path, ids: pa.Array) -> Path:
    pq.write_table(pa.table({"customer_id": ids, "timestamp": [START] * len(ids)}), path)
    return path


def _segments(path: Path, ids: pa.Array) -> Path:
    pq.write_table(pa.table({"customer_id": ids, "segment": ["gold", "silver"][: len(ids)]}), path)
    return path


LOADERS: dict[str, tuple[Callable[[Path, pa.Array], Path], Callable[[Path], Any]]] = {
    "answers": (_answers, lambda p: load_answers(p)),
    "subscriptions": (_subscriptions, lambda p: load_subscriptions(p)),
    "support": (_support, lambda p: load_support_cases(p)),
}


@pytest.mark.parametrize("name", sorted(LOADERS))
def test_answers_subscriptions_and_support_cases_read_float_ids_as_transactions_do(
    tmp_path: Path, name: str
) -> None:
    write, load = LOADERS[name]
    loaded = load(write(tmp_path / f"{name}.parquet", pa.array([1001.0, None, 1002.0])[::2]))
    rows = loaded.connection.execute(f"SELECT customer_id FROM {loaded.table}").fetchall()
    assert sorted(r[0] for r in rows) == ["1001", "1002"]
    bad = write(tmp_path / f"bad_{name}.parquet", pa.array([1001.0, 1001.5]))
    with pytest.raises(InputError) as refused:
        load(bad)
    assert str(refused.value) == f"{bad}, row 2, column 'customer_id': 1001.5 {NOT_WHOLE}"


def _cli(*args: str) -> tuple[int, Any]:
    result = CliRunner().invoke(app, ["metrics", *args, "-f", "json"])
    return result.exit_code, json.loads(result.stdout)


def test_float_ids_of_transactions_match_survey_answers_and_segments(tmp_path: Path) -> None:
    """The walk-through's case: ids 1001.0 and 1002.0 in the transactions, 1001 and 1002
    in the answers and segments files (CSV), and the other way round (float ids in the
    answers and segments files, Parquet, beside text ids in the transactions)."""
    tx = _transactions(tmp_path / "tx.parquet", pa.array([1001.0, 1002.0]))
    answers = tmp_path / "answers.csv"
    answers.write_text(
        "customer_id,timestamp,question,score\n1001,2024-01-05,nps,10\n1002,2024-01-05,nps,2\n"
    )
    segments = tmp_path / "segments.csv"
    segments.write_text("customer_id,segment\n1001,gold\n1002,silver\n")
    code, kinds = _cli("loyalty-kinds", "--input", str(tx), "--surveys", str(answers))
    assert code == 0
    assert [(r["customer_id"], r["recommend"]) for r in kinds["rows"]] == [
        ("1001", 10.0),
        ("1002", 2.0),
    ]
    code, rates = _cli("repeat-rate", "--input", str(tx), "--segments", str(segments))
    assert code == 0
    assert [(r["segment"], r["customers"]) for r in rates["rows"]] == [("gold", 1), ("silver", 1)]

    text_tx = tmp_path / "tx.csv"
    text_tx.write_text("customer_id,timestamp,amount\n1001,2024-01-05,10\n1002,2024-01-06,5\n")
    float_answers = _answers(tmp_path / "answers.parquet", pa.array([1001.0, 1002.0]))
    float_segments = _segments(tmp_path / "segments.parquet", pa.array([1001.0, 1002.0]))
    code, kinds = _cli("loyalty-kinds", "--input", str(text_tx), "--surveys", str(float_answers))
    assert code == 0
    assert [(r["customer_id"], r["recommend"]) for r in kinds["rows"]] == [
        ("1001", 10.0),
        ("1002", 9.0),
    ]
    code, rates = _cli("repeat-rate", "--input", str(text_tx), "--segments", str(float_segments))
    assert code == 0
    assert [(r["segment"], r["customers"]) for r in rates["rows"]] == [("gold", 1), ("silver", 1)]


def test_a_segments_file_float_id_that_names_no_id_is_refused(tmp_path: Path) -> None:
    text_tx = tmp_path / "tx.csv"
    text_tx.write_text("customer_id,timestamp,amount\n1001,2024-01-05,10\n")
    segments = _segments(tmp_path / "segments.parquet", pa.array([1001.0, 2.0**53]))
    code, out = _cli("repeat-rate", "--input", str(text_tx), "--segments", str(segments))
    assert code == 1
    assert out == {
        "error": {
            "code": "bad_input",
            "message": f"{segments}, row 2, column 'customer_id': "
            + _too_large("9007199254740992.0", "float64", 2**53),
            "file": str(segments),
            "row": 2,
            "column": "customer_id",
        }
    }


@pytest.mark.slow
def test_float_ids_are_the_same_customers_on_spark(tmp_path: Path) -> None:
    """Spark reads DuckDB's normalised copy: the same ids, and the same RFM rows (a
    segments file of text ids matching the transactions' float ids)."""
    from fidelite.analytics.engine import open_dataset
    from fidelite.analytics.metrics.rfm import rfm

    ids = pa.array([1001.0, 1002.0, 1001.0, 1003.0])
    path = _transactions(tmp_path / "tx.parquet", ids)
    segments = tmp_path / "segments.csv"
    segments.write_text("customer_id,segment\n1001,gold\n1002,silver\n")
    opts = LoadOptions(segments_file=segments)
    results = {}
    for engine in ("duckdb", "spark"):
        ds = open_dataset(path, engine=engine, options=opts)  # type: ignore[arg-type]
        out = rfm(ds).to_dict()
        out["parameters"] = {k: v for k, v in out["parameters"].items() if k != "engine"}
        results[engine] = out
        segment_rows = ds.execute(
            ds.transactions.select("customer_id", "segment").distinct().order_by("customer_id")
        ).to_pylist()
        assert segment_rows == [
            {"customer_id": "1001", "segment": "gold"},
            {"customer_id": "1002", "segment": "silver"},
            {"customer_id": "1003", "segment": "(none)"},
        ]
    assert [r["customer_id"] for r in results["duckdb"]["rows"]] == ["1001", "1002", "1003"]
    assert results["duckdb"] == results["spark"]
