"""The supported-days check reads the value the format scan parsed: loading parses each
timestamp once before the table is made (not again in the validation scan), and refuses
the same values, with the same error, in the same order among a file's faults."""

from __future__ import annotations

from pathlib import Path

import pytest

from fidelite.analytics import io
from fidelite.analytics.errors import InputError
from fidelite.analytics.io import LoadOptions, load_transactions
from fidelite.analytics.support import load_support_cases

REASON = "date outside the supported days, 0001-01-01 to 9998-12-31 (the local day in time zone {})"
PARSE = 'try_cast(trim(CAST("timestamp" AS VARCHAR)) AS TIMESTAMP'


def _csv(tmp_path: Path, rows: list[str], header: str = "customer_id,timestamp,amount") -> Path:
    path = tmp_path / "tx.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def _scans(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    scan = io._Checker.scan

    def spy(self: io._Checker, sql: str) -> list[tuple[object, ...]]:
        seen.append(sql)
        return scan(self, sql)

    monkeypatch.setattr(io._Checker, "scan", spy)
    return seen


@pytest.mark.parametrize("stamp", ["2024-01-05T10:00:00", "2024-01-05T10:00:00+01:00"])
def test_timestamps_parsed_once_before_the_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stamp: str
) -> None:
    path = _csv(tmp_path, [f"a,{stamp},1", "b,2024-02-01T08:00:00+01:00,2"])
    seen = _scans(monkeypatch)
    loaded = load_transactions(path, LoadOptions(timezone="Europe/Paris"))
    validating = [sql for sql in seen if not sql.startswith("CREATE")]
    assert sum(PARSE in sql for sql in validating) == 1
    ranged = [sql for sql in validating if "NOT BETWEEN" in sql]
    assert len(ranged) == 1 and PARSE in ranged[0]
    got = loaded.connection.execute("SELECT CAST(ts AS VARCHAR) FROM transactions ORDER BY ts")
    assert got.fetchall() == [("2024-01-05 10:00:00",), ("2024-02-01 08:00:00",)]


def test_out_of_range_still_reported_before_a_bad_amount_above_it(tmp_path: Path) -> None:
    path = _csv(tmp_path, ["a,2024-01-01,1", "b,2024-01-02,lots", "c,9999-12-31,3"])
    with pytest.raises(InputError) as info:
        load_transactions(path)
    err = info.value
    assert (err.file, err.row, err.column) == (str(path), 4, "timestamp")
    assert str(err).endswith(f"{REASON.format('UTC')}: '9999-12-31'")


def test_missing_date_still_reported_before_out_of_range(tmp_path: Path) -> None:
    path = _csv(tmp_path, ["a,9999-12-31,1", "b,,2"])
    with pytest.raises(InputError) as info:
        load_transactions(path)
    err = info.value
    assert (err.row, err.column) == (3, "timestamp")
    assert "missing date" in str(err)


def test_mixed_offsets_out_of_range_refused(tmp_path: Path) -> None:
    rows = ["a,2024-01-01T10:00:00,1", "b,9998-12-31T23:30:00+00:00,2"]
    path = _csv(tmp_path, rows)
    with pytest.raises(InputError) as info:
        load_transactions(path, LoadOptions(timezone="Europe/Paris"))
    err = info.value
    assert (err.row, err.column) == (3, "timestamp")
    assert str(err).endswith(f"{REASON.format('Europe/Paris')}: '9998-12-31T23:30:00+00:00'")


def test_forced_format_out_of_range_refused(tmp_path: Path) -> None:
    path = _csv(tmp_path, ["a,01/02/2024,1", "b,31/12/9999,2"])
    with pytest.raises(InputError) as info:
        load_transactions(path, LoadOptions(date_format="%d/%m/%Y"))
    err = info.value
    assert (err.row, err.column) == (3, "timestamp")
    assert str(err).endswith(f"{REASON.format('UTC')}: '31/12/9999'")


def test_detected_layout_out_of_range_refused(tmp_path: Path) -> None:
    # Not ISO 8601: the layout is found by the second scan, which has no parsed value
    # to read, so the check runs in the validation scan as before.
    path = _csv(tmp_path, ["a,25/01/2024,1", "b,31/12/9999,2"])
    with pytest.raises(InputError) as info:
        load_transactions(path)
    err = info.value
    assert (err.row, err.column) == (3, "timestamp")
    assert str(err).endswith(f"{REASON.format('UTC')}: '31/12/9999'")


def test_support_case_out_of_range_refused(tmp_path: Path) -> None:
    path = tmp_path / "support.csv"
    path.write_text("customer_id,timestamp\na,2024-01-01T10:00:00\nb,9999-12-31T00:00:00\n")
    with pytest.raises(InputError) as info:
        load_support_cases(path)
    err = info.value
    assert (err.file, err.row, err.column) == (str(path), 3, "timestamp")
    assert str(err).endswith(f"{REASON.format('UTC')}: '9999-12-31T00:00:00'")
