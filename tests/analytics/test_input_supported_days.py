"""Timestamps whose local day is outside 0001-01-01..9998-12-31 are refused when loading
(naming file, line and column), not met by a metric as an overflow."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fidelite.analytics.answers import load_answers
from fidelite.analytics.engine import open_dataset
from fidelite.analytics.errors import InputError
from fidelite.analytics.io import LoadOptions, load_transactions
from fidelite.analytics.metrics.retention import retention

REASON = "date outside the supported days, 0001-01-01 to 9998-12-31 (the local day in time zone {})"


def _csv(tmp_path: Path, *stamps: str) -> Path:
    path = tmp_path / "tx.csv"
    lines = ["customer_id,timestamp,amount", *(f"c{i},{s},1" for i, s in enumerate(stamps))]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(
    ("stamp", "tz"),
    [
        ("9999-12-31", "UTC"),
        ("0000-06-01", "UTC"),
        ("2024-01-01 (BC)", "UTC"),
        ("0001-01-01T00:30:00+01:00", "UTC"),  # 0000-12-31 23:30 in UTC
        ("9999-12-31T23:30:00-05:00", "UTC"),  # 10000-01-01 in UTC
        ("9998-12-31T23:30:00+00:00", "Europe/Paris"),  # 9999-01-01 in Paris
    ],
)
def test_out_of_range_csv_refused(tmp_path: Path, stamp: str, tz: str) -> None:
    path = _csv(tmp_path, "2024-01-01", stamp)
    with pytest.raises(InputError) as info:
        load_transactions(path, LoadOptions(timezone=tz))
    err = info.value
    assert (err.file, err.row, err.column) == (str(path), 3, "timestamp")
    assert str(err).endswith(f"{REASON.format(tz)}: '{stamp}'")


def test_edges_load_and_compute(tmp_path: Path) -> None:
    path = _csv(tmp_path, "0001-01-01", "9998-12-31T23:59:59", "9999-01-01T00:30:00+01:00")
    loaded = load_transactions(path, LoadOptions(timezone="UTC"))
    days = loaded.connection.execute("SELECT min(day), max(day) FROM transactions").fetchall()
    assert days == [(date(1, 1, 1), date(9998, 12, 31))]
    rows = retention(open_dataset(loaded), "week").rows
    assert rows[0]["period"] == "1-W01" and rows[-1]["period"] == "9998-W53"


def test_out_of_range_parquet_refused(tmp_path: Path) -> None:
    path = tmp_path / "tx.parquet"
    table = pa.table(
        {
            "customer_id": ["a", "b"],
            "timestamp": pa.array([date(2024, 1, 1), date(9999, 12, 31)], pa.date32()),
            "amount": [1.0, 2.0],
        }
    )
    pq.write_table(table, path)
    with pytest.raises(InputError) as info:
        load_transactions(path)
    err = info.value
    assert (err.file, err.row, err.column) == (str(path), 2, "timestamp")
    assert REASON.format("UTC") in str(err)


def test_out_of_range_answer_refused(tmp_path: Path) -> None:
    path = tmp_path / "ans.csv"
    path.write_text(
        "customer_id,timestamp,question,score\na,2024-01-01,nps,9\nb,9999-12-30,nps,3\n"
    )
    with pytest.raises(InputError) as info:
        load_answers(path)
    err = info.value
    assert (err.file, err.row, err.column) == (str(path), 3, "timestamp")
    assert str(err).endswith(f"{REASON.format('UTC')}: '9999-12-30'")
