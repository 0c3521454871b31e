"""Globs of Parquet files (``--input 'exports/*.parquet'``) and typed Parquet dates.

Every file of a glob is checked from its footer: each column the load reads must be in
every file, once (case aside), holding the same kind of values; an error in a value
names the file and the row within it. A typed date or timestamp that DuckDB reads as
infinity is no date, as the text 'infinity' is none."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from fidelite.analytics.answers import load_answers
from fidelite.analytics.errors import InputError
from fidelite.analytics.io import LoadOptions, load_transactions
from fidelite.cli.main import _register, app

_register()

I64 = 2**63 - 1  # the physical value DuckDB reads as infinity in a timestamp column
I32 = 2**31 - 1  # and in a date column


def _first() -> pa.Table:
    return pa.table(
        {
            "customer_id": ["a", "b"],
            "timestamp": [datetime(2024, 1, 1, 10), datetime(2024, 1, 2, 11)],
            "amount": pa.array([10, 20], pa.int32()),
        }
    )


def _glob(tmp_path: Path, *later: pa.Table, first: pa.Table | None = None) -> tuple[str, Path]:
    """``first`` (default: two good rows) as 1.parquet and ``later`` as 2.parquet,
    3.parquet...; the glob of them all and the path of the last."""
    folder = tmp_path / "exports"
    folder.mkdir()
    tables = [_first() if first is None else first, *later]
    for number, table in enumerate(tables, start=1):
        pq.write_table(table, folder / f"{number}.parquet")
    return str(folder / "*.parquet"), folder / f"{len(tables)}.parquet"


def _error(*args: str) -> dict[str, Any]:
    result = CliRunner().invoke(app, [*args, "-f", "json"])
    assert result.exit_code == 1, result.output
    error: dict[str, Any] = json.loads(result.stdout)["error"]
    return error


def _load_error(source: str | Path | pa.Table, **options: Any) -> InputError:
    with pytest.raises(InputError) as err:
        load_transactions(source, LoadOptions(**options))
    return err.value


def _rows(source: str) -> list[tuple[Any, ...]]:
    loaded = load_transactions(source)
    return loaded.connection.execute(
        "SELECT customer_id, ts, amount FROM transactions ORDER BY customer_id"
    ).fetchall()


# --- 1. an error in a value names the file and its own row -----------------------------


@pytest.mark.parametrize("materialize", [True, False])
def test_a_bad_value_is_named_by_its_file_and_its_row_in_it(
    tmp_path: Path, materialize: bool
) -> None:
    good = pa.table({"customer_id": ["c", "d", "e"], "timestamp": [datetime(2024, 2, 1)] * 3,
                     "amount": pa.array([1, 2, 3], pa.int32())})  # fmt: skip
    bad = pa.table({"customer_id": ["f", None], "timestamp": [datetime(2024, 3, 1)] * 2,
                    "amount": pa.array([4, 5], pa.int32())})  # fmt: skip
    source, last = _glob(tmp_path, good, bad)
    error = _load_error(source, materialize=materialize)
    # Row 7 across the files: the 2nd row of the third file.
    assert (error.file, error.row, error.column) == (str(last), 2, "customer_id")
    assert str(error) == f"{last}, row 2, column 'customer_id': missing customer: empty value"


def test_a_missing_typed_date_is_named_by_its_file_and_row(tmp_path: Path) -> None:
    bad = pa.table({"customer_id": ["c", "d"], "timestamp": pa.array([datetime(2024, 2, 1), None]),
                    "amount": pa.array([1, 2], pa.int32())})  # fmt: skip
    source, last = _glob(tmp_path, bad)
    error = _load_error(source)
    assert str(error) == f"{last}, row 2, column 'timestamp': missing date: empty value"


def test_an_unparsable_text_date_is_named_by_its_file_and_row(tmp_path: Path) -> None:
    first = pa.table({"customer_id": ["a"], "timestamp": ["2024-01-01"], "amount": [1.0]})
    bad = pa.table({"customer_id": ["b", "c", "d"],
                    "timestamp": ["2024-01-02", "2024-01-03", "2024-13-45"],
                    "amount": [1.0, 2.0, 3.0]})  # fmt: skip
    source, last = _glob(tmp_path, bad, first=first)
    error = _load_error(source)
    assert (error.file, error.row, error.column) == (str(last), 3, "timestamp")
    assert error.reason.startswith("unparsable date")


def test_the_cli_names_file_row_and_column_and_the_report_writes_nothing(tmp_path: Path) -> None:
    bad = pa.table({"customer_id": ["c", "d"], "timestamp": [datetime(2024, 2, 1)] * 2,
                    "amount": pa.array([1.0, float("nan")])})  # fmt: skip
    source, last = _glob(tmp_path, bad)
    error = _error("metrics", "pareto", "-i", source)
    assert (error["file"], error["row"], error["column"]) == (str(last), 2, "amount")
    out = tmp_path / "report"
    error = _error("report", source, "--out", str(out))
    assert (error["file"], error["row"], error["column"]) == (str(last), 2, "amount")
    assert not out.exists()


# --- 2. every file's columns are checked, from its footer --------------------------------


def test_a_glob_reads_files_whose_column_names_differ_in_case_and_order(tmp_path: Path) -> None:
    later = pa.table({"AMOUNT": pa.array([30], pa.int32()), "Customer_ID": ["c"],
                      "TimeStamp": [datetime(2024, 1, 3)]})  # fmt: skip
    source, _ = _glob(tmp_path, later)
    assert [(c, a) for c, _, a in _rows(source)] == [("a", 10.0), ("b", 20.0), ("c", 30.0)]
    result = CliRunner().invoke(app, ["metrics", "repeat-rate", "-i", source, "-f", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["rows"][0]["customers"] == 3


def test_a_glob_reads_every_file_with_the_widest_type(tmp_path: Path) -> None:
    """DuckDB alone reads every file with the first one's types: 3.7 into the first
    file's INTEGER amounts was 4, a BIGINT too large for it an error."""
    later = pa.table({"customer_id": ["c", "d"], "timestamp": [date(2024, 1, 3)] * 2,
                      "amount": pa.array([3.7, 2.0**40])})  # fmt: skip
    source, _ = _glob(tmp_path, later)
    assert _rows(source)[2:] == [
        ("c", datetime(2024, 1, 3), 3.7),
        ("d", datetime(2024, 1, 3), 2.0**40),
    ]


