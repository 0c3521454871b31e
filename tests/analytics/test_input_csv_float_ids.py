"""A CSV customer id column written as pandas writes a float64 column (every id a whole
number with a decimal point: ``1001.0``, because some cell of the column was empty) is
read as the integers' text, as a float Parquet column is: the same customers match
whatever mix of CSV and Parquet files pandas wrote. Any column holding another value
(``007``, ``A12``, ``10.1``, ``1e3``, or ``1001`` beside ``1001.0``) is text, as written.
A whole decimal at or past 2^53 is refused as in a float64 Parquet column."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from fidelite.analytics.answers import load_answers
from fidelite.analytics.errors import InputError
from fidelite.analytics.io import LoadOptions, load_transactions
from fidelite.analytics.subscriptions import load_subscriptions
from fidelite.analytics.support import load_support_cases
from fidelite.cli.main import _register, app

_register()

START = datetime(2024, 1, 5, 10)
TOO_LARGE = (
    "9007199254740992.0 is too large for the precision of a float64 column to hold an id "
    "exactly (from 9007199254740992 on, not every whole number is such a float): the id "
    "may have been rounded; export the column as whole numbers (int64) or text"
)


def _cli(*args: str) -> tuple[int, Any]:
    result = CliRunner().invoke(app, ["metrics", *args, "-f", "json"])
    return result.exit_code, json.loads(result.stdout)


def _pandas_transactions(path: Path) -> Path:
    """The review's file: pandas writes the float64 id column as 1001.0."""
    pd = pytest.importorskip("pandas")
    pd.DataFrame(
        {
            "customer_id": [1001.0, 1001.0, 1002.0],
            "order_id": ["o1", "o2", "o3"],
            "timestamp": ["2024-01-05 10:00:00", "2024-02-05 10:00:00", "2024-01-07 10:00:00"],
            "amount": [5.0, 7.0, 3.0],
        }
    ).to_csv(path, index=False)
    assert path.read_text().splitlines()[1].startswith("1001.0,")
    return path


def _float_segments(path: Path) -> Path:
    pq.write_table(pa.table({"customer_id": [1001.0, 1002.0], "segment": ["gold", "silver"]}), path)
    return path


def _rates(rates: dict[str, Any]) -> list[tuple[str, int, int]]:
    return [(r["segment"], r["customers"], r["repeat_customers"]) for r in rates["rows"]]


def test_pandas_csv_transactions_match_a_float_parquet_segments_file(tmp_path: Path) -> None:
    tx = _pandas_transactions(tmp_path / "tx.csv")
    segments = _float_segments(tmp_path / "segments.parquet")
    code, rates = _cli("repeat-rate", "--input", str(tx), "--segments", str(segments))
    assert code == 0
    assert _rates(rates) == [("gold", 1, 1), ("silver", 1, 0)]


def test_a_pandas_csv_segments_file_matches_float_parquet_transactions(tmp_path: Path) -> None:
    tx = tmp_path / "tx.parquet"
    pq.write_table(
        pa.table(
            {
                "customer_id": [1001.0, 1001.0, 1002.0],
                "timestamp": [START, START + timedelta(days=31), START + timedelta(days=2)],
                "amount": [5.0, 7.0, 3.0],
            }
        ),
        tx,
    )
    segments = tmp_path / "segments.csv"
    segments.write_text("customer_id,segment\n1001.0,gold\n1002.0,silver\n")
    code, rates = _cli("repeat-rate", "--input", str(tx), "--segments", str(segments))
    assert code == 0
    assert _rates(rates) == [("gold", 1, 1), ("silver", 1, 0)]
    # and the CSV whole decimals match text ids too
    text_tx = tmp_path / "tx_text.csv"
    text_tx.write_text(
        "customer_id,timestamp,amount\n1001,2024-01-05,5\n1001,2024-02-05,7\n1002,2024-01-07,3\n"
    )
    code, rates = _cli("repeat-rate", "--input", str(text_tx), "--segments", str(segments))
    assert code == 0
    assert _rates(rates) == [("gold", 1, 1), ("silver", 1, 0)]


def test_csv_survey_answers_match_parquet_transactions_and_back(tmp_path: Path) -> None:
    float_tx = tmp_path / "tx.parquet"
    pq.write_table(
        pa.table(
            {
                "customer_id": [1001.0, 1002.0],
                "timestamp": [START, START + timedelta(days=1)],
                "amount": [10.0, 11.0],
            }
        ),
        float_tx,
    )
    answers = tmp_path / "answers.csv"
    answers.write_text(
        "customer_id,timestamp,question,score\n1001.0,2024-01-05,nps,10\n1002.0,2024-01-05,nps,2\n"
    )
    code, kinds = _cli("loyalty-kinds", "--input", str(float_tx), "--surveys", str(answers))
    assert code == 0
    assert [(r["customer_id"], r["recommend"]) for r in kinds["rows"]] == [
        ("1001", 10.0),
        ("1002", 2.0),
    ]
    csv_tx = _pandas_transactions(tmp_path / "tx.csv")
    float_answers = tmp_path / "answers.parquet"
    pq.write_table(
        pa.table(
            {
                "customer_id": [1001.0, 1002.0],
                "timestamp": [START, START],
                "question": ["nps", "nps"],
                "score": [9, 3],
            }
        ),
        float_answers,
    )
    code, kinds = _cli("loyalty-kinds", "--input", str(csv_tx), "--surveys", str(float_answers))
    assert code == 0
    assert [(r["customer_id"], r["recommend"]) for r in kinds["rows"]] == [
        ("1001", 9.0),
        ("1002", 3.0),
    ]


