"""Column names are matched whatever their case, in every file read: a Parquet file (alone
or in a glob, whichever file comes first), a CSV file, an Arrow table, survey answers,
subscriptions, support cases, a segments file and the segment column. Two columns whose
names differ only in case stay an error naming both."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from fidelite.analytics.answers import load_answers
from fidelite.analytics.errors import InputError
from fidelite.analytics.io import ColumnMapping, LoadOptions, load_transactions
from fidelite.analytics.subscriptions import SubscriptionColumns, load_subscriptions
from fidelite.analytics.support import load_support_cases
from fidelite.cli.main import _register, app

_register()


def _table(amount: str, customers: list[str], day: int) -> pa.Table:
    return pa.table(
        {
            "customer_id": customers,
            "timestamp": [datetime(2024, 1, day)] * len(customers),
            amount: pa.array([10.0 * (i + 1) for i in range(len(customers))]),
        }
    )


def _rows(source: Any, options: LoadOptions | None = None) -> list[tuple[Any, ...]]:
    loaded = load_transactions(source, options)
    found = loaded.connection.execute(
        "SELECT customer_id, day, amount FROM transactions ORDER BY customer_id, day"
    )
    return found.fetchall()


def test_a_parquet_file_with_an_amount_column_in_capitals_is_read(tmp_path: Path) -> None:
    path = tmp_path / "tx.parquet"
    pq.write_table(_table("Amount", ["a", "b"], 5), path)
    assert _rows(path) == [("a", date(2024, 1, 5), 10.0), ("b", date(2024, 1, 5), 20.0)]
    result = CliRunner().invoke(app, ["metrics", "repeat-rate", "-i", str(path), "-f", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["rows"][0]["customers"] == 2


@pytest.mark.parametrize("first", ["Amount", "amount", "AMOUNT"])
def test_a_parquet_glob_mixing_cases_is_read_whichever_file_comes_first(
    tmp_path: Path, first: str
) -> None:
    folder = tmp_path / "exports"
    folder.mkdir()
    others = [name for name in ("Amount", "amount", "AMOUNT") if name != first]
    for number, name in enumerate([first, *others], start=1):
        pq.write_table(_table(name, [f"c{number}"], number), folder / f"{number}.parquet")
    source = str(folder / "*.parquet")
    assert _rows(source) == [
        ("c1", date(2024, 1, 1), 10.0),
        ("c2", date(2024, 1, 2), 10.0),
        ("c3", date(2024, 1, 3), 10.0),
    ]


def test_a_parquet_glob_names_the_file_without_the_column(tmp_path: Path) -> None:
    folder = tmp_path / "exports"
    folder.mkdir()
    pq.write_table(_table("Amount", ["a"], 1), folder / "1.parquet")
    pq.write_table(_table("amount", ["b"], 2), folder / "2.parquet")
    pq.write_table(_table("price", ["c"], 3), folder / "3.parquet")
    source = str(folder / "*.parquet")
    with pytest.raises(InputError) as err:
        load_transactions(source)
    assert (err.value.file, err.value.column) == (str(folder / "3.parquet"), "Amount")
    assert err.value.reason == (
        "missing column 'Amount' (columns found: customer_id, timestamp, price), which "
        f"{folder / '1.parquet'} has: every file of '{source}' must have each column that "
        "is read"
    )


def test_a_parquet_file_with_two_columns_differing_in_case_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "tx.parquet"
    table = _table("amount", ["a"], 1).append_column("Amount", pa.array([3.0]))
    pq.write_table(table, path)
    with pytest.raises(InputError) as err:
        load_transactions(path)
    assert (err.value.column, err.value.reason) == (
        "amount",
        "2 columns are named 'amount' or 'Amount' (columns 3 and 4): rename all but one, so "
        "that it is clear which to read",
    )


def test_a_csv_header_in_another_case_and_a_mapping_in_another_case(
    write_csv: Callable[..., Path],
) -> None:
    path = write_csv(
        "Customer_ID,TimeStamp,AMOUNT,Order_Id\na,2024-01-05,1.5,o1\nb,2024-01-06,2,o2"
    )
    loaded = load_transactions(path)
    found = loaded.connection.execute(
        "SELECT customer_id, order_id, amount FROM transactions ORDER BY customer_id"
    ).fetchall()
    assert found == [("a", "o1", 1.5), ("b", "o2", 2.0)]
    assert loaded.present == frozenset({"order_id"})
    path = write_csv("Client;Date;Montant\nC1;05/01/2024;12,50\n", "fr.csv")
    columns = ColumnMapping(customer_id="client", timestamp="DATE", amount="montant")
    assert _rows(path, LoadOptions(columns=columns)) == [("C1", date(2024, 1, 5), 12.5)]


def test_an_error_names_the_column_as_the_file_writes_it(write_csv: Callable[..., Path]) -> None:
    path = write_csv("customer_id,timestamp,Amount\na,2024-01-05,abc\n")
    with pytest.raises(InputError) as err:
        load_transactions(path)
    assert str(err.value) == f"{path}, line 2, column 'Amount': unparsable amount: 'abc'"


def test_a_csv_file_with_two_columns_differing_in_case_is_refused(
    write_csv: Callable[..., Path],
) -> None:
    path = write_csv("customer_id,timestamp,Amount,amount\na,2024-01-05,1,2\n")
    con = duckdb.connect()
    with pytest.raises(InputError) as err:
        load_transactions(path, connection=con)
    assert (err.value.row, err.value.column) == (1, "Amount")
    assert err.value.reason == (
        "2 columns are named 'Amount' or 'amount' (columns 3 and 4): rename all but one, so "
        "that it is clear which to read"
    )
    assert con.execute("SELECT table_name FROM duckdb_tables()").fetchall() == []


def test_an_arrow_table_with_capitals_is_read() -> None:
    table = pa.table({"Customer_Id": ["a"], "Timestamp": [datetime(2024, 1, 5)], "AMOUNT": [2.0]})
    assert _rows(table) == [("a", date(2024, 1, 5), 2.0)]


def test_answers_subscriptions_and_support_cases_match_names_whatever_their_case(
    write_csv: Callable[..., Path],
) -> None:
    answers = write_csv("Customer_ID,Timestamp,Question,Score\nC1,2024-01-05,NPS,9\n", "a.csv")
    loaded = load_answers(answers)
    found = loaded.connection.execute("SELECT customer_id, question, score FROM answers")
    assert found.fetchall() == [("C1", "nps", 9.0)]
    subs = write_csv(
        "Customer_ID,MRR,Start,END,Plan\nC1,10,2024-01-01,2024-02-01,gold\nC2,5,2024-01-01,,\n",
        "s.csv",
    )
    columns = SubscriptionColumns(mrr="mrr")
    found = load_subscriptions(subs, columns=columns).connection.execute(
        "SELECT customer_id, plan, mrr, start_day, end_day FROM subscriptions ORDER BY 1"
    )
    assert found.fetchall() == [
        ("C1", "gold", 10.0, date(2024, 1, 1), date(2024, 2, 1)),
        ("C2", None, 5.0, date(2024, 1, 1), None),
    ]
    cases = write_csv("Client,When\nC1,2024-01-05T10:00:00\n", "c.csv")
    support = load_support_cases(cases, customer_col="client", time_col="when")
    found = support.connection.execute("SELECT customer_id, ts FROM support_cases")
    assert found.fetchall() == [("C1", datetime(2024, 1, 5, 10, 0))]


def test_a_segments_file_and_a_segment_column_match_names_whatever_their_case(
    write_csv: Callable[..., Path],
) -> None:
    tx = write_csv(
        "customer_id,timestamp,amount,Channel\na,2024-01-05,1,web\nb,2024-01-06,2,store\n"
    )
    segs = write_csv("Customer_ID,Segment\na,gold\n", "segs.csv")
    for options in (LoadOptions(segment_column="channel"), LoadOptions(segments_file=segs)):
        loaded = load_transactions(tx, options)
        found = loaded.connection.execute(
            "SELECT customer_id, segment FROM transactions ORDER BY customer_id"
        ).fetchall()
        expected = [("a", "web"), ("b", "store")] if options.segment_column else [
            ("a", "gold"), ("b", "(none)")
        ]  # fmt: skip
        assert found == expected
