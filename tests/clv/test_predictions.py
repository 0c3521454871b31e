"""Predictions, discounted CLV, the holdout report, churn risk and the health score."""

from __future__ import annotations

import numpy as np
import pytest

from fidelite.clv import bgnbd, gammagamma, simulation
from fidelite.clv.fitting import FitResult
from fidelite.clv.health import (
    ChurnRiskThresholds,
    HealthConfig,
    HealthInputs,
    churn_risk,
    health_score,
)
from fidelite.clv.predictions import (
    UNITS_PER_YEAR,
    population_summary,
    predict_customers,
    purchase_model,
)
from fidelite.clv.triples import Triples, compress
from fidelite.clv.validation import holdout_report
from tests.clv.cdnow import Cdnow


@pytest.fixture(scope="module")
def fits(cdnow_triples: Triples, cdnow: Cdnow) -> tuple[FitResult, FitResult]:
    spend = gammagamma.fit(gammagamma.SpendData.build(cdnow.x, cdnow.m))
    return bgnbd.fit(cdnow_triples), spend


def test_predict_customers_gives_paper_expectation_for_customer_one(
    fits: tuple[FitResult, FitResult], cdnow_triples: Triples, cdnow: Cdnow
) -> None:
    # Customer 1 of the sample: x = 2, t_x = 30.43, T = 38.86 -> 1.226 over 39 weeks (FHL).
    assert (cdnow.x[0], round(cdnow.t_x[0], 2), round(cdnow.T[0], 2)) == (2, 30.43, 38.86)
    preds = predict_customers(fits[0], cdnow_triples, 39.0)
    assert round(float(preds.expected_purchases[0]), 3) == 1.226
    assert preds.expected_purchases.shape == (2357,)
    assert preds.probability_alive[cdnow.x == 0].tolist() == [1.0] * int((cdnow.x == 0).sum())


def test_clv_without_discount_is_spend_times_expected_purchases(
    fits: tuple[FitResult, FitResult], cdnow_triples: Triples, cdnow: Cdnow
) -> None:
    preds = predict_customers(
        fits[0], cdnow_triples, 52.0, spend_fit=fits[1], monetary_value=cdnow.m
    )
    assert preds.clv is not None and preds.expected_spend is not None
    np.testing.assert_allclose(preds.clv, preds.expected_spend * preds.expected_purchases)


def test_clv_with_one_step_discounts_at_horizon_end(
    fits: tuple[FitResult, FitResult], cdnow_triples: Triples, cdnow: Cdnow
) -> None:
    horizon, rate = 52.0, 0.1
    preds = predict_customers(
        fits[0],
        cdnow_triples,
        horizon,
        spend_fit=fits[1],
        monetary_value=cdnow.m,
        discount_rate=rate,
        steps=1,
    )
    assert preds.clv is not None and preds.expected_spend is not None
    factor = 1.1 ** (horizon / UNITS_PER_YEAR["week"])
    np.testing.assert_allclose(preds.clv, preds.expected_spend * preds.expected_purchases / factor)


def test_population_summary_counts_expected_active_customers(
    fits: tuple[FitResult, FitResult], cdnow_triples: Triples
) -> None:
    summary = population_summary(fits[0], cdnow_triples, 39.0, spend_fit=fits[1])
    alive = bgnbd.probability_alive(
        fits[0].param_array(), cdnow_triples.frequency, cdnow_triples.recency, cdnow_triples.T
    )
    assert summary.expected_active_customers == pytest.approx(float(cdnow_triples.weight @ alive))
    p, q, gamma = fits[1].param_array()
    assert summary.mean_spend_per_transaction == pytest.approx(p * gamma / (q - 1))


def test_purchase_model_rejects_unknown_name() -> None:
    with pytest.raises(ValueError, match="unknown purchase model 'nbd'"):
        purchase_model("nbd")


def test_holdout_report_matches_simulated_holdout_purchases() -> None:
    rng = np.random.default_rng(20261122)
    theta = np.array([0.4, 5.0, 0.8, 2.5])
    T = rng.integers(14, 273, 60_000) / 7.0
    x, t_x, holdout = simulation.bgnbd(theta, T, rng, holdout=39.0)
    fit = bgnbd.fit(compress(x, t_x, T, resolution=1 / 7))
    report = holdout_report(fit, x, t_x, T, holdout, 39.0, max_group=5)
    assert [g.frequency for g in report.groups] == ["0", "1", "2", "3", "4", "5+"]
    assert sum(g.customers for g in report.groups) == 60_000
    assert report.predicted_total == pytest.approx(report.actual_total, rel=0.03)
    for group in report.groups:
        assert group.predicted_mean == pytest.approx(group.actual_mean, rel=0.1), group


def test_health_score_equals_hand_computed_weighted_mean() -> None:
    inputs = HealthInputs(
        days_since_last_purchase=[90.0, 90.0],
        purchases_recent=[3, 3],
        purchases_previous=[1, 1],
        spend_recent=[0.0, 0.0],
        spend_previous=[0.0, 0.0],
        nps_answer=[9, np.nan],
        support_cases=[1, 1],
    )
    result = health_score(inputs, HealthConfig(recency_half_life_days=90.0))
    # 100 * (0.3*0.5 + 0.25*0.75 + 0.15*0.5 + 0.2*0.9 + 0.1*0.5) = 64.25; without NPS the
    # other weights (0.8) are renormalised: 100 * 0.4625 / 0.8 = 57.8125.
    np.testing.assert_allclose(result.score, [64.25, 57.8125])
    assert result.contributions["nps"].tolist() == [18.0, 0.0]
    np.testing.assert_allclose(sum(result.contributions.values()), result.score)


def test_health_config_rejects_unknown_component() -> None:
    with pytest.raises(ValueError, match="unknown health components"):
        HealthConfig(weights={"mood": 1.0})


def test_churn_risk_segments_by_probability_alive_and_trend() -> None:
    segments = churn_risk([0.1, 0.5, 0.9, 0.9], [0.5, 0.5, 0.5, 0.2], ChurnRiskThresholds())
    assert segments.tolist() == ["high", "medium", "low", "medium"]


def test_expected_purchases_stay_finite_when_dropout_is_homogeneous() -> None:
    """A fit on data where every customer has the same dropout probability ends with a
    and b in the hundreds of thousands; the conditional expectation must stay finite
    and continuous in (a, b) along a = p (a + b)."""
    from fidelite.clv._betageo import expected_purchases_if_alive

    x, T = np.array([0.0, 3.0, 10.0]), np.array([30.0, 60.0, 70.0])
    values = [
        expected_purchases_if_alive(
            np.array([0.6476, 6.7129, 912898.2 / k, 2483352.2 / k]), 52.0, x, T, 0
        )
        for k in (1, 10, 100)
    ]
    assert all(np.isfinite(v).all() for v in values)
    # as a and b grow the values converge (the differences shrink tenfold per step)
    np.testing.assert_allclose(values[0], values[1], rtol=5e-5)
    np.testing.assert_allclose(values[1], values[2], rtol=5e-4)
    assert values[0][0] > 0 and values[0][0] < values[0][1] < values[0][2]
