"""Every `fidelite clv` command takes the column options of `fidelite metrics`.

A file whose refund and order columns have other names (``Erstattung``,
``Bestellung``) must give what the same file with the standard names gives: a refund
column that is not mapped would be read as purchases, an order column that is not
mapped would make every row an order.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.csv as pa_csv
import pytest
from typer.testing import CliRunner

from fidelite.cli.main import _register, app

_register()
runner = CliRunner()

# k1's order o2 is two lines; k2's last row (2024-03-31) is a refund.
ROWS = """k1,2024-02-10,20,o1,0
k1,2024-03-20,30,o2,0
k1,2024-03-20,10,o2,0
k2,2024-02-20,100,o3,0
k2,2024-03-31,40,o4,1
k3,2024-01-15,50,o5,0
k3,2024-03-05,25,o6,0
"""
STANDARD = "customer_id,timestamp,amount,order_id,refund\n" + ROWS
RENAMED = "Kunde,Datum,Betrag,Bestellung,Erstattung\n" + ROWS
MAPPING = ["--customer-col", "Kunde", "--time-col", "Datum", "--amount-col", "Betrag",
           "--order-col", "Bestellung", "--refund-col", "Erstattung"]  # fmt: skip


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "standard.csv").write_text(STANDARD)
    (tmp_path / "renamed.csv").write_text(RENAMED)
    return tmp_path / "standard.csv", tmp_path / "renamed.csv"


def _json(*args: str) -> Any:
    result = runner.invoke(app, [*args, "-f", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _without_input(value: Any) -> Any:
    """The output without the input file's name (the only thing that may differ)."""
    if isinstance(value, dict):
        return {k: _without_input(v) for k, v in value.items() if k not in ("input", "out")}
    if isinstance(value, list):
        return [_without_input(v) for v in value]
    return value


def test_health_reads_renamed_refund_and_order_columns(files: tuple[Path, Path]) -> None:
    standard, renamed = files
    args = ["clv", "health", "--window-days", "30"]
    mapped = _json(*args, "-i", str(renamed), *MAPPING)
    assert _without_input(mapped) == _without_input(_json(*args, "-i", str(standard)))
    k1, k2, _ = mapped["rows"]
    # k2's refund of 2024-03-31 is no purchase: last purchase 2024-02-20, 40 days before
    # the as-of day; 0.5 ** (40/90) x 0.3/0.7 x 100 = 31.49, no purchase in the recent
    # window -> trends 0.
    assert (k2["days_since_last_purchase"], k2["health_score"]) == (40, 31.49)
    # k1's o2 is one order: 1 recent and 1 previous -> 0.5 x 0.25/0.7 x 100 = 17.86.
    assert (k1["frequency_trend_points"], k1["health_score"]) == (17.86, 71.52)
    # Without the options the refund is a purchase on the as-of day and o2 two orders.
    unmapped = _json(*args, "-i", str(renamed), "--customer-col", "Kunde",
                     "--time-col", "Datum", "--amount-col", "Betrag")  # fmt: skip
    assert unmapped["rows"][1]["days_since_last_purchase"] == 0
    assert unmapped["rows"][0]["frequency_trend_points"] == 23.81


def test_fit_reads_a_renamed_refund_column(files: tuple[Path, Path]) -> None:
    standard, renamed = files
    args = ["clv", "fit", "-m", "bgnbd", "--time-unit", "day"]
    mapped = _json(*args, "-i", str(renamed), *MAPPING)
    assert _without_input(mapped) == _without_input(_json(*args, "-i", str(standard)))
    assert (mapped["n_customers"], mapped["n_unique"]) == (3, 3)
    unmapped = _json(*args, "-i", str(renamed), *MAPPING[:6])
    assert unmapped["log_likelihood"] != mapped["log_likelihood"]


