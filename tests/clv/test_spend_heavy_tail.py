"""Gamma-Gamma fits with q <= 1: the mean spend p*gamma/(q-1) is infinite, and so is the
expected spend p(gamma + x m)/(p x + q - 1) of a customer with p x + q - 1 <= 0, where
the formula gives a negative number (lifetimes returns it). fidelite never prints that
number: such customers' expected_spend and clv are empty, the population's mean spend
and total value null, with notes naming q and why; a fit with q > 1 is unchanged."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.csv as pa_csv
import pytest
from typer.testing import CliRunner

from fidelite.cli.main import _register, app
from fidelite.clv import bgnbd, gammagamma
from fidelite.clv.fitting import FitResult
from fidelite.clv.predictions import population_summary, predict_customers
from fidelite.clv.triples import compress

runner = CliRunner()
_register()

# Ten repeat customers (x repeat purchase days of value m) and two one-time buyers.
REPEATS = (1, 1, 2, 1, 3, 1, 2, 1, 1, 2)
# Amounts over four orders of magnitude: the fit is q = 0.3901 (p = 0.3817), so
# p x + q - 1 <= 0 for x <= (1 - q)/p = 1.598: customers with 0 or 1 repeat purchase.
HEAVY = (1, 10, 100, 1000, 10000, 3, 30, 300, 3000, 30000)
# The same customers with spends within a factor 20: q = 2.062 > 1.
MODERATE = (5, 10, 20, 40, 80, 6, 12, 24, 48, 96)

HEAVY_NOTE = (
    "gammagamma: q = 0.3901 <= 1: the spend per transaction this fit describes is so "
    "heavy-tailed that its mean, p*gamma/(q-1), is infinite (it exists only for q > 1); "
    "check the amounts for outliers (a few very large values) or fit on a longer history"
)
PREDICT_NOTES = [
    HEAVY_NOTE,
    "expected_spend, clv: empty for 8 customers with at most 1 repeat purchase: at q <= 1 "
    "their expected spend p(gamma + x m)/(p x + q - 1) is infinite (p x + q - 1 <= 0 for "
    "x <= (1 - q)/p = 1.598); the 4 others keep theirs",
    "population.mean_spend_per_transaction, population.existing_customers_expected_value: "
    "null, infinite at q <= 1",
]
# Customers whose expected spend is infinite at the heavy-tailed fit.
EMPTY = {"o1", "o2", "r0", "r1", "r3", "r5", "r7", "r8"}


def _transactions(path: Path, amounts: tuple[int, ...]) -> Path:
    lines = ["customer_id,timestamp,amount"]
    for i, (x, m) in enumerate(zip(REPEATS, amounts, strict=True)):
        first = date(2024, 1, 1 + i)
        lines.append(f"r{i},{first},20")
        lines += [f"r{i},{first + timedelta(days=25 * k + i)},{m}" for k in range(1, x + 1)]
    lines += ["o1,2024-02-01,15", "o2,2024-03-15,40"]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def heavy(tmp_path: Path) -> Path:
    return _transactions(tmp_path / "heavy.csv", HEAVY)


@pytest.fixture
def moderate(tmp_path: Path) -> Path:
    return _transactions(tmp_path / "moderate.csv", MODERATE)


def _strict_json(text: str) -> Any:
    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} in the JSON output")

    return json.loads(text, parse_constant=refuse)


def _fit(model: str, names: tuple[str, ...], values: tuple[float, ...]) -> FitResult:
    """A fit with given parameters (the diagnostics are not used here)."""
    return FitResult(
        model=model, params=dict(zip(names, values, strict=True)), log_likelihood=0.0,
        std_errors=dict.fromkeys(names), n_customers=1, n_unique=1, converged=True,
        message="converged", iterations=0, function_evaluations=0, gradient_norm=0.0,
        penalizer=0.0,
    )  # fmt: skip


# --- the model functions at given parameters -------------------------------------------


def test_expected_spend_is_infinite_where_the_posterior_mean_does_not_exist() -> None:
    theta = np.array([0.5, 0.8, 10.0])  # p x + q - 1 = -0.2, 0.3, 0.8, 1.3
    x = np.array([0.0, 1.0, 2.0, 3.0])
    m = np.array([0.0, 20.0, 30.0, 40.0])
    with np.errstate(all="raise"):  # no division by zero or negative denominator used
        spend = gammagamma.expected_spend(theta, x, m)
        defined = gammagamma.spend_defined(theta, x)
    assert defined.tolist() == [False, True, True, True]
    assert spend[0] == np.inf  # the formula gives 0.5 * 10 / -0.2 = -25
    np.testing.assert_allclose(spend[1:], [0.5 * 30 / 0.3, 0.5 * 70 / 0.8, 0.5 * 130 / 1.3])
    assert gammagamma.population_mean_spend(theta) == np.inf


def test_a_denominator_of_exactly_zero_is_infinite_without_a_warning() -> None:
    theta = np.array([0.5, 0.5, 10.0])  # x = 1: p x + q - 1 = 0
    with np.errstate(all="raise"):
        spend = gammagamma.expected_spend(theta, np.array([0.0, 1.0, 2.0]), np.array([0, 4, 4.0]))
    assert spend[:2].tolist() == [np.inf, np.inf]
    assert spend[2] == pytest.approx(0.5 * 18 / 0.5)


def test_the_note_names_q_and_why() -> None:
    assert gammagamma.infinite_mean_note(np.array([0.38175, 0.390083, 138.6])) == HEAVY_NOTE
    assert gammagamma.infinite_mean_note(np.array([1.0, 1.0, 5.0])) is not None  # q = 1 too
    assert gammagamma.infinite_mean_note(np.array([6.25, 3.74, 15.44])) is None


def test_q_above_one_keeps_the_published_formula() -> None:
    p, q, gamma = theta = np.array([6.25, 3.74, 15.44])  # CDNOW (Fader & Hardie note)
    x = np.array([0.0, 1.0, 2.0, 10.0])
    m = np.array([0.0, 30.0, 12.5, 80.0])
    expected = p * (gamma + x * m) / (p * x + q - 1)
    np.testing.assert_allclose(gammagamma.expected_spend(theta, x, m), expected, rtol=1e-15)
    assert gammagamma.spend_defined(theta, x).all()
    assert gammagamma.population_mean_spend(theta) == pytest.approx(p * gamma / (q - 1))


def test_predictions_carry_infinity_never_a_negative_value() -> None:
    x = np.array([0.0, 1.0, 2.0, 3.0])
    t = np.array([0.0, 10.0, 20.0, 30.0])
    T = np.full(4, 38.0)
    fit = _fit("bgnbd", bgnbd.PARAMS, (0.243, 4.414, 0.793, 2.426))  # CDNOW
    spend_fit = _fit("gammagamma", gammagamma.PARAMS, (0.5, 0.8, 10.0))
    triples = compress(x, t, T)
    m = np.array([0.0, 20.0, 30.0, 40.0])
    preds = predict_customers(
        fit, triples, 52.0, spend_fit=spend_fit, monetary_value=m, discount_rate=0.0
    )
    assert preds.expected_spend is not None and preds.clv is not None
    assert preds.expected_spend[0] == np.inf and preds.clv[0] == np.inf
    finite = preds.clv[1:]
    assert np.all(np.isfinite(finite)) and np.all(finite > 0)
    np.testing.assert_allclose(finite, preds.expected_spend[1:] * preds.expected_purchases[1:])
    population = population_summary(
        fit, triples, 52.0, spend_fit=spend_fit, customer_predictions=preds
    )
    assert population.mean_spend_per_transaction == np.inf
    assert population.existing_customers_expected_value == np.inf


# --- fidelite clv on a transactions file -----------------------------------------------


def test_fit_gives_lifetimes_estimates_and_a_note(heavy: Path) -> None:
    result = runner.invoke(app, ["clv", "fit", "-i", str(heavy), "-m", "gammagamma", "-f", "json"])
    assert result.exit_code == 0, result.output
    payload = _strict_json(result.stdout)
    assert {k: round(v, 4) for k, v in payload["params"].items()} == {
        "p": 0.3817, "q": 0.3901, "gamma": 138.6357
    }  # fmt: skip
    assert payload["converged"] is True and payload["message"] == "converged"
    assert payload["notes"] == [HEAVY_NOTE]
    table = runner.invoke(app, ["clv", "fit", "-i", str(heavy), "-m", "gammagamma"])
    assert table.exit_code == 0, table.output
    assert f"note: {HEAVY_NOTE}" in " ".join(table.stdout.split())

    lifetimes = pytest.importorskip("lifetimes")
    x = np.array(REPEATS, dtype=np.float64)
    reference = lifetimes.GammaGammaFitter().fit(x, np.array(HEAVY, dtype=np.float64))
    assert [payload["params"][k] for k in ("p", "q", "gamma")] == pytest.approx(
        reference.params_[["p", "q", "v"]].tolist(), rel=1e-5
    )


def test_fit_with_q_above_one_has_no_note(moderate: Path) -> None:
    args = ["clv", "fit", "-i", str(moderate), "-m", "gammagamma", "-f", "json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    payload = _strict_json(result.stdout)
    assert {k: round(v, 4) for k, v in payload["params"].items()} == {
        "p": 2.4392, "q": 2.0623, "gamma": 17.8168
    }  # fmt: skip
    assert "notes" not in payload


def test_predict_leaves_infinite_spend_empty_and_says_why(heavy: Path, tmp_path: Path) -> None:
    out = tmp_path / "clv.csv"
    args = ["clv", "predict", "-i", str(heavy), "-o", str(out), "--allow-unconverged"]
    result = runner.invoke(app, [*args, "-f", "json"])
    assert result.exit_code == 0, result.output
    payload = _strict_json(result.stdout)
    assert payload["notes"] == PREDICT_NOTES
    population = payload["population"]
    assert population["mean_spend_per_transaction"] is None
    assert population["existing_customers_expected_value"] is None
    assert population["expected_active_customers"] > 0  # purchase figures are kept

    rows = {row["customer_id"]: row for row in pa_csv.read_csv(out).to_pylist()}
    assert {c for c, row in rows.items() if row["expected_spend"] is None} == EMPTY
    assert {c for c, row in rows.items() if row["clv"] is None} == EMPTY
    kept = sorted(set(rows) - EMPTY)
    assert kept == ["r2", "r4", "r6", "r9"]
    assert {c: round(rows[c]["expected_spend"], 2) for c in kept} == {
        "r2": 841.72, "r4": 21492.11, "r6": 493.74, "r9": 149482.62
    }  # fmt: skip
    assert all(rows[c]["clv"] > 0 and rows[c]["expected_purchases"] > 0 for c in kept)
    # Every customer keeps the purchase model's figures.
    assert all(row["probability_alive"] is not None for row in rows.values())

    p, q, gamma = (payload["spend_model"]["params"][k] for k in ("p", "q", "gamma"))
    for c in kept:
        x, m = rows[c]["frequency"], rows[c]["monetary_value"]
        assert rows[c]["expected_spend"] == pytest.approx(p * (gamma + x * m) / (p * x + q - 1))

    table = runner.invoke(app, args)
    assert table.exit_code == 0, table.output
    text = " ".join(table.stdout.split())
    for note in PREDICT_NOTES:
        assert f"note: {note}" in text
    assert "nan" not in text.lower() and "inf " not in text


def test_predict_keeps_lifetimes_values_where_they_exist(heavy: Path, tmp_path: Path) -> None:
    lifetimes = pytest.importorskip("lifetimes")
    out = tmp_path / "clv.csv"
    result = runner.invoke(
        app, ["clv", "predict", "-i", str(heavy), "-o", str(out), "--allow-unconverged"]
    )
    assert result.exit_code == 0, result.output
    rows = pa_csv.read_csv(out).to_pylist()
    x = np.array([row["frequency"] for row in rows], dtype=np.float64)
    m = np.array([row["monetary_value"] for row in rows], dtype=np.float64)
    repeat = x > 0
    reference = lifetimes.GammaGammaFitter().fit(x[repeat], m[repeat])
    with np.errstate(all="ignore"):
        theirs = np.asarray(reference.conditional_expected_average_profit(x, m))
    ours = [row["expected_spend"] for row in rows]
    for mine, their, row in zip(ours, theirs, rows, strict=True):
        if row["customer_id"] in EMPTY:
            assert mine is None and their < 0  # lifetimes' negative expected spend
        else:
            assert mine == pytest.approx(their, rel=1e-5)


def test_predict_with_q_above_one_is_unchanged(moderate: Path, tmp_path: Path) -> None:
    out = tmp_path / "clv.csv"
    args = [
        "clv",
        "predict",
        "-i",
        str(moderate),
        "-o",
        str(out),
        "-f",
        "json",
        "--allow-unconverged",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    payload = _strict_json(result.stdout)
    assert "notes" not in payload
    p, q, gamma = (payload["spend_model"]["params"][k] for k in ("p", "q", "gamma"))
    population = payload["population"]
    assert population["mean_spend_per_transaction"] == pytest.approx(p * gamma / (q - 1))
    rows = pa_csv.read_csv(out).to_pylist()
    for row in rows:
        x, m = row["frequency"], row["monetary_value"]
        assert row["expected_spend"] == pytest.approx(p * (gamma + x * m) / (p * x + q - 1))
        assert row["clv"] > 0
    one_time = [row["expected_spend"] for row in rows if row["frequency"] == 0]
    assert one_time == pytest.approx([p * gamma / (q - 1)] * 2)  # the population mean
    assert population["existing_customers_expected_value"] == pytest.approx(
        sum(row["clv"] for row in rows)
    )


# --- the other commands on the same file -------------------------------------------------


def test_report_shows_the_reason_instead_of_the_clv_chart(heavy: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    result = runner.invoke(app, ["report", str(heavy), "--out", str(out), "--format", "json"])
    assert result.exit_code == 0, result.output
    data = _strict_json((out / "report.json").read_text())["clv_models"]
    reason = (
        f"{HEAVY_NOTE}; the expected spend, and so the CLV, of 8 customers with few repeat "
        "purchases (p x + q - 1 <= 0) is infinite, so no distribution is shown"
    )
    assert data["clv"] == {"error": reason}
    assert data["probability_alive"]["customers"] == 10  # P(alive) is still shown
    html = (out / "report.html").read_text()
    assert "q = 0.3901 &lt;= 1" in html
    # BG/NBD's fit of these twelve customers is degenerate (r and alpha grow together): the
    # Hessian at its flat optimum is positive definite on some machines and not on others.
    # Either way the spend model's reason is given; the P(alive) chart needs the other.
    if _strict_json((out / "report.json").read_text())["clv_models"]["purchase_model"]["converged"]:
        assert "Probability that a customer is still active" in html
    else:
        assert "the purchase model did not converge" in html
        assert "Probability that a customer is still active" not in html


def test_validate_and_health_do_not_use_the_spend_model(heavy: Path) -> None:
    args = ["clv", "validate", "-i", str(heavy), "--calibration-end", "2024-02-29", "-f", "json"]
    validate = runner.invoke(app, args)
    assert validate.exit_code == 0, validate.output
    assert "notes" not in _strict_json(validate.stdout)
    health = runner.invoke(app, ["clv", "health", "-i", str(heavy), "-f", "json"])
    assert health.exit_code == 0, health.output
    rows = _strict_json(health.stdout)["rows"]
    assert len(rows) == 12 and all(row["health_score"] >= 0 for row in rows)