def test_a_glob_reads_files_with_other_unread_columns(tmp_path: Path) -> None:
    later = pa.Table.from_arrays(
        [pa.array(["c"]), pa.array([datetime(2024, 1, 3)]), pa.array([3], pa.int32()),
         pa.array(["x"]), pa.array(["y"])],
        names=["customer_id", "timestamp", "amount", "note", "note"],
    )  # fmt: skip
    source, _ = _glob(tmp_path, later)
    assert len(_rows(source)) == 3


def test_a_column_of_nulls_only_fits_any_kind(tmp_path: Path) -> None:
    first = _first().append_column("coupon_code", pa.array(["X1", None]))
    later = pa.table({"customer_id": ["c"], "timestamp": [datetime(2024, 1, 3)],
                      "amount": pa.array([3], pa.int32()),
                      "coupon_code": pa.array([None], pa.null())})  # fmt: skip
    source, _ = _glob(tmp_path, later, first=first)
    loaded = load_transactions(source)
    coupons = loaded.connection.execute("SELECT coupon_code FROM transactions").fetchall()
    assert coupons == [("X1",), (None,), (None,)]


def test_a_file_missing_a_required_column_is_named(tmp_path: Path) -> None:
    later = pa.table({"customer_id": ["c"], "timestamp": [datetime(2024, 1, 3)]})
    source, last = _glob(tmp_path, later)
    first = last.parent / "1.parquet"
    error = _load_error(source)
    assert str(error) == (
        f"{last}, column 'amount': missing column 'amount' (columns found: customer_id, "
        f"timestamp), which {first} has: every file of '{source}' must have each column "
        "that is read"
    )
    assert _error("metrics", "pareto", "-i", source)["message"] == str(error)


def test_an_optional_column_in_some_files_only_is_refused(tmp_path: Path) -> None:
    """DuckDB alone ignored an order_id the first file lacks: every row its own order."""
    later = _first().append_column("order_id", pa.array(["o1", "o2"]))
    source, last = _glob(tmp_path, later)
    error = _load_error(source)
    assert (error.file, error.row, error.column) == (
        str(last.parent / "1.parquet"),
        None,
        "order_id",
    )
    assert error.reason.startswith(f"missing column 'order_id' (columns found: customer_id, "
                                   f"timestamp, amount), which {last} has")  # fmt: skip


@pytest.mark.parametrize("second", ["amount", "Amount"])
def test_a_repeated_column_in_a_later_file_is_named(tmp_path: Path, second: str) -> None:
    later = pa.Table.from_arrays(
        [pa.array(["c"]), pa.array([datetime(2024, 1, 3)]), pa.array([3.0]), pa.array([4.0])],
        names=["customer_id", "timestamp", "amount", second],
    )
    source, last = _glob(tmp_path, later)
    error = _load_error(source)
    assert (error.file, error.row, error.column) == (str(last), None, "amount")
    spelt = "'amount'" if second == "amount" else "'amount' or 'Amount'"
    assert error.reason.startswith(f"2 columns are named {spelt} (columns 3 and 4)")


