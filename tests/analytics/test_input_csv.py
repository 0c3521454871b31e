"""CSV layout: the header decides the delimiter and the columns; a malformed line is
named with its field count; decimal commas are read in ';'-separated files."""

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

HEADER = "customer_id,timestamp,amount"


def _hundred_lines(tmp_path: Path, line_51: str) -> Path:
    """A header and 99 good rows, with ``line_51`` as the file's 51st line."""
    rows = [f"c{i},2024-01-{1 + i % 28:02d},{i}" for i in range(1, 100)]
    rows.insert(49, line_51)  # lines 2..50 are rows 1..49; this is line 51
    path = tmp_path / "tx.csv"
    path.write_text("\n".join([HEADER, *rows[:99]]) + "\n", encoding="utf-8")
    return path


def _rows(path: Path, **options: str) -> list[tuple[object, ...]]:
    loaded = load_transactions(path, LoadOptions(**options))  # type: ignore[arg-type]
    return loaded.connection.execute(
        "SELECT customer_id, amount, quantity FROM transactions"
    ).fetchall()


@pytest.mark.parametrize(
    ("line", "fields"),
    [("c999,2024-01-05,3,extra", 4), ("c999,2024-01-05", 2)],
)
def test_load_names_the_line_with_a_field_too_many_or_too_few(
    tmp_path: Path, line: str, fields: int
) -> None:
    path = _hundred_lines(tmp_path, line)
    with pytest.raises(InputError) as err:
        load_transactions(path)
    assert (err.value.file, err.value.row, err.value.column) == (str(path), 51, None)
    assert err.value.reason.startswith(
        f"this line has {fields} fields but the header has 3 "
        "(customer_id, timestamp, amount), separated by ','"
    )


def test_cli_names_the_ragged_line_and_prints_no_rows(tmp_path: Path) -> None:
    path = _hundred_lines(tmp_path, "c999,2024-01-05,3,extra")
    result = CliRunner().invoke(app, ["metrics", "retention", "-i", str(path), "-f", "json"])
    assert result.exit_code == 1
    error = json.loads(result.stdout)["error"]
    assert (error["code"], error["row"]) == ("bad_input", 51)
    assert "line 51: this line has 4 fields but the header has 3" in error["message"]
    assert "rows" not in json.loads(result.stdout)


def test_load_names_the_line_where_a_quote_is_never_closed(tmp_path: Path) -> None:
    path = _hundred_lines(tmp_path, 'c999,"2024-01-05,3')
    with pytest.raises(InputError) as err:
        load_transactions(path)
    assert err.value.row == 51
    assert err.value.reason.startswith("badly quoted record")


def test_load_counts_lines_of_a_quoted_multi_line_value(write_csv: Callable[..., Path]) -> None:
    path = write_csv('customer_id,timestamp,amount,product_id\na,2024-01-01,1,"two\nlines"\n'
                     "b,2024-01-02,x,p\n")  # fmt: skip
    with pytest.raises(InputError) as err:
        load_transactions(path)
    assert (err.value.row, err.value.column) == (4, "amount")  # the header is line 1


@pytest.mark.parametrize(
    ("text", "delimiter"),
    [
        ("customer_id;timestamp;amount\na;2024-01-01;2\n", ";"),
        ("customer_id\ttimestamp\tamount\na\t2024-01-01\t2\n", "\t"),
        ("customer_id|timestamp|amount\na|2024-01-01|2\n", "|"),
        ("\ufeffcustomer_id, timestamp , amount\r\na,2024-01-01,2\r\n\r\n", ","),
    ],
)
def test_load_takes_the_delimiter_and_names_from_the_header(
    tmp_path: Path, text: str, delimiter: str
) -> None:
    path = tmp_path / "tx.csv"
    path.write_text(text, encoding="utf-8")
    assert _rows(path) == [("a", 2.0, None)]
    assert _rows(path, delimiter=delimiter) == [("a", 2.0, None)]


def test_load_skips_an_empty_first_line_before_the_header(tmp_path: Path) -> None:
    path = tmp_path / "tx.csv"
    path.write_text("\ncustomer_id,timestamp,amount\na,2024-01-01,2\n", encoding="utf-8")
    assert _rows(path) == [("a", 2.0, None)]


