"""Local times in the business's zone, whether the table is copied at load or read later
through a view: a view is evaluated when a query reads it, and by then Ibis has set
DuckDB's session zone to UTC, so the reading must not depend on that setting."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pyarrow.csv as pa_csv
import pytest
from typer.testing import CliRunner

from fidelite.analytics.engine import open_dataset
from fidelite.analytics.io import ISO, LoadOptions, _parse_expr
from fidelite.analytics.summary import calibration_holdout_summary, customer_summary
from fidelite.cli.main import _register, app

_register()
runner = CliRunner()
ZONES = ("Europe/Paris", "America/New_York")
# Naive and date-only values around midnight and on both DST changes of each zone (a
# naive 02:30 on a spring-forward day does not exist there: it is kept as written),
# and values with an offset that land on either side of a local midnight or a change.
TIMESTAMPS = (
    "2024-04-12 23:59:00",
    "2024-04-13 00:00:00",
    "2024-04-01",
    "2024-03-31 02:30:00",
    "2024-10-27 02:30:00",
    "2024-03-10 02:30:00",
    "2024-11-03 01:30:00",
    "2024-03-31",
    "2024-03-10",
    "2024-04-12T22:30:00Z",
    "2024-04-13T03:30:00+00:00",
    "2024-04-12T23:59:00.5-04:00",
    "2024-03-31T00:59:00Z",
    "2024-03-31T01:00:00+00:00",
    "2024-03-10T06:59:00Z",
    "2024-03-10T07:00:00+0000",
    "2024-10-27T00:30:00Z",
    "2024-11-03T05:30:00Z",
    "2024-04-12 22:30:00 UTC",
)


def _local(text: str, zone: str) -> datetime:
    """What the file means: a value with an offset or zone is converted to ``zone``;
    one without is the local wall-clock time as written."""
    if text.endswith(" UTC"):
        text = text.removesuffix(" UTC") + "+00:00"
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        return value
    return value.astimezone(ZoneInfo(zone)).replace(tzinfo=None)


def _has_zone(text: str) -> bool:
    return text.endswith(("Z", "UTC")) or "+" in text or "-" in text[10:]


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize("materialize", [True, False])
@pytest.mark.parametrize("held", ["both", "no offsets", "offsets only"])
def test_table_and_view_read_the_same_local_times(
    write_csv: Callable[..., Path], zone: str, materialize: bool, held: str
) -> None:
    # A column whose values all carry an offset, or none does, is read without a test
    # per row: each of the three readings must give the same times.
    texts = [t for t in TIMESTAMPS if held == "both" or _has_zone(t) == (held == "offsets only")]
    lines = [f"c{n:02d},{text},1" for n, text in enumerate(texts)]
    path = write_csv("customer_id,timestamp,amount\n" + "\n".join(lines))
    ds = open_dataset(path, options=LoadOptions(timezone=zone, materialize=materialize))
    t = ds.transactions
    found = ds.execute(t.select("customer_id", "ts", "day").order_by("customer_id")).to_pylist()
    expected = [_local(text, zone) for text in texts]
    assert [r["ts"] for r in found] == expected
    assert [r["day"] for r in found] == [e.date() for e in expected]


@pytest.mark.parametrize("zone", ZONES)
def test_summary_is_the_same_from_a_view_and_from_a_table(
    write_csv: Callable[..., Path], zone: str
) -> None:
    path = write_csv(
        """
        customer_id,timestamp,amount
        x,2024-04-12 23:59:00,3
        x,2024-04-20,4
        y,2024-04-14T23:59:00Z,5
        y,2024-04-14 23:59:00,6
        z,2024-03-31 02:30:00,7
        z,2024-04-30 10:00:00,4
        """
    )
    lazy, table = (
        customer_summary(path, options=LoadOptions(timezone=zone, materialize=m)).to_pylist()
        for m in (False, True)
    )
    assert lazy == table
    # x's first purchase is on 12 April, local time as written, in every zone.
    assert (lazy[0]["customer_id"], lazy[0]["T"]) == ("x", 18.0)


def test_date_only_purchases_stay_in_the_calibration_period_in_new_york(
    write_csv: Callable[..., Path],
) -> None:
    path = write_csv(
        """
        customer_id,timestamp,amount
        x,2024-04-01,3
        x,2024-04-20,4
        x,2024-05-01,4
        y,2024-05-01,4
        """
    )
    got = calibration_holdout_summary(
        path,
        calibration_end=date(2024, 4, 30),
        options=LoadOptions(timezone="America/New_York", materialize=False),
    ).to_pylist()
    assert [(r["customer_id"], r["frequency_cal"], r["T_cal"]) for r in got] == [("x", 1, 29.0)]
    assert got[0]["frequency_holdout"] == 1


def test_clv_predict_and_rfm_agree_on_each_customer_age(write_csv: Callable[..., Path]) -> None:
    path = write_csv(
        """
        customer_id,timestamp,amount
        a,2024-04-12 23:59:00,3
        a,2024-04-20 10:00:00,4
        b,2024-04-14T21:59:00Z,5
        b,2024-04-14 23:59:00,6
        b,2024-05-02 08:00:00,6
        c,2024-03-01,2
        c,2024-03-31 02:30:00,2
        c,2024-04-30 10:00:00,4
        """
    )
    zone = ["--timezone", "Europe/Paris"]
    out = path.with_name("pred.csv")
    result = runner.invoke(
        app,
        [
            "clv",
            "predict",
            "-i",
            str(path),
            *zone,
            "--time-unit",
            "day",
            "-o",
            str(out),
            "--allow-unconverged",
        ],
    )
    assert result.exit_code == 0, result.output
    predicted = {r["customer_id"]: r["T"] for r in pa_csv.read_csv(out).to_pylist()}
    rfm = runner.invoke(app, ["metrics", "rfm", "-i", str(path), *zone, "-f", "json"])
    assert rfm.exit_code == 0, rfm.output
    ages = {r["customer_id"]: r["T"] for r in json.loads(rfm.stdout)["rows"]}
    assert predicted == ages == {"a": 20, "b": 18, "c": 62}


@pytest.mark.parametrize(
    "text",
    [
        "2024-04-12 23:59:00",
        "2024-04-12T23:59:00.123456",
        "2024-04-12",
        "12024-04-12 10:00",
        "2024-4-2 10:00",
        "2024-04-12T23:59:00Z",
        "2024-04-12T23:59:00.123456789Z",
        "2024-04-12T23:59:00-05",
        "2024-04-12T23:59:00+0530",
        "2024-04-12T23:59:00+01:00:30",
        "2024-04-12 23:59:00 UTC",
        "2024-04-12 23:59 EST",
        "2024-04-12 23:59:00 Etc/GMT+5",
        "2024-04-12 23:59:00.5 America/New_York",
        "2024-04-12 23:59:00 +01",
        "2024-04-12-05",
        "epoch",
    ],
)
def test_an_iso_value_reads_the_same_in_any_session_zone(text: str) -> None:
    con = duckdb.connect()
    expr = _parse_expr("t", ISO, "'Europe/Paris'")
    read = []
    for session in ("UTC", "Asia/Tokyo", "America/New_York"):
        con.execute("SET TimeZone = ?", [session])
        read.append(con.execute(f"SELECT {expr} FROM (SELECT ?::VARCHAR AS t)", [text]).fetchall())
    assert read[0] == read[1] == read[2]