def _tx_csv(path: Path, ids: list[str]) -> Path:
    lines = [f"{i},2024-01-{5 + n:02d},{10 + n}" for n, i in enumerate(ids)]
    path.write_text("customer_id,timestamp,amount\n" + "\n".join(lines) + "\n")
    return path


def _answers_csv(path: Path, ids: list[str]) -> Path:
    lines = [f"{i},2024-01-05,nps,{10 - n}" for n, i in enumerate(ids)]
    path.write_text("customer_id,timestamp,question,score\n" + "\n".join(lines) + "\n")
    return path


def _subscriptions_csv(path: Path, ids: list[str]) -> Path:
    path.write_text("customer_id,mrr,start\n" + "".join(f"{i},10,2024-01-01\n" for i in ids))
    return path


def _support_csv(path: Path, ids: list[str]) -> Path:
    path.write_text("customer_id,timestamp\n" + "".join(f"{i},2024-01-05\n" for i in ids))
    return path


def _ids_of(kind: str, path: Path) -> list[str]:
    if kind == "transactions":
        con = load_transactions(path).connection
        return [r[0] for r in con.execute("SELECT customer_id FROM transactions").fetchall()]
    loaders: dict[str, Callable[[Path], Any]] = {
        "answers": load_answers,
        "subscriptions": load_subscriptions,
        "support": load_support_cases,
    }
    load = loaders[kind]
    loaded = load(path)
    return [r[0] for r in loaded.connection.execute(f"SELECT customer_id FROM {loaded.table}")
            .fetchall()]  # fmt: skip


WRITERS = {
    "transactions": _tx_csv,
    "answers": _answers_csv,
    "subscriptions": _subscriptions_csv,
    "support": _support_csv,
}


@pytest.mark.parametrize("kind", sorted(WRITERS))
def test_whole_decimals_of_a_csv_are_the_integers(tmp_path: Path, kind: str) -> None:
    path = WRITERS[kind](
        tmp_path / f"{kind}.csv",
        ["1001.0", " 1002.00 ", "-0.0", "-5.0", "007.0", "9007199254740991.0"],
    )
    assert sorted(_ids_of(kind, path)) == sorted(
        ["1001", "1002", "0", "-5", "7", "9007199254740991"]
    )


@pytest.mark.parametrize("kind", sorted(WRITERS))
@pytest.mark.parametrize("other", ["007", "A12", "10.1", "1e3", "1001", "1001.", ".0", "1,0"])
def test_a_csv_column_with_one_other_value_is_text_as_written(
    tmp_path: Path, kind: str, other: str
) -> None:
    written = ["1001.0", f'"{other}"' if "," in other else other, "-0.0"]
    path = WRITERS[kind](tmp_path / f"{kind}.csv", written)
    assert sorted(_ids_of(kind, path)) == sorted(["1001.0", other, "-0.0"])


@pytest.mark.parametrize("kind", sorted(WRITERS))
def test_a_csv_whole_decimal_past_float64_precision_is_refused(tmp_path: Path, kind: str) -> None:
    path = WRITERS[kind](tmp_path / f"{kind}.csv", ["1001.0", "9007199254740992.0"])
    with pytest.raises(InputError) as refused:
        _ids_of(kind, path)
    assert str(refused.value) == f"{path}, line 3, column 'customer_id': {TOO_LARGE}"
    # the same digits without the decimal point are text, read as written
    text = WRITERS[kind](tmp_path / f"text_{kind}.csv", ["1001", "9007199254740993"])
    assert sorted(_ids_of(kind, text)) == ["1001", "9007199254740993"]


def test_a_csv_segments_file_whole_decimal_past_precision_is_refused(tmp_path: Path) -> None:
    tx = _tx_csv(tmp_path / "tx.csv", ["1001"])
    segments = tmp_path / "segments.csv"
    segments.write_text("customer_id,segment\n1001.0,gold\n9007199254740992.0,silver\n")
    code, out = _cli("repeat-rate", "--input", str(tx), "--segments", str(segments))
    assert code == 1
    assert out["error"]["message"] == f"{segments}, line 3, column 'customer_id': {TOO_LARGE}"


@pytest.mark.slow
def test_csv_float_ids_are_the_same_customers_on_spark(tmp_path: Path) -> None:
    """Spark reads DuckDB's normalised copy: pandas CSV transactions (1001.0) and a
    float Parquet segments file give the same rows on both engines."""
    from fidelite.analytics.engine import open_dataset
    from fidelite.analytics.metrics.rfm import rfm

    path = _tx_csv(tmp_path / "tx.csv", ["1001.0", "1002.0", "1001.0", "1003.0"])
    segments = _float_segments(tmp_path / "segments.parquet")
    opts = LoadOptions(segments_file=segments)
    results = {}
    for engine in ("duckdb", "spark"):
        ds = open_dataset(path, engine=engine, options=opts)
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