def test_load_reads_decimal_commas_in_a_semicolon_file(write_csv: Callable[..., Path]) -> None:
    path = write_csv(
        """
        customer_id;timestamp;amount;quantity
        a;2024-01-01;1,5;0,25
        b;2024-01-02;-12,75;
        c;2024-01-03;3;2
        """
    )
    assert _rows(path) == [("a", 1.5, 0.25), ("b", -12.75, None), ("c", 3.0, 2.0)]


def test_load_refuses_a_decimal_point_beside_decimal_commas(
    write_csv: Callable[..., Path],
) -> None:
    path = write_csv("customer_id;timestamp;amount\na;2024-01-01;1,5\nb;2024-01-02;1.500")
    with pytest.raises(InputError) as err:
        load_transactions(path)
    assert (err.value.row, err.value.column) == (3, "amount")
    assert err.value.reason.startswith("decimal point in a column that uses decimal commas")


def test_load_refuses_a_decimal_comma_in_a_comma_file(write_csv: Callable[..., Path]) -> None:
    path = write_csv('customer_id,timestamp,amount\na,2024-01-01,2\nb,2024-01-02,"1,5"')
    with pytest.raises(InputError) as err:
        load_transactions(path)
    assert (err.value.row, err.value.column) == (3, "amount")
    assert err.value.reason == (
        "comma in a number (a decimal comma is read only in ';'-separated files, "
        "thousands separators never): write 1.5 or 1500: '1,5'"
    )


def test_subscriptions_and_answers_read_decimal_commas(write_csv: Callable[..., Path]) -> None:
    subs = load_subscriptions(write_csv("customer_id;mrr;start\na;9,99;2024-01-01", "s.csv"))
    assert subs.connection.execute("SELECT mrr FROM subscriptions").fetchall() == [(9.99,)]
    answers = load_answers(
        write_csv(
            "customer_id;timestamp;question;score\na;2024-01-01;share_of_wallet;12,5", "a.csv"
        )
    )
    assert answers.connection.execute("SELECT score FROM answers").fetchall() == [(12.5,)]


def test_cli_delimiter_option_overrides_the_header(write_csv: Callable[..., Path]) -> None:
    path = write_csv("customer_id;timestamp;amount\na;2024-01-01;2")
    result = CliRunner().invoke(
        app, ["metrics", "repeat-rate", "-i", str(path), "--delimiter", ",", "-f", "json"]
    )
    assert result.exit_code == 1
    error = json.loads(result.stdout)["error"]
    assert error["message"].endswith(
        "missing required column 'customer_id' (columns found: customer_id;timestamp;amount)"
    )
    ok = CliRunner().invoke(
        app, ["metrics", "repeat-rate", "-i", str(path), "--delimiter", ";", "-f", "json"]
    )
    assert json.loads(ok.stdout)["rows"][0]["customers"] == 1


NOT_UTF8 = "not UTF-8 text (byte 0xe9); save the file as UTF-8"


@pytest.mark.parametrize("materialize", [True, False])
def test_load_names_the_line_and_column_of_a_byte_that_is_not_utf8(
    tmp_path: Path, materialize: bool
) -> None:
    # A spreadsheet's "CSV" in a Western European locale: Latin-1, 'é' is the byte 0xE9.
    path = tmp_path / "latin1.csv"
    path.write_bytes(
        b"customer_id;timestamp;amount\nJos\xe9;2024-01-01;1,5\nRen\xe9e;2024-01-02;2\n"
    )
    with pytest.raises(InputError) as err:
        load_transactions(path, LoadOptions(materialize=materialize))
    assert (err.value.row, err.value.column, err.value.reason) == (2, "customer_id", NOT_UTF8)