@pytest.mark.parametrize(
    ("column", "values", "found", "expected"),
    [
        ("amount", pa.array(["3.5"]), "text", "numbers"),
        ("customer_id", pa.array([7]), "numbers", "text"),
        ("timestamp", pa.array(["2024-01-03T10:00:00+02:00"]), "text", "dates or local times"),
        ("timestamp", pa.array([datetime(2024, 1, 3)], pa.timestamp("us", tz="UTC")),
         "times with a time zone", "dates or local times"),
    ],
    ids=["text amount", "numeric customer", "text date", "zoned timestamp"],
)  # fmt: skip
def test_a_column_of_another_kind_in_a_later_file_is_named(
    tmp_path: Path, column: str, values: pa.Array, found: str, expected: str
) -> None:
    row: dict[str, pa.Array] = {"customer_id": pa.array(["c"]),
                                "timestamp": pa.array([datetime(2024, 1, 3)]),
                                "amount": pa.array([3], pa.int32())}  # fmt: skip
    row[column] = values
    source, last = _glob(tmp_path, pa.table(row))
    first = last.parent / "1.parquet"
    error = _load_error(source)
    assert str(error) == (
        f"{last}, column '{column}': {found} here but {expected} in {first}: a column must "
        f"hold the same kind of values in every file of '{source}'"
    )


@pytest.mark.parametrize(
    ("content", "reason"),
    [(b"", "the file is empty"), (b"not parquet", "cannot read the file: ")],
    ids=["empty", "not parquet"],
)
def test_a_file_that_is_not_parquet_is_named(tmp_path: Path, content: bytes, reason: str) -> None:
    source, last = _glob(tmp_path, _first())
    last.write_bytes(content)
    error = _load_error(source)
    assert error.file == str(last)
    assert error.reason.startswith(reason)


def test_a_glob_that_matches_nothing_says_so(tmp_path: Path) -> None:
    source = str(tmp_path / "none" / "*.parquet")
    assert str(_load_error(source)) == f"{source}: no file matches"


def test_survey_answers_from_a_glob_name_the_file_and_row(tmp_path: Path) -> None:
    first = pa.table({"customer_id": ["a"], "timestamp": ["2024-01-01"], "question": ["nps"],
                      "score": [9.0]})  # fmt: skip
    bad = pa.table({"customer_id": ["b", "c"], "timestamp": ["2024-01-02"] * 2,
                    "question": ["nps", "nps"], "score": [10.0, 11.0]})  # fmt: skip
    source, last = _glob(tmp_path, bad, first=first)
    with pytest.raises(InputError) as err:
        load_answers(source)
    assert (err.value.file, err.value.row, err.value.column) == (str(last), 2, "score")


# --- 3. typed dates: infinity is no date --------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "limit"),
    [(pa.timestamp("us"), I64), (pa.timestamp("ms"), I64), (pa.timestamp("ns"), I64),
     (pa.timestamp("us", tz="UTC"), I64), (pa.date32(), I32)],
    ids=["us", "ms", "ns", "zoned", "date"],
)  # fmt: skip
@pytest.mark.parametrize("sign", [1, -1], ids=["infinity", "-infinity"])
def test_a_typed_date_that_duckdb_reads_as_infinity_is_no_date(
    tmp_path: Path, kind: pa.DataType, limit: int, sign: int
) -> None:
    table = pa.table({"customer_id": ["a", "b", "c"], "amount": [1.0, 2.0, 3.0],
                      "timestamp": pa.array([0, sign * limit, 0], kind)})  # fmt: skip
    path = tmp_path / "tx.parquet"
    pq.write_table(table, path)
    shown = "'infinity'" if sign > 0 else "'-infinity'"
    for source, name in ((path, str(path)), (table, "<arrow table>")):
        error = _load_error(source, timezone="Europe/Paris")
        assert (
            str(error)
            == f"{name}, row 2, column 'timestamp': not a date (no calendar day): {shown}"
        )


def test_infinity_is_found_without_footer_statistics_and_in_a_glob(tmp_path: Path) -> None:
    """The footers' statistics spare the validation scan reading the dates; a file
    written without them is checked row by row."""
    bad = pa.table({"customer_id": ["c", "d"], "amount": pa.array([1, 2], pa.int32()),
                    "timestamp": pa.array([0, I64], pa.timestamp("us"))})  # fmt: skip
    source, last = _glob(tmp_path, bad)
    pq.write_table(bad, last, write_statistics=False)
    error = _load_error(source)
    assert (error.file, error.row, error.column) == (str(last), 2, "timestamp")
    assert error.reason == "not a date (no calendar day): 'infinity'"
    error = _load_error(last)
    assert (error.file, error.row) == (str(last), 2)


def test_the_cli_refuses_an_infinite_typed_date(tmp_path: Path) -> None:
    path = tmp_path / "tx.parquet"
    pq.write_table(pa.table({"customer_id": ["a"], "amount": [1.0],
                             "timestamp": pa.array([I32], pa.date32())}), path)  # fmt: skip
    error = _error("metrics", "retention", "-i", str(path))
    assert (error["file"], error["row"], error["column"]) == (str(path), 1, "timestamp")


def test_typed_dates_far_apart_but_finite_load(tmp_path: Path) -> None:
    path = tmp_path / "tx.parquet"
    table = pa.table({"customer_id": ["a", "b"], "amount": [1.0, 2.0],
                      "timestamp": pa.array([date(1970, 1, 1), date(9998, 12, 31)])})  # fmt: skip
    pq.write_table(table, path)
    assert load_transactions(path).rows == 2
