"""Date layouts analysts' files use: dotted and dashed European dates with a time, US
dates with AM/PM, and the rule for dates that read both day-first and month-first."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fidelite.analytics.answers import load_answers
from fidelite.analytics.errors import InputError
from fidelite.analytics.io import LoadOptions, load_transactions
from fidelite.analytics.subscriptions import load_subscriptions
from fidelite.cli.main import _register, app

_register()


def _times(path: Path, date_format: str | None = None) -> tuple[list[datetime], str, str | None]:
    loaded = load_transactions(path, LoadOptions(date_format=date_format))
    found = loaded.connection.execute("SELECT ts FROM transactions").fetchall()
    return [r[0] for r in found], loaded.date_format, loaded.date_warning


@pytest.mark.parametrize(
    ("values", "fmt"),
    [
        (("05.01.2024 10:00", "13.01.2024 18:45"), "%d.%m.%Y %H:%M"),
        (("05-01-2024 10:00", "13-01-2024 18:45"), "%d-%m-%Y %H:%M"),
        (("05/01/2024 10:00", "13/01/2024 18:45"), "%d/%m/%Y %H:%M"),
        (("1/5/2024 10:00 AM", "1/13/2024 6:45 PM"), "%m/%d/%Y %I:%M %p"),
    ],
)
def test_load_reads_common_layouts_with_a_time(
    write_csv: Callable[..., Path], values: tuple[str, str], fmt: str
) -> None:
    path = write_csv(f"customer_id,timestamp,amount\na,{values[0]},1\nb,{values[1]},2")
    times, used, warning = _times(path)
    assert times == [datetime(2024, 1, 5, 10, 0), datetime(2024, 1, 13, 18, 45)]
    assert (used, warning) == (fmt, None)  # a day above 12 settles the order


def test_load_reads_ambiguous_dates_day_first_and_says_so(
    write_csv: Callable[..., Path],
) -> None:
    path = write_csv("customer_id,timestamp,amount\na,1/5/2024 10:00 AM,1\nb,2/5/2024 9:00 PM,2")
    times, used, warning = _times(path)
    assert times == [datetime(2024, 5, 1, 10, 0), datetime(2024, 5, 2, 21, 0)]
    assert used == "%d/%m/%Y %I:%M %p"
    assert warning == (
        "every date also reads month first (e.g. '1/5/2024 10:00 AM'): read day first, as "
        "%d/%m/%Y %I:%M %p; pass --date-format %m/%d/%Y %I:%M %p if the month comes first"
    )
    forced, used, warning = _times(path, "%m/%d/%Y %I:%M %p")
    assert forced == [datetime(2024, 1, 5, 10, 0), datetime(2024, 2, 5, 21, 0)]
    assert warning is None


def test_load_gives_no_warning_when_both_readings_agree(write_csv: Callable[..., Path]) -> None:
    path = write_csv("customer_id,timestamp,amount\na,01/01/2024,1\nb,03/03/2024,2")
    assert _times(path)[1:] == ("%d/%m/%Y", None)


def test_cli_states_the_ambiguity_in_parameters(write_csv: Callable[..., Path]) -> None:
    path = write_csv("customer_id,timestamp,amount\na,1/5/2024 10:00 AM,1")
    result = CliRunner().invoke(app, ["metrics", "repeat-rate", "-i", str(path), "-f", "json"])
    assert result.exit_code == 0, result.output
    params = json.loads(result.stdout)["parameters"]
    assert params["date_format"] == "%d/%m/%Y %I:%M %p"
    assert params["date_warning"].startswith("every date also reads month first")


def test_load_refuses_mixed_day_first_and_month_first_dates(
    write_csv: Callable[..., Path],
) -> None:
    path = write_csv("customer_id,timestamp,amount\na,13/01/2024,1\nb,01/13/2024,2")
    with pytest.raises(InputError) as err:
        load_transactions(path)
    assert (err.value.row, err.value.column) == (3, "timestamp")
    assert err.value.reason == (
        "the column mixes date formats: line 2 is day/month/year (%d/%m/%Y) ('13/01/2024'), "
        "line 3 is month/day/year (%m/%d/%Y) ('01/13/2024'); one format per column: write "
        "every date in one layout"
    )


def test_a_column_mixing_documented_layouts_names_a_line_of_each(
    write_csv: Callable[..., Path],
) -> None:
    path = write_csv("customer_id,timestamp,amount\nx,15/01/2024,1\ny,2024-02-03,2\n")
    result = CliRunner().invoke(app, ["metrics", "retention", "-i", str(path), "-f", "json"])
    assert result.exit_code == 1
    error = json.loads(result.stdout)["error"]
    assert (error["row"], error["column"]) == (2, "timestamp")
    assert error["message"] == (
        f"{path}, line 2, column 'timestamp': the column mixes date formats: line 2 is "
        "day/month/year (%d/%m/%Y) ('15/01/2024'), line 3 is ISO 8601 ('2024-02-03'); one "
        "format per column: write every date in one layout"
    )
    # DuckDB's ISO 8601 cast takes 2024/06/02 too: the value is named by its own layout.
    path = write_csv("customer_id,timestamp,amount\nx,01.05.2024,1\ny,2024/06/02 10:00,2\n")
    with pytest.raises(InputError) as err:
        load_transactions(path)
    assert err.value.reason == (
        "the column mixes date formats: line 2 is day.month.year (%d.%m.%Y) ('01.05.2024'), "
        "line 3 is year/month/day (%Y/%m/%d %H:%M) ('2024/06/02 10:00'); one format per "
        "column: write every date in one layout"
    )


def test_mixed_layouts_in_parquet_and_across_subscription_columns(
    tmp_path: Path, write_csv: Callable[..., Path]
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "tx.parquet"
    table = {"customer_id": ["x", "y"], "timestamp": ["2024-01-05", "13.02.2024"]}
    pq.write_table(pa.table({**table, "amount": [1.0, 2.0]}), path)
    with pytest.raises(InputError) as err:
        load_transactions(path)
    assert (err.value.row, str(err.value)) == (2, (
        f"{path}, row 2, column 'timestamp': the column mixes date formats: row 1 is ISO 8601 "
        "('2024-01-05'), row 2 is day.month.year (%d.%m.%Y) ('13.02.2024'); one format per "
        "column: write every date in one layout"
    ))  # fmt: skip
    subs = write_csv("customer_id,mrr,start,end\na,10,2024-01-01,\nb,10,2024-01-01,10/02/2024\n")
    with pytest.raises(InputError) as err:
        load_subscriptions(subs)
    assert (err.value.row, err.value.column) == (3, "end")
    assert err.value.reason == (
        "the date columns mix formats: line 2 (column 'start') is ISO 8601 ('2024-01-01'), "
        "line 3 (column 'end') is day/month/year (%d/%m/%Y) ('10/02/2024'); one format for "
        "all of them: write every date in one layout"
    )


def test_a_date_in_no_layout_is_still_named_unparsable(write_csv: Callable[..., Path]) -> None:
    path = write_csv("customer_id,timestamp,amount\nx,2024-01-01,1\ny,13/01/2024,2\nz,soon,3\n")
    with pytest.raises(InputError) as err:
        load_transactions(path)
    assert err.value.row == 3  # the first value ISO 8601 cannot read, in a layout: mixed
    assert err.value.reason.startswith("the column mixes date formats: line 2 is ISO 8601")
    path = write_csv("customer_id,timestamp,amount\nx,2024-01-01,1\ny,soon,2\nz,13/01/2024,3\n")
    with pytest.raises(InputError) as err:
        load_transactions(path)
    assert (err.value.row, err.value.reason) == (
        3,
        "unparsable date (tried ISO 8601 and common day/month/year layouts): 'soon'",
    )


def test_subscriptions_read_day_first_dates_without_a_format(
    write_csv: Callable[..., Path],
) -> None:
    path = write_csv("customer_id,mrr,start,end\na,10,15/01/2024,01/03/2024\nb,20,01/02/2024,")
    loaded = load_subscriptions(path)
    rows = loaded.connection.execute(
        "SELECT customer_id, start_day, end_day FROM subscriptions ORDER BY customer_id"
    ).fetchall()
    assert rows == [("a", date(2024, 1, 15), date(2024, 3, 1)), ("b", date(2024, 2, 1), None)]


SUBS_DMY = "customer_id,mrr,start,end\na,10,01/01/2024,\nb,10,01/01/2024,10/02/2024\n"
DMY_WARNING = (
    "every date also reads month first (e.g. '10/02/2024'): read day first, as %d/%m/%Y; "
    "pass --date-format %m/%d/%Y if the month comes first"
)


def test_mrr_states_ambiguous_subscription_dates_in_parameters(
    write_csv: Callable[..., Path],
) -> None:
    path = write_csv(SUBS_DMY, "subs.csv")
    loaded = load_subscriptions(path)
    assert (loaded.date_format, loaded.date_warning) == ("%d/%m/%Y", DMY_WARNING)
    args = ["metrics", "mrr", "--subscriptions", str(path)]
    result = CliRunner().invoke(app, [*args, "-f", "json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert (out["parameters"]["date_format"], out["parameters"]["date_warning"]) == (
        "%d/%m/%Y",
        DMY_WARNING,
    )
    # Read day first: b left on 10 February, so February ends with a's 10 only.
    assert [(r["period"], r["ending_mrr"]) for r in out["rows"]] == [
        ("2024-01", 20.0),
        ("2024-02", 10.0),
    ]
    table = CliRunner().invoke(app, args)
    assert table.exit_code == 0, table.output
    assert "every date also reads month first (e.g. '10/02/2024')" in " ".join(table.stderr.split())
    forced = load_subscriptions(path, date_format="%m/%d/%Y")
    assert (forced.date_format, forced.date_warning) == ("%m/%d/%Y", None)


def test_mrr_reads_subscription_dates_in_the_business_time_zone(
    write_csv: Callable[..., Path],
) -> None:
    # b starts at 23:30 UTC on 31 January: 1 February in Paris, so February's new MRR
    # there and January's in UTC.
    path = write_csv("customer_id,mrr,start\na,10,2024-01-01\nb,10,2024-01-31T23:30:00Z\n")
    days = {
        zone: load_subscriptions(path, timezone=zone)
        .connection.execute("SELECT start_day FROM subscriptions ORDER BY customer_id")
        .fetchall()
        for zone in ("UTC", "Europe/Paris", "America/New_York")
    }
    assert days == {
        "UTC": [(date(2024, 1, 1),), (date(2024, 1, 31),)],
        "Europe/Paris": [(date(2024, 1, 1),), (date(2024, 2, 1),)],
        "America/New_York": [(date(2024, 1, 1),), (date(2024, 1, 31),)],
    }
    args = ["metrics", "mrr", "--subscriptions", str(path), "-f", "json"]
    result = CliRunner().invoke(app, [*args, "--timezone", "Europe/Paris"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["parameters"] == {
        "period": "month", "subscriptions": str(path), "rows": 2, "timezone": "Europe/Paris",
        "date_format": "ISO 8601", "engine": "duckdb", "money_places": 2,
    }  # fmt: skip
    assert [(r["period"], r["ending_mrr"]) for r in out["rows"]] == [
        ("2024-01", 10.0),
        ("2024-02", 20.0),
    ]
    utc = json.loads(CliRunner().invoke(app, args).stdout)
    assert utc["parameters"]["timezone"] == "UTC"
    # In UTC the last change is on 31 January: January is the only month.
    assert [(r["period"], r["ending_mrr"]) for r in utc["rows"]] == [("2024-01", 20.0)]
    with pytest.raises(InputError, match="unknown time zone 'Mars/Base'"):
        load_subscriptions(path, timezone="Mars/Base")


def test_subscriptions_without_ambiguity_state_the_format_only(
    write_csv: Callable[..., Path],
) -> None:
    described = load_subscriptions(write_csv("customer_id,mrr,start\na,10,2024-01-05")).describe()
    assert described == {"subscriptions": described["subscriptions"], "rows": 1,
                         "timezone": "UTC", "date_format": "ISO 8601"}  # fmt: skip


def test_subscriptions_name_the_date_no_layout_reads(write_csv: Callable[..., Path]) -> None:
    path = write_csv("customer_id,mrr,start,end\na,10,15/01/2024,\nb,20,01/02/2024,soon")
    with pytest.raises(InputError) as err:
        load_subscriptions(path)
    assert (err.value.row, err.value.column) == (3, "end")
    assert err.value.reason == (
        "unparsable end date (tried ISO 8601 and common day/month/year layouts): 'soon'"
    )


def test_answers_read_dotted_dates_with_a_time(write_csv: Callable[..., Path]) -> None:
    path = write_csv("customer_id,timestamp,question,score\na,05.01.2024 10:00,nps,9")
    loaded = load_answers(path)
    assert loaded.date_format == "%d.%m.%Y %H:%M"
    assert loaded.connection.execute("SELECT day FROM answers").fetchall() == [(date(2024, 1, 5),)]


@pytest.mark.parametrize("value", ["infinity", "-infinity"])
def test_load_refuses_an_infinite_date(write_csv: Callable[..., Path], value: str) -> None:
    path = write_csv(f"customer_id,timestamp,amount\na,2024-01-01,1\nb,{value},2")
    for materialize in (True, False):
        with pytest.raises(InputError) as err:
            load_transactions(path, LoadOptions(materialize=materialize))
        assert (err.value.row, err.value.column) == (3, "timestamp")
        assert err.value.reason.startswith("unparsable date")
    result = CliRunner().invoke(app, ["metrics", "rfm", "-i", str(path), "-f", "json"])
    assert result.exit_code == 1, result.output
    assert json.loads(result.stdout)["error"]["row"] == 3
    subs = write_csv(f"customer_id,mrr,start,end\na,10,2024-01-01,{value}", "subs.csv")
    with pytest.raises(InputError, match="line 2, column 'end': unparsable end date"):
        load_subscriptions(subs)
