"""`fidelite clv` never prints NaN: dates past the data are allowed with a note saying the
days after the data count as observed, a validate without holdout is a usage error, and
the BG/NBD / MBG/NBD expectation stays finite at fits on the edge of the parameter space."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.csv as pa_csv
import pytest
from typer.testing import CliRunner

from fidelite.cli.main import _register, app
from fidelite.clv import _betageo

runner = CliRunner()
_register()

# Last day in the data: 2024-03-20.
TRANSACTIONS = """customer_id,timestamp,amount
a,2024-01-01,10
a,2024-01-05,20
a,2024-02-10,15
b,2024-01-03,30
b,2024-03-01,12
c,2024-01-10,8
c,2024-01-20,9
c,2024-02-20,11
c,2024-03-20,5
d,2024-02-01,40
"""


@pytest.fixture
def tx(tmp_path: Path) -> Path:
    path = tmp_path / "tx.csv"
    path.write_text(TRANSACTIONS)
    return path


def _strict_json(text: str) -> Any:
    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} in the JSON output")

    return json.loads(text, parse_constant=refuse)


def _numbers(value: Any) -> list[float]:
    if isinstance(value, dict):
        return [n for v in value.values() for n in _numbers(v)]
    if isinstance(value, list):
        return [n for v in value for n in _numbers(v)]
    if isinstance(value, float):
        return [value]
    return []


def _usage_error(result: Any) -> str:
    assert result.exit_code == 2, result.output
    error = _strict_json(result.stdout)["error"]
    assert error["code"] == "usage"
    return str(error["message"])


@pytest.mark.parametrize(
    ("end", "days"), [("9999-12-31", "2,913,094 days"), ("2024-03-21", "1 day")]
)
def test_validate_observation_end_after_the_data_runs_with_a_note(
    tx: Path, end: str, days: str
) -> None:
    args = ["clv", "validate", "-i", str(tx), "--calibration-end", "2024-02-01"]
    result = runner.invoke(app, [*args, "--observation-end", end, "-f", "json"])
    assert result.exit_code == 0, result.output
    payload = _strict_json(result.stdout)
    assert payload["notes"][0] == (
        f"--observation-end {end} is {days} after the last day in the data (2024-03-20): "
        "those days count as observed days without purchases"
    )
    assert all(np.isfinite(_numbers(payload)))


@pytest.mark.parametrize("cal", ["2024-03-20", "9999-12-31"])
def test_validate_calibration_end_leaving_no_holdout_is_a_usage_error(tx: Path, cal: str) -> None:
    args = ["clv", "validate", "-i", str(tx), "--calibration-end", cal, "-f", "json"]
    message = _usage_error(runner.invoke(app, args))
    assert message == (
        f"--calibration-end {cal} leaves no holdout: it must be before the observation end "
        "2024-03-20 (the last day in the data)"
    )


@pytest.mark.parametrize("command", ["fit", "predict"])
def test_fit_and_predict_calibration_end_after_the_data_runs_with_a_note(
    tx: Path, tmp_path: Path, command: str
) -> None:
    """As lifetimes' observation_period_end: the day of the extract, after the last sale."""
    extra = (
        ["-m", "bgnbd"]
        if command == "fit"
        else ["-o", str(tmp_path / "out.csv"), "--allow-unconverged"]
    )
    args = ["clv", command, "-i", str(tx), *extra, "--calibration-end", "2024-03-31"]
    result = runner.invoke(app, [*args, "-f", "json"])
    assert result.exit_code == 0, result.output
    payload = _strict_json(result.stdout)
    assert payload["notes"][0] == (
        "--calibration-end 2024-03-31 is 11 days after the last day in the data "
        "(2024-03-20): those days count as observed days without purchases"
    )
    if command == "predict":
        out = pa_csv.read_csv(tmp_path / "out.csv").to_pydict()
        assert dict(zip(out["customer_id"], out["T"], strict=True))["d"] == 59 / 7  # weeks


@pytest.mark.parametrize(
    ("value", "why"),
    [("2024-02-30", "day is out of range for month"), ("10000-01-01", "dates run from")],
)
def test_a_day_outside_the_calendar_is_a_usage_error_saying_why(
    tx: Path, value: str, why: str
) -> None:
    args = ["clv", "validate", "-i", str(tx), "--calibration-end", "2024-01-15"]
    message = _usage_error(runner.invoke(app, [*args, "--observation-end", value, "-f", "json"]))
    assert message.startswith(f"--observation-end: expected a date YYYY-MM-DD, got {value!r} (")
    assert why in message


