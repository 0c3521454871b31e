"""Input errors of the subscriptions, survey answers and support cases loaders, words
DuckDB reads as dates, and globs of CSV files: one error naming file, line and column."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fidelite.analytics.answers import load_answers
from fidelite.analytics.errors import InputError
from fidelite.analytics.io import LoadOptions, load_transactions
from fidelite.analytics.subscriptions import load_subscriptions
from fidelite.analytics.support import load_support_cases
from fidelite.cli.main import _register, app

_register()

NOT_UTF8 = "not UTF-8 text (byte 0xe9); save the file as UTF-8"
UNPARSABLE = "unparsable date (tried ISO 8601 and common day/month/year layouts)"


def _error(*args: str) -> dict[str, object]:
    """Run ``fidelite ARGS -f json``: it must fail with one error and no traceback."""
    result = CliRunner().invoke(app, [*args, "-f", "json"])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    error: dict[str, object] = json.loads(result.stdout)["error"]
    return error


def test_subscriptions_name_a_bad_byte_in_the_plan(tmp_path: Path) -> None:
    # A Latin-1 'é' in a column no check reads: DuckDB met it only when making the table.
    path = tmp_path / "subs.csv"
    path.write_bytes(b"customer_id,mrr,start,plan\na,10,2024-01-01,Basic\nb,5,2024-01-01,Caf\xe9\n")
    with pytest.raises(InputError) as err:
        load_subscriptions(path)
    assert str(err.value) == f"{path}, line 3, column 'plan': {NOT_UTF8}"
    error = _error("metrics", "mrr", "--subscriptions", str(path))
    assert error["message"] == f"{path}, line 3, column 'plan': {NOT_UTF8}"
    assert (error["row"], error["column"]) == (3, "plan")


@pytest.mark.parametrize("column", [0, 1, 2, 3])
def test_survey_answers_name_a_bad_byte_in_any_column_read(tmp_path: Path, column: int) -> None:
    names = ["customer_id", "timestamp", "question", "score"]
    values = ["a", "2024-01-01", "nps", "9"]
    values[column] += "\xe9"
    path = tmp_path / "answers.csv"
    path.write_bytes(
        f"{','.join(names)}\na,2024-01-01,nps,9\n{','.join(values)}\n".encode("latin-1")
    )
    with pytest.raises(InputError) as err:
        load_answers(path)
    assert str(err.value) == f"{path}, line 3, column '{names[column]}': {NOT_UTF8}"


def test_support_cases_name_a_bad_byte(tmp_path: Path) -> None:
    path = tmp_path / "cases.csv"
    path.write_bytes(b"customer_id,timestamp\na,2024-01-01\nRen\xe9e,2024-01-02\n")
    with pytest.raises(InputError) as err:
        load_support_cases(path)
    assert str(err.value) == f"{path}, line 3, column 'customer_id': {NOT_UTF8}"


def test_subscriptions_and_support_refuse_utf16_and_repeated_columns(tmp_path: Path) -> None:
    utf16 = tmp_path / "subs.csv"
    utf16.write_bytes("customer_id,mrr,start\na,1,2024-01-01\n".encode("utf-16"))
    with pytest.raises(InputError) as err:
        load_subscriptions(utf16)
    assert str(err.value) == (
        f'{utf16}, line 1: UTF-16 text, not UTF-8 (a spreadsheet\'s "Unicode text"); '
        "save the file as UTF-8"
    )
    repeated = tmp_path / "cases.csv"
    repeated.write_bytes(b"customer_id,timestamp,Timestamp\na,2024-01-01,x\n")
    with pytest.raises(InputError) as err:
        load_support_cases(repeated)
    assert str(err.value) == (
        f"{repeated}, line 1, column 'timestamp': 2 columns are named 'timestamp' or "
        "'Timestamp' (columns 2 and 3): rename all but one, so that it is clear which to read"
    )


def test_subscriptions_all_running_are_read(write_csv: Callable[..., Path]) -> None:
    # Every end empty: DuckDB's count_if over a column of NULLs is NULL, not 0.
    path = write_csv("customer_id,mrr,start,end\na,10,2024-01-01,\nb,5,2024-02-01,", "subs.csv")
    loaded = load_subscriptions(path)
    rows = loaded.connection.execute("SELECT customer_id, end_day FROM subscriptions").fetchall()
    assert sorted(rows) == [("a", None), ("b", None)]


@pytest.mark.parametrize("value", ["epoch", "EPOCH", "-epoch"])
def test_transactions_refuse_epoch_as_a_date(write_csv: Callable[..., Path], value: str) -> None:
    # DuckDB reads 'epoch' as 1970-01-01, in its ISO cast and under every strptime format.
    path = write_csv(f"customer_id,timestamp,amount\na,2024-01-01,1\nb,{value},2")
    for materialize in (True, False):
        with pytest.raises(InputError) as err:
            load_transactions(path, LoadOptions(materialize=materialize))
        assert str(err.value) == f"{path}, line 3, column 'timestamp': {UNPARSABLE}: '{value}'"
    with pytest.raises(InputError) as err:
        load_transactions(path, LoadOptions(date_format="%Y-%m-%d"))
    assert str(err.value) == (
        f"{path}, line 3, column 'timestamp': unparsable date (format %Y-%m-%d): '{value}'"
    )
    day_first = write_csv(f"customer_id,timestamp,amount\na,05/01/2024,1\nb,{value},2", "dm.csv")
    with pytest.raises(InputError, match="line 3, column 'timestamp': unparsable date"):
        load_transactions(day_first)
    error = _error("metrics", "rfm", "-i", str(path))
    assert error["message"] == f"{path}, line 3, column 'timestamp': {UNPARSABLE}: '{value}'"


def test_subscriptions_answers_and_support_refuse_epoch(write_csv: Callable[..., Path]) -> None:
    start = write_csv("customer_id,mrr,start,end\na,10,epoch,", "start.csv")
    with pytest.raises(InputError) as err:
        load_subscriptions(start)
    assert str(err.value) == (
        f"{start}, line 2, column 'start': missing or unparsable start date "
        "(tried ISO 8601 and common day/month/year layouts): 'epoch'"
    )
    end = write_csv("customer_id,mrr,start,end\na,10,2024-01-01,epoch", "end.csv")
    with pytest.raises(InputError) as err:
        load_subscriptions(end)
    assert str(err.value) == (
        f"{end}, line 2, column 'end': unparsable end date "
        "(tried ISO 8601 and common day/month/year layouts): 'epoch'"
    )
    answers = write_csv("customer_id,timestamp,question,score\na,epoch,nps,9", "answers.csv")
    with pytest.raises(InputError) as err:
        load_answers(answers)
    assert str(err.value) == f"{answers}, line 2, column 'timestamp': {UNPARSABLE}: 'epoch'"
    cases = write_csv("customer_id,timestamp\na,2024-01-01\nb,Epoch", "cases.csv")
    with pytest.raises(InputError) as err:
        load_support_cases(cases)
    assert str(err.value) == f"{cases}, line 3, column 'timestamp': {UNPARSABLE}: 'Epoch'"


HEADER = "customer_id,timestamp,amount\n"


def _glob(tmp_path: Path, second: bytes) -> tuple[str, Path]:
    """A directory with a good a.csv and ``second`` as b.csv; the glob of both."""
    folder = tmp_path / "tx"
    folder.mkdir()
    (folder / "a.csv").write_text(HEADER + "a,2024-01-01,10\nb,2024-02-01,5\n")
    (folder / "b.csv").write_bytes(second)
    return str(folder / "*.csv"), folder / "b.csv"


def test_a_glob_reads_every_file(tmp_path: Path) -> None:
    source, _ = _glob(tmp_path, (HEADER + "c,2024-03-01,7\n").encode())
    assert load_transactions(source).rows == 3


def test_a_glob_reads_files_whose_headers_differ_only_in_case(tmp_path: Path) -> None:
    """Column names are matched whatever their case, in one file as across files."""
    source, _ = _glob(tmp_path, b"Customer_ID,Timestamp,AMOUNT\nc,2024-03-01,7\n")
    assert load_transactions(source).rows == 3
    result = CliRunner().invoke(app, ["metrics", "repeat-rate", "-i", source, "-f", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["rows"][0]["customers"] == 3


def test_a_glob_names_the_file_with_a_bad_byte(tmp_path: Path) -> None:
    source, bad = _glob(
        tmp_path, (HEADER + "c,2024-03-01,7\n").encode() + b"Jos\xe9,2024-03-02,1\n"
    )
    with pytest.raises(InputError) as err:
        load_transactions(source)
    assert str(err.value) == f"{bad}, line 3, column 'customer_id': {NOT_UTF8}"
    error = _error("metrics", "pareto", "-i", source)
    assert (error["file"], error["row"], error["column"]) == (str(bad), 3, "customer_id")


def test_a_glob_names_the_file_and_line_of_a_bad_value(tmp_path: Path) -> None:
    source, bad = _glob(tmp_path, (HEADER + "c,2024-03-01,7\nd,2024-13-45,1\n").encode())
    with pytest.raises(InputError) as err:
        load_transactions(source)
    assert str(err.value) == f"{bad}, line 3, column 'timestamp': {UNPARSABLE}: '2024-13-45'"


def test_a_glob_names_the_file_with_a_malformed_line(tmp_path: Path) -> None:
    source, bad = _glob(tmp_path, (HEADER + "c,2024-03-01\n").encode())
    with pytest.raises(InputError) as err:
        load_transactions(source)
    assert str(err.value).startswith(
        f"{bad}, line 2: this line has 2 fields but the header has 3 (customer_id, timestamp, "
        "amount)"
    )


@pytest.mark.parametrize(
    ("second", "shown"),
    [
        (b"amount,customer_id,timestamp\n7,c,2024-03-01\n", "amount, customer_id, timestamp, ','"),
        (b"customer_id;timestamp;amount\nc;2024-03-01;7\n", "customer_id, timestamp, amount, ';'"),
    ],
    ids=["columns in another order", "another separator"],
)
def test_a_glob_refuses_a_file_with_another_header(
    tmp_path: Path, second: bytes, shown: str
) -> None:
    source, bad = _glob(tmp_path, second)
    names, delimiter = shown.rsplit(", ", 1)
    first = bad.parent / "a.csv"
    message = (
        f"{bad}, line 1: the header ({names}, separated by {delimiter}) differs from that of "
        f"{first} (customer_id, timestamp, amount, separated by ','): every file of "
        f"'{source}' must have the same columns, in the same order, with the same separator"
    )
    with pytest.raises(InputError) as err:
        load_transactions(source)
    assert str(err.value) == message
    assert _error("metrics", "pareto", "-i", source)["message"] == message


@pytest.mark.parametrize(
    ("second", "reason"),
    [
        (b"", "the file is empty"),
        (
            (HEADER + "c,2024-03-01,7\n").encode("utf-16"),
            'UTF-16 text, not UTF-8 (a spreadsheet\'s "Unicode text"); save the file as UTF-8',
        ),
    ],
    ids=["empty", "utf-16"],
)
def test_a_glob_checks_the_header_of_every_file(tmp_path: Path, second: bytes, reason: str) -> None:
    source, bad = _glob(tmp_path, second)
    with pytest.raises(InputError) as err:
        load_transactions(source)
    assert err.value.file == str(bad)
    assert err.value.reason == reason


def test_a_glob_of_subscriptions_names_the_bad_file(tmp_path: Path) -> None:
    folder = tmp_path / "subs"
    folder.mkdir()
    (folder / "1.csv").write_bytes(b"customer_id,mrr,start,plan\na,10,2024-01-01,Basic\n")
    (folder / "2.csv").write_bytes(b"customer_id,mrr,start,plan\nb,5,2024-01-01,Caf\xe9\n")
    error = _error("metrics", "mrr", "--subscriptions", str(folder / "*.csv"))
    assert error["message"] == f"{folder / '2.csv'}, line 2, column 'plan': {NOT_UTF8}"