def test_predict_reads_a_renamed_refund_column(files: tuple[Path, Path], tmp_path: Path) -> None:
    standard, renamed = files
    args = ["clv", "predict", "--time-unit", "day", "--horizon", "30", "--allow-unconverged"]
    mapped = _json(*args, "-i", str(renamed), "-o", str(tmp_path / "renamed_out.csv"), *MAPPING)
    reference = _json(*args, "-i", str(standard), "-o", str(tmp_path / "standard_out.csv"))
    assert _without_input(mapped) == _without_input(reference)
    written = pa_csv.read_csv(tmp_path / "renamed_out.csv").to_pylist()
    assert written == pa_csv.read_csv(tmp_path / "standard_out.csv").to_pylist()
    # k2 bought on one day only (the other row is a refund): no repeat purchase; its T
    # runs from 2024-02-20 to the last day in the data, 2024-03-31.
    assert [(r["customer_id"], r["frequency"], r["recency"], r["T"], r["monetary_value"])
            for r in written] == [
        ("k1", 1, 39.0, 50.0, 40.0), ("k2", 0, 0.0, 40.0, 0.0), ("k3", 1, 50.0, 76.0, 25.0)
    ]  # fmt: skip


def test_validate_reads_a_renamed_refund_column(files: tuple[Path, Path]) -> None:
    standard, renamed = files
    args = ["clv", "validate", "--calibration-end", "2024-03-10", "--time-unit", "day"]
    mapped = _json(*args, "-i", str(renamed), *MAPPING)
    assert _without_input(mapped) == _without_input(_json(*args, "-i", str(standard)))
    # Holdout (2024-03-10, 2024-03-31]: k1's purchase of 2024-03-20; k2's refund is none.
    assert (mapped["customers"], mapped["actual_total"]) == (3, 1.0)
    unmapped = _json(*args, "-i", str(renamed), *MAPPING[:6])
    assert unmapped["actual_total"] == 2.0


@pytest.mark.parametrize(
    "command",
    [["fit", "-m", "bgnbd"], ["predict"], ["validate", "--calibration-end", "2024-03-10"],
     ["health"]],
)  # fmt: skip
@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--timezone", "Mars/Olympus"], "--timezone: unknown time zone 'Mars/Olympus'"),
        (["--delimiter", ";;"], "--delimiter: ';;' is not a delimiter: give one character "
                                "such as , ; | or tab"),
    ],
)  # fmt: skip
def test_a_bad_input_option_is_a_json_usage_error(
    files: tuple[Path, Path], tmp_path: Path, command: list[str], option: list[str], message: str
) -> None:
    """The options are checked as `fidelite metrics` checks them, and with --format json
    the refusal is the JSON error scripts read, whatever the option's place."""
    standard, _ = files
    out = tmp_path / "out.csv"
    extra = ["-o", str(out), "--allow-unconverged"] if command == ["predict"] else []
    args = ["clv", *command, *option, "-i", str(standard), *extra, "-f", "json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert json.loads(result.stdout) == {"error": {"code": "usage", "message": message}}
    assert not out.exists()


def test_predict_horizon_is_one_year_in_the_unit_counted(
    files: tuple[Path, Path], tmp_path: Path
) -> None:
    """Without --horizon, predict looked 52 units ahead: 52 weeks, but 52 DAYS with
    --time-unit day. It is now a year in either unit; expected purchases agree."""
    standard, _ = files
    days = _json("clv", "predict", "--allow-unconverged", "--time-unit", "day", "-i", str(standard),
                 "-o", str(tmp_path / "d.csv"))  # fmt: skip
    weeks = _json(
        "clv", "predict", "--allow-unconverged", "-i", str(standard), "-o", str(tmp_path / "w.csv")
    )
    explicit = _json("clv", "predict", "--allow-unconverged", "--time-unit", "day",
                     "--horizon", "365", "-i", str(standard),
                     "-o", str(tmp_path / "e.csv"))  # fmt: skip
    assert (days["horizon"], weeks["horizon"]) == (365.0, 52.0)
    assert _without_input(days) == _without_input(explicit)