def test_load_finds_a_bad_byte_far_into_the_file_and_in_a_quoted_multi_line_value(
    tmp_path: Path,
) -> None:
    rows = [f"c{i},2024-01-{1 + i % 28:02d},{i},plain" for i in range(3000)]
    rows.append('c9,2024-01-05,3,"two\nlines caf\xe9"')
    text = "\n".join(["customer_id,timestamp,amount,category", *rows]).encode("latin-1")
    path = tmp_path / "far.csv"
    path.write_bytes(text + b"\n")
    with pytest.raises(InputError) as err:
        load_transactions(path)
    # The record starts on line 3002; the byte is on the next line, in 'category'.
    assert (err.value.row, err.value.column, err.value.reason) == (3003, "category", NOT_UTF8)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"customer_id,timestamp,montant \xe9\nA,2024-01-01,1\n", NOT_UTF8),
        (
            "customer_id,timestamp,amount\nA,2024-01-01,1\n".encode("utf-16"),
            'UTF-16 text, not UTF-8 (a spreadsheet\'s "Unicode text"); save the file as UTF-8',
        ),
        (
            "customer_id,timestamp,amount\nA,2024-01-01,1\n".encode("utf-16-le"),
            'UTF-16 text, not UTF-8 (a spreadsheet\'s "Unicode text"); save the file as UTF-8',
        ),
    ],
    ids=["latin-1", "utf-16", "utf-16 without byte order mark"],
)
def test_load_refuses_a_header_that_is_not_utf8(
    tmp_path: Path, content: bytes, reason: str
) -> None:
    path = tmp_path / "tx.csv"
    path.write_bytes(content)
    with pytest.raises(InputError) as err:
        load_transactions(path)
    assert (err.value.row, err.value.column, err.value.reason) == (1, None, reason)


def test_cli_names_the_line_of_a_byte_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes(b"customer_id;timestamp;amount\nJos\xe9;2024-01-01;1,5\n")
    result = CliRunner().invoke(app, ["metrics", "rfm", "-i", str(path), "-f", "json"])
    assert result.exit_code == 1
    error = json.loads(result.stdout)["error"]
    assert (error["row"], error["column"]) == (2, "customer_id")
    assert error["message"] == f"{path}, line 2, column 'customer_id': {NOT_UTF8}"


def test_load_refuses_a_used_column_whose_name_is_repeated(write_csv: Callable[..., Path]) -> None:
    path = write_csv("customer_id,timestamp,amount,amount\na,2024-01-01,1,2")
    with pytest.raises(InputError) as err:
        load_transactions(path)
    assert (err.value.row, err.value.column) == (1, "amount")
    assert err.value.reason.startswith(
        "2 columns are named 'amount' (columns 3 and 4): rename all but one"
    )
    mapped = write_csv("client,date,total,note,total\na,2024-01-01,1,x,2", "mapped.csv")
    cols = ColumnMapping(customer_id="client", timestamp="date", amount="total")
    with pytest.raises(InputError, match=r"named 'total' \(columns 3 and 5\)"):
        load_transactions(mapped, LoadOptions(columns=cols))
    subs = write_csv("customer_id,mrr,start,mrr\na,10,2024-01-01,20", "subs.csv")
    with pytest.raises(InputError, match=r"named 'mrr' \(columns 2 and 4\)"):
        load_subscriptions(subs)


def test_load_takes_a_file_whose_repeated_name_is_not_read(write_csv: Callable[..., Path]) -> None:
    path = write_csv("customer_id,note,timestamp,amount,note\na,x,2024-01-01,1,y")
    assert _rows(path) == [("a", 1.0, None)]


def test_load_refuses_a_repeated_column_name_in_parquet_and_arrow(tmp_path: Path) -> None:
    table = pa.Table.from_arrays(
        [pa.array(["a"]), pa.array(["2024-01-01"]), pa.array([1.0]), pa.array([2.0])],
        names=["customer_id", "timestamp", "amount", "amount"],
    )
    pq.write_table(table, tmp_path / "dup.parquet")
    for source in (tmp_path / "dup.parquet", table):
        with pytest.raises(InputError) as err:
            load_transactions(source)
        assert (err.value.row, err.value.column) == (None, "amount")
        assert "(columns 3 and 4)" in err.value.reason


def test_cli_refuses_a_repeated_amount_column(write_csv: Callable[..., Path]) -> None:
    path = write_csv("customer_id,timestamp,amount,amount\na,2024-01-01,1,2")
    result = CliRunner().invoke(app, ["metrics", "pareto", "-i", str(path), "-f", "json"])
    assert result.exit_code == 1
    error = json.loads(result.stdout)["error"]
    assert (error["row"], error["column"]) == (1, "amount")


def test_load_takes_names_that_differ_only_in_case_as_one_name(
    write_csv: Callable[..., Path],
) -> None:
    # DuckDB's column names ignore case: 'Amount' beside 'amount' is the same name twice.
    path = write_csv("customer_id,timestamp,amount,Amount\na,2024-01-01,1,2")
    with pytest.raises(InputError) as err:
        load_transactions(path)
    assert (err.value.row, err.value.column) == (1, "amount")
    assert err.value.reason.startswith("2 columns are named 'amount' or 'Amount' (columns 3 and 4)")
    unused = write_csv("customer_id,Note,timestamp,amount,note\na,x,2024-01-01,1,y", "unused.csv")
    assert _rows(unused) == [("a", 1.0, None)]


