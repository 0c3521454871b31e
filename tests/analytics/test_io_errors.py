"""Bad files: one clear error naming file, row and column; nothing loaded."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from fidelite.analytics.answers import load_answers
from fidelite.analytics.errors import InputError
from fidelite.analytics.io import ColumnMapping, LoadOptions, load_transactions
from fidelite.analytics.subscriptions import load_subscriptions
from fidelite.cli.main import _register, app

_register()


def test_load_reports_missing_column(write_csv: Callable[..., Path]) -> None:
    path = write_csv("customer_id,date,amount\nA,2024-01-01,3")
    with pytest.raises(InputError) as err:
        load_transactions(path)
    assert err.value.column == "timestamp"
    assert "missing required column 'timestamp'" in str(err.value)
    assert str(path) in str(err.value)


def test_load_reports_unparsable_date_with_line(write_csv: Callable[..., Path]) -> None:
    path = write_csv(
        """
        customer_id,timestamp,amount
        A,2024-01-01,3
        B,2024-01-02,4
        C,not a date,5
        """
    )
    with pytest.raises(InputError) as err:
        load_transactions(path)
    assert (err.value.row, err.value.column) == (4, "timestamp")
    assert "unparsable date" in err.value.reason and "'not a date'" in err.value.reason


def test_load_reports_negative_quantity(write_csv: Callable[..., Path]) -> None:
    path = write_csv(
        """
        customer_id,timestamp,amount,quantity
        A,2024-01-01,3,1
        A,2024-01-02,3,-2
        """
    )
    with pytest.raises(InputError) as err:
        load_transactions(path)
    assert (err.value.row, err.value.column) == (3, "quantity")
    assert err.value.reason == "negative quantity: '-2'"


def test_load_reports_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("")
    with pytest.raises(InputError, match="the file is empty"):
        load_transactions(path)


def test_load_reports_header_only_file(write_csv: Callable[..., Path]) -> None:
    with pytest.raises(InputError, match="no rows"):
        load_transactions(write_csv("customer_id,timestamp,amount"))


def test_load_reports_unparsable_amount_in_parquet_with_row(tmp_path: Path) -> None:
    path = tmp_path / "tx.parquet"
    table = pa.table(
        {"customer_id": ["A", "B"], "timestamp": ["2024-01-01", "2024-01-02"], "amount": ["1", "x"]}
    )
    pq.write_table(table, path)
    with pytest.raises(InputError) as err:
        load_transactions(path)
    assert (err.value.row, err.value.column) == (2, "amount")
    assert "row 2" in str(err.value)


def test_load_maps_columns_and_day_first_dates(write_csv: Callable[..., Path]) -> None:
    path = write_csv(
        """
        client;date;total
        A;31/01/2024;3
        A;01/02/2024 10:30;4
        """
    )
    cols = ColumnMapping(customer_id="client", timestamp="date", amount="total")
    # Mixed layouts: no single format parses both, so the error names line 2 or 3.
    with pytest.raises(InputError) as err:
        load_transactions(path, LoadOptions(columns=cols))
    assert err.value.column == "date"
    loaded = load_transactions(
        write_csv("client;date;total\nA;31/01/2024;3\nA;01/02/2024;4", "b.csv"),
        LoadOptions(columns=cols),
    )
    days = loaded.connection.execute("SELECT day FROM transactions ORDER BY day").fetchall()
    assert [d[0].isoformat() for d in days] == ["2024-01-31", "2024-02-01"]
    assert loaded.date_format == "%d/%m/%Y"


def test_cli_bad_file_exits_non_zero_with_json_error(write_csv: Callable[..., Path]) -> None:
    path = write_csv("customer_id,timestamp,amount\nA,2024-01-01,3\n,2024-01-02,4")
    result = CliRunner().invoke(
        app, ["metrics", "retention", "--input", str(path), "--format", "json"]
    )
    assert result.exit_code == 1
    error = json.loads(result.stdout)["error"]
    assert (error["code"], error["row"], error["column"]) == ("bad_input", 3, "customer_id")


def test_load_reports_missing_amount_in_numeric_parquet_column_with_row(tmp_path: Path) -> None:
    path = tmp_path / "tx.parquet"
    table = pa.table({"customer_id": [7, 8, 9], "timestamp": ["2024-01-01"] * 3,
                      "amount": pa.array([1.5, 2, None], pa.float64())})  # fmt: skip
    pq.write_table(table, path)
    with pytest.raises(InputError) as err:
        load_transactions(path)
    assert (err.value.row, err.value.column) == (3, "amount")
    assert "unparsable amount: empty value" in str(err.value)


def test_load_reads_numeric_and_integer_columns_as_they_are(tmp_path: Path) -> None:
    path = tmp_path / "tx.parquet"
    table = pa.table({
        "customer_id": pa.array([7, 8], pa.int64()), "timestamp": ["2024-01-01", "2024-01-02"],
        "amount": pa.array([12, -3], pa.int32()), "quantity": pa.array([1.5, None]),
    })  # fmt: skip
    pq.write_table(table, path)
    loaded = load_transactions(path)
    rows = loaded.connection.execute(
        "SELECT customer_id, amount, is_refund, quantity FROM transactions ORDER BY customer_id"
    ).fetchall()
    assert rows == [("7", 12.0, False, 1.5), ("8", -3.0, True, None)]


@pytest.mark.parametrize("kind", [pa.timestamp("us"), pa.date32(), pa.string()])
def test_load_reports_a_missing_date_in_parquet_with_row(tmp_path: Path, kind: pa.DataType) -> None:
    """Typed date columns are checked for NULL only; text ones for blanks too."""
    from datetime import date, datetime

    values: dict[str, list[object]] = {
        "timestamp[us]": [datetime(2024, 1, 1), None, None],
        "date32[day]": [date(2024, 1, 1), None, None],
        "string": ["2024-01-01", "  ", None],
    }
    path = tmp_path / "tx.parquet"
    table = pa.table({"customer_id": ["a", "b", "c"], "amount": [1.0, 2.0, 3.0],
                      "timestamp": pa.array(values[str(kind)], kind)})  # fmt: skip
    pq.write_table(table, path)
    with pytest.raises(InputError) as err:
        load_transactions(path)
    assert (err.value.row, err.value.column) == (2, "timestamp")
    assert "missing date" in str(err.value)


@pytest.mark.parametrize("value", ["NaN", "inf", "-Infinity", "1e400"])
@pytest.mark.parametrize("column", ["amount", "quantity"])
def test_load_refuses_nan_and_infinity_as_numbers(
    write_csv: Callable[..., Path], value: str, column: str
) -> None:
    values = {"amount": "10", "quantity": "1"} | {column: value}
    path = write_csv(
        "customer_id,timestamp,amount,quantity\n"
        f"a,2024-01-01,10,1\nb,2024-01-02,{values['amount']},{values['quantity']}"
    )
    with pytest.raises(InputError) as err:
        load_transactions(path, LoadOptions(materialize=False))
    assert (err.value.row, err.value.column) == (3, column)
    assert err.value.reason == f"unparsable {column}: '{value}'"


def test_load_refuses_nan_in_a_file_with_decimal_commas(write_csv: Callable[..., Path]) -> None:
    path = write_csv("customer_id;timestamp;amount\na;2024-01-01;1,5\nb;2024-01-02;nan")
    with pytest.raises(InputError, match="line 3, column 'amount': unparsable amount: 'nan'"):
        load_transactions(path)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("column", ["amount", "quantity"])
def test_load_refuses_nan_and_infinity_in_float_parquet_columns(
    tmp_path: Path, value: float, column: str
) -> None:
    numbers: dict[str, list[float | None]] = {
        "amount": [1.5, 2.0, 3.0],
        "quantity": [1.0, None, 2.0],
    }
    numbers[column][2] = value
    table = pa.table({"customer_id": ["a", "b", "c"], "timestamp": ["2024-01-01"] * 3,
                      "amount": pa.array(numbers["amount"], pa.float64()),
                      "quantity": pa.array(numbers["quantity"], pa.float32())})  # fmt: skip
    pq.write_table(table, tmp_path / "tx.parquet")
    for source in (tmp_path / "tx.parquet", table):
        with pytest.raises(InputError) as err:
            load_transactions(source)
        assert (err.value.row, err.value.column) == (3, column)
        assert err.value.reason.startswith(f"unparsable {column}: '")


def test_subscriptions_and_answers_refuse_nan_and_infinity(
    write_csv: Callable[..., Path], tmp_path: Path
) -> None:
    subs = write_csv("customer_id,mrr,start\na,10,2024-01-01\nb,nan,2024-01-15", "s.csv")
    with pytest.raises(InputError, match="line 3, column 'mrr': unparsable mrr: 'nan'"):
        load_subscriptions(subs)
    table = pa.table({"customer_id": ["a", "b"], "mrr": [10.0, float("inf")],
                      "start": ["2024-01-01", "2024-01-15"]})  # fmt: skip
    pq.write_table(table, tmp_path / "s.parquet")
    with pytest.raises(InputError, match="row 2, column 'mrr': unparsable mrr: 'inf'"):
        load_subscriptions(tmp_path / "s.parquet")
    answers = write_csv(
        "customer_id,timestamp,question,score\na,2024-01-01,nps,10\n"
        "b,2024-01-02,share_of_wallet,Infinity",
        "a.csv",
    )
    with pytest.raises(InputError, match="line 3, column 'score': unparsable score: 'Infinity'"):
        load_answers(answers)


@pytest.mark.parametrize("command", [["pareto"], ["clv"], ["clv", "--engine", "spark"]])
def test_cli_refuses_nan_amount_with_a_json_error(
    write_csv: Callable[..., Path], command: list[str]
) -> None:
    path = write_csv(
        "customer_id,timestamp,amount\na,2024-01-01,10\nb,2024-01-02,NaN\nc,2024-01-03,inf"
    )
    result = CliRunner().invoke(
        app, ["metrics", *command[:1], "-i", str(path), "-f", "json", *command[1:]]
    )
    assert result.exit_code == 1, result.output
    error = json.loads(result.stdout)["error"]
    assert (error["row"], error["column"]) == (3, "amount")
    assert error["message"].endswith("unparsable amount: 'NaN'")
