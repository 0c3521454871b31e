"""Two-digit years: DuckDB's ISO 8601 cast reads ``05/01/24`` as the year 5 and strptime's
``%Y`` reads ``05.01.24`` as the year 24. A year is read only with its 4 digits, unless
the user's ``--date-format`` asks for ``%y``; every documented layout with a 4-digit
year keeps being read."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from fidelite.analytics.answers import load_answers
from fidelite.analytics.errors import InputError
from fidelite.analytics.io import DATE_FORMATS, LoadOptions, load_transactions
from fidelite.analytics.subscriptions import load_subscriptions
from fidelite.cli.main import _register, app

_register()

TRIED = "unparsable date (tried ISO 8601 and common day/month/year layouts)"


def _advice(layout: str) -> str:
    return (
        "; a year is read only with its 4 digits (2024, not 24): for a file with two-digit "
        f"years pass the layout it uses, e.g. --date-format '{layout}'"
    )


def _refused(path: Path, date_format: str | None = None) -> InputError:
    """The error loading ``path``; no table was created on the connection."""
    con = duckdb.connect()
    with pytest.raises(InputError) as err:
        load_transactions(path, LoadOptions(date_format=date_format), connection=con)
    tables = con.execute("SELECT table_name FROM duckdb_tables()").fetchall()
    assert tables == []
    return err.value


@pytest.mark.parametrize(
    ("value", "layout"),
    [
        ("05/01/24", "%d/%m/%y"),  # ISO 8601 cast: 24 January of the year 5
        ("05.01.24", "%d.%m.%y"),  # %d.%m.%Y: 5 January of the year 24
        ("12/31/24", "%m/%d/%y"),  # %m/%d/%Y: 31 December of the year 24
        ("24-01-05", "%d-%m-%y"),  # ISO 8601 cast: the year 24
        ("05-01-24", "%d-%m-%y"),  # ISO 8601 cast: the year 5
        ("5/1/24", "%d/%m/%y"),
        ("05/01/24 14:30", "%d/%m/%y %H:%M"),
        ("05.01.24 14:30:15", "%d.%m.%y %H:%M:%S"),
        ("1/15/24 10:00 AM", "%m/%d/%y %I:%M %p"),
    ],
)
def test_a_two_digit_year_is_refused_with_the_format_to_pass(
    write_csv: Callable[..., Path], value: str, layout: str
) -> None:
    path = write_csv(f"customer_id,timestamp,amount\na,{value},1\nb,{value},2\n")
    err = _refused(path)
    assert (err.file, err.row, err.column) == (str(path), 2, "timestamp")
    assert err.reason == f"{TRIED}: '{value}'{_advice(layout)}"


@pytest.mark.parametrize(
    "value",
    [
        "024-01-05",  # 3 digits
        "02024-01-05",  # DuckDB reads 5 digits as 2024
        "12024-01-05",  # and as the year 12024
        "05/01/124",
        "05.01.02024",
    ],
)
def test_a_year_of_other_than_4_digits_is_unparsable(
    write_csv: Callable[..., Path], value: str
) -> None:
    path = write_csv(f"customer_id,timestamp,amount\na,2024-01-04,1\nb,{value},2\n")
    err = _refused(path)
    assert (err.row, err.column, err.reason) == (3, "timestamp", f"{TRIED}: '{value}'")


def test_a_short_year_among_full_ones_names_its_line(write_csv: Callable[..., Path]) -> None:
    path = write_csv("customer_id,timestamp,amount\na,15/01/2024,1\nb,16/01/24,2\n")
    err = _refused(path)
    assert (err.row, err.reason) == (3, f"{TRIED}: '16/01/24'{_advice('%d/%m/%y')}")


@pytest.mark.parametrize(
    ("values", "date_format", "expected"),
    [
        (("05/01/24", "31/12/99"), "%d/%m/%y", (datetime(2024, 1, 5), datetime(1999, 12, 31))),
        (("05.01.24", "12.02.24"), "%d.%m.%y", (datetime(2024, 1, 5), datetime(2024, 2, 12))),
        (("12/31/24", "01/02/68"), "%m/%d/%y", (datetime(2024, 12, 31), datetime(2068, 1, 2))),
        (
            ("05/01/24 14:30", "06/01/24 09:05"),
            "%d/%m/%y %H:%M",
            (datetime(2024, 1, 5, 14, 30), datetime(2024, 1, 6, 9, 5)),
        ),
    ],
)
def test_a_date_format_with_y_reads_two_digit_years(
    write_csv: Callable[..., Path],
    values: tuple[str, str],
    date_format: str,
    expected: tuple[datetime, datetime],
) -> None:
    path = write_csv(f"customer_id,timestamp,amount\na,{values[0]},1\nb,{values[1]},2\n")
    loaded = load_transactions(path, LoadOptions(date_format=date_format))
    found = loaded.connection.execute("SELECT ts FROM transactions ORDER BY customer_id")
    assert tuple(r[0] for r in found.fetchall()) == expected
    assert (loaded.date_format, loaded.date_warning) == (date_format, None)


@pytest.mark.parametrize(
    ("value", "date_format", "advice"),
    [
        ("05/01/24", "%d/%m/%Y", _advice("%d/%m/%y")),
        ("05.01.24 10:00", "%d.%m.%Y %H:%M", _advice("%d.%m.%y %H:%M")),
        ("24-01-05", "%Y-%m-%d", _advice("%y-%m-%d")),  # the user's layout, with %y
        ("5 Jan 24", "%d %b %Y", _advice("%d %b %y")),  # the year's place read from the value
        ("Jan 5 24", "%b %d %Y", _advice("%b %d %y")),
        ("Jan 5 124", "%b %d %Y", ""),  # %y does not read it either: no advice
    ],
)
def test_a_date_format_with_capital_y_wants_4_digits(
    write_csv: Callable[..., Path], value: str, date_format: str, advice: str
) -> None:
    path = write_csv(f"customer_id,timestamp,amount\na,{value},1\n")
    err = _refused(path, date_format)
    assert (err.row, err.column) == (2, "timestamp")
    assert err.reason == f"unparsable date (format {date_format}): '{value}'{advice}"


@pytest.mark.parametrize(
    ("value", "date_format", "expected"),
    [
        ("5 Jan 2024", "%d %b %Y", datetime(2024, 1, 5)),
        ("Jan 5 2024", "%b %d %Y", datetime(2024, 1, 5)),
        ("20240105", "%Y%m%d", datetime(2024, 1, 5)),
        ("2024-01-05 10:00", "%Y-%m-%d %H:%M", datetime(2024, 1, 5, 10, 0)),
        ("5/1/0999", "%d/%m/%Y", datetime(999, 1, 5)),  # written in full: as it says
        ("5 Jan 0999", "%d %b %Y", datetime(999, 1, 5)),
    ],
)
def test_a_date_format_with_capital_y_reads_4_digit_years(
    write_csv: Callable[..., Path], value: str, date_format: str, expected: datetime
) -> None:
    path = write_csv(f"customer_id,timestamp,amount\na,{value},1\n")
    loaded = load_transactions(path, LoadOptions(date_format=date_format))
    found = loaded.connection.execute("SELECT ts FROM transactions").fetchall()
    assert found == [(expected,)]


@pytest.mark.parametrize("layout", DATE_FORMATS)
def test_every_automatic_layout_still_reads_4_digit_years(
    write_csv: Callable[..., Path], layout: str
) -> None:
    # Day 13 settles day-first against month-first; a day-first layout must win it.
    when = [datetime(2024, 1, 13, 9, 5, 7), datetime(2023, 12, 31, 23, 59, 58)]
    precise = [w.replace(second=0) if "%S" not in layout else w for w in when]
    if "%H" not in layout and "%I" not in layout:
        precise = [w.replace(hour=0, minute=0, second=0) for w in when]
    rows = "\n".join(f"c{i},{w.strftime(layout)},1" for i, w in enumerate(when))
    path = write_csv(f"customer_id,timestamp,amount\n{rows}\n")
    loaded = load_transactions(path)
    found = loaded.connection.execute("SELECT ts FROM transactions ORDER BY customer_id")
    assert [r[0] for r in found.fetchall()] == precise
    # DuckDB's ISO 8601 cast reads year/month/day with slashes: ISO 8601 is tried first.
    assert loaded.date_format == ("ISO 8601" if layout.startswith("%Y/") else layout)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-01-05", datetime(2024, 1, 5)),
        ("2024-01-05T10:00:00", datetime(2024, 1, 5, 10, 0)),
        ("2024-01-05 10:00:00.250", datetime(2024, 1, 5, 10, 0, 0, 250000)),
        ("2024-01-05T10:00:00+02:00", datetime(2024, 1, 5, 8, 0)),
        ("2024-01-05T23:30:00Z", datetime(2024, 1, 5, 23, 30)),
        ("2024-1-5", datetime(2024, 1, 5)),
    ],
)
def test_iso_dates_with_4_digit_years_still_read(
    write_csv: Callable[..., Path], value: str, expected: datetime
) -> None:
    path = write_csv(f"customer_id,timestamp,amount\na,{value},1\n")
    loaded = load_transactions(path)
    found = loaded.connection.execute("SELECT ts FROM transactions").fetchall()
    assert (found, loaded.date_format) == ([(expected,)], "ISO 8601")


def test_parquet_text_dates_with_two_digit_years_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "tx.parquet"
    table = {"customer_id": ["a", "b"], "timestamp": ["05/01/2024", "06/01/24"]}
    pq.write_table(pa.table({**table, "amount": [1.0, 2.0]}), path)
    err = _refused(path)
    assert (err.row, err.column) == (2, "timestamp")
    assert err.reason == f"{TRIED}: '06/01/24'{_advice('%d/%m/%y')}"


def test_survey_answers_refuse_two_digit_years_and_read_them_with_y(
    write_csv: Callable[..., Path],
) -> None:
    path = write_csv("customer_id,timestamp,question,score\nC1,05/01/24,nps,10\nC2,12/02/24,nps,3")
    con = duckdb.connect()
    with pytest.raises(InputError) as err:
        load_answers(path, connection=con)
    assert (err.value.row, err.value.column) == (2, "timestamp")
    assert err.value.reason == f"{TRIED}: '05/01/24'{_advice('%d/%m/%y')}"
    assert con.execute("SELECT table_name FROM duckdb_tables()").fetchall() == []
    loaded = load_answers(path, date_format="%d/%m/%y")
    found = loaded.connection.execute("SELECT day FROM answers ORDER BY customer_id").fetchall()
    assert found == [(date(2024, 1, 5),), (date(2024, 2, 12),)]


def test_subscriptions_refuse_two_digit_years_in_either_date_column(
    write_csv: Callable[..., Path],
) -> None:
    path = write_csv("customer_id,mrr,start,end\nC1,10,05/01/2024,\nC2,10,05/01/2024,05/02/24")
    con = duckdb.connect()
    with pytest.raises(InputError) as err:
        load_subscriptions(path, connection=con)
    assert (err.value.row, err.value.column) == (3, "end")
    assert err.value.reason == (
        "unparsable end date (tried ISO 8601 and common day/month/year layouts): "
        f"'05/02/24'{_advice('%d/%m/%y')}"
    )
    assert con.execute("SELECT table_name FROM duckdb_tables()").fetchall() == []
    path = write_csv("customer_id,mrr,start,end\nC1,10,05/01/24,\nC2,10,05/01/24,05/02/24")
    loaded = load_subscriptions(path, date_format="%d/%m/%y")
    found = loaded.connection.execute(
        "SELECT start_day, end_day FROM subscriptions ORDER BY customer_id"
    ).fetchall()
    assert found == [(date(2024, 1, 5), None), (date(2024, 1, 5), date(2024, 2, 5))]


def test_cli_exits_1_naming_the_value_and_reads_it_with_the_format_given(
    write_csv: Callable[..., Path],
) -> None:
    path = write_csv("client;date;montant\nC1;05/01/24;12,50\nC2;12/02/24;8,00\n")
    args = ["metrics", "retention", "-i", str(path), "--customer-col", "client"]
    args += ["--time-col", "date", "--amount-col", "montant", "-f", "json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    error = json.loads(result.stdout)["error"]
    assert (error["row"], error["column"]) == (2, "date")
    assert error["message"] == (
        f"{path}, line 2, column 'date': {TRIED}: '05/01/24'{_advice('%d/%m/%y')}"
    )
    result = CliRunner().invoke(app, [*args, "--date-format", "%d/%m/%y"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["parameters"]["date_format"] == "%d/%m/%y"
    assert [row["period"] for row in out["rows"]] == ["2024-01", "2024-02"]