AMBIGUOUS = (
    "ambiguous number: every number of this ';'-separated column with a dot has three "
    "digits after it, so the dot may separate thousands (1.500 = 1500) or decimals "
    "(1.500 = 1.5); thousands separators are never read: write 1500 for fifteen hundred, "
    "or 1,5 (a decimal comma) for one and a half"
)


@pytest.mark.parametrize(
    ("amounts", "row", "value"),
    [
        (["1.500", "2.250"], 2, "1.500"),  # every amount: thousands or three decimals?
        (["25", "-1.500"], 3, "-1.500"),  # whole numbers beside them decide nothing
    ],
)
def test_load_refuses_amounts_whose_dot_may_separate_thousands(
    write_csv: Callable[..., Path], amounts: list[str], row: int, value: str
) -> None:
    lines = [f"c{i};2024-01-0{i + 1};{a}" for i, a in enumerate(amounts)]
    path = write_csv("\n".join(["customer_id;timestamp;amount", *lines]))
    with pytest.raises(InputError) as err:
        load_transactions(path)
    assert (err.value.file, err.value.row, err.value.column) == (str(path), row, "amount")
    assert err.value.reason == f"{AMBIGUOUS}: '{value}'"


def test_an_unambiguous_decimal_point_is_read_as_before(write_csv: Callable[..., Path]) -> None:
    # one amount with other than three decimals (or four digits before the dot) says
    # the dot is a decimal point; a comma-separated file never reads thousands anyway
    semi = write_csv("customer_id;timestamp;amount\na;2024-01-01;1.500\nb;2024-01-02;12.5")
    assert _rows(semi) == [("a", 1.5, None), ("b", 12.5, None)]
    long = write_csv("customer_id;timestamp;amount\na;2024-01-01;1234.500", "long.csv")
    assert _rows(long) == [("a", 1234.5, None)]
    comma = write_csv("customer_id,timestamp,amount\na,2024-01-01,1.500", "comma.csv")
    assert _rows(comma) == [("a", 1.5, None)]
    # 0.250 cannot be a thousands grouping (no number is written 0.250 for 250): a
    # column of weights or of three-decimal currencies below 1 is read, and clears
    # the 1.500 beside it as it would 12.5
    zero = write_csv(
        "customer_id;timestamp;amount\na;2024-01-01;0.250\nb;2024-01-02;1.500", "z.csv"
    )
    assert _rows(zero) == [("a", 0.25, None), ("b", 1.5, None)]
    quantities = write_csv(
        "customer_id;timestamp;amount;quantity\na;2024-01-01;12,5;0.250\nb;2024-01-02;3,5;0.750",
        "q.csv",
    )
    assert _rows(quantities) == [("a", 12.5, 0.25), ("b", 3.5, 0.75)]


@pytest.mark.parametrize(
    ("value", "plain"),
    [
        ("1.500,00", "1500,00"),
        ("1 234,50", "1234,50"),
        ("-1'234,5", "-1234,5"),
        ("1.234.567", "1234567"),
    ],
)
def test_load_names_a_thousands_separator(
    write_csv: Callable[..., Path], value: str, plain: str
) -> None:
    # The advice rewrites the value found, not a fixed example.
    path = write_csv(f"customer_id;timestamp;amount\na;2024-01-01;2,5\nb;2024-01-02;{value}")
    with pytest.raises(InputError) as err:
        load_transactions(path)
    assert (err.value.file, err.value.row, err.value.column) == (str(path), 3, "amount")
    assert err.value.reason == (
        f"thousands separator in a number (none is read): '{value}'; write it as {plain}"
    )


def test_subscriptions_refuse_an_ambiguous_mrr(write_csv: Callable[..., Path]) -> None:
    path = write_csv("customer_id;mrr;start\na;1.200;2024-01-01\nb;2.400;2024-01-01", "s.csv")
    with pytest.raises(InputError) as err:
        load_subscriptions(path)
    assert (err.value.row, err.value.column) == (2, "mrr")
    assert err.value.reason == f"{AMBIGUOUS}: '1.200'"