@pytest.mark.parametrize("model", ["bgnbd", "mbgnbd", "paretonbd"])
def test_validate_on_a_one_day_holdout_prints_finite_figures(tx: Path, model: str) -> None:
    # Four customers: the fits end with r and alpha in the millions, where scipy's 2F1
    # in the closed-form expectation returned NaN.
    args = ["clv", "validate", "-i", str(tx), "--calibration-end", "2024-03-19", "-m", model]
    result = runner.invoke(app, [*args, "-f", "json"])
    assert result.exit_code == 0, result.output
    payload = _strict_json(result.stdout)
    assert all(np.isfinite(_numbers(payload)))
    assert payload["predicted_total"] >= 0 and "notes" not in payload
    table = runner.invoke(app, args)
    assert table.exit_code == 0 and "nan" not in table.stdout.lower()


@pytest.mark.parametrize("model", ["bgnbd", "mbgnbd"])
def test_predict_writes_finite_predictions(tx: Path, tmp_path: Path, model: str) -> None:
    out = tmp_path / "clv.csv"
    result = runner.invoke(
        app, ["clv", "predict", "-i", str(tx), "-m", model, "-o", str(out), "--allow-unconverged"]
    )
    assert result.exit_code == 0, result.output
    rows = pa_csv.read_csv(out).to_pylist()
    for name in ("probability_alive", "expected_purchases", "expected_spend", "clv"):
        assert all(np.isfinite(row[name]) for row in rows), name
    payload = runner.invoke(
        app,
        [
            "clv",
            "predict",
            "-i",
            str(tx),
            "-m",
            model,
            "-o",
            str(out),
            "-f",
            "json",
            "--allow-unconverged",
        ],
    )
    assert all(np.isfinite(_numbers(_strict_json(payload.stdout)["population"])))


def test_figures_that_are_not_numbers_become_null_with_a_note() -> None:
    from fidelite.cli.clv import _finite_or_null

    payload = {"total": float("nan"), "groups": [{"mean": 1.0}, {"mean": float("inf")}]}
    cleaned, notes = _finite_or_null(payload, "")
    assert cleaned == {"total": None, "groups": [{"mean": 1.0}, {"mean": None}]}
    assert [n.split(":")[0] for n in notes] == ["total", "groups[1].mean"]


X = np.array([0.0, 1.0, 2.0, 5.0, 20.0])
T = np.array([1.0, 5.0, 10.0, 38.0, 38.0])


@pytest.mark.parametrize("shift", [0, 1])
@pytest.mark.parametrize(
    "theta", [(0.243, 4.414, 0.793, 2.426), (0.525, 6.183, 0.891, 1.614), (2.0, 5.0, 3.0, 4.0)]
)
@pytest.mark.parametrize("horizon", [0.5, 39.0, 4e5])
def test_quadrature_agrees_with_the_closed_form(
    theta: tuple[float, ...], shift: int, horizon: float
) -> None:
    th = np.array(theta)
    closed = _betageo.expected_purchases_if_alive(th, horizon, X, T, shift)
    numeric = _betageo._expected_by_quadrature(th, np.full(X.shape, horizon), X, T, shift)
    np.testing.assert_allclose(numeric, closed, rtol=1e-8)


@pytest.mark.parametrize("shift", [0, 1])
def test_expectation_is_finite_where_the_purchase_rate_has_no_heterogeneity(shift: int) -> None:
    # Fits of a handful of customers: r and alpha in the millions (every customer buys at
    # rate r / alpha), the dropout probability near 0 (a tiny) or concentrated (a, b large).
    no_dropout = np.array([12179452.3, 10439531.2, 3.798e-05, 78985.97])
    expected = _betageo.expected_purchases_if_alive(no_dropout, 39.0, X, T, shift)
    rate = (no_dropout[0] + X) / (no_dropout[1] + T)
    np.testing.assert_allclose(expected, rate * 39.0, rtol=1e-6)

    fixed_dropout = np.array([13165778.2, 99222155.6, 66707.52, 1496475.08])
    expected = _betageo.expected_purchases_if_alive(fixed_dropout, 39.0, X, T, shift)
    p = fixed_dropout[2] / (fixed_dropout[2] + fixed_dropout[3] + X + shift)
    rate = (fixed_dropout[0] + X) / (fixed_dropout[1] + T)
    np.testing.assert_allclose(expected, -np.expm1(-rate * p * 39.0) / p, rtol=1e-4)


def test_expectation_with_a_at_one_lies_between_its_neighbours() -> None:
    at_one = _betageo.expected_purchases_if_alive(np.array([2.0, 5.0, 1.0, 3.0]), 39.0, X, T, 0)
    below = _betageo.expected_purchases_if_alive(np.array([2.0, 5.0, 0.999, 3.0]), 39.0, X, T, 0)
    above = _betageo.expected_purchases_if_alive(np.array([2.0, 5.0, 1.001, 3.0]), 39.0, X, T, 0)
    assert np.all(np.isfinite(at_one))
    assert np.all((above <= at_one) & (at_one <= below))
