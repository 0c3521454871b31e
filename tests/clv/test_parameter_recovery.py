"""Fitting data simulated from known parameters recovers them.

Each case draws customers from the model's generative story (fixed seed), fits, and
requires every estimate within 3 standard errors of the true value: a check of the
likelihood, the optimiser and the standard errors together.
"""

from __future__ import annotations

import numpy as np
import pytest

from fidelite.clv import bgnbd, gammagamma, mbgnbd, paretonbd, sbg, simulation
from fidelite.clv.fitting import FitResult
from fidelite.clv.triples import FloatArray, compress


def _ages_in_weeks(n: int, rng: np.random.Generator) -> FloatArray:
    """Customers acquired over a year, observed at daily precision, T in weeks."""
    return rng.integers(14, 365, n).astype(np.float64) / 7.0


def _assert_recovered(fit: FitResult, truth: dict[str, float]) -> None:
    assert fit.converged, fit.message
    for name, true_value in truth.items():
        se = fit.std_errors[name]
        assert se is not None and se > 0, name
        assert abs(fit.params[name] - true_value) < 3 * se, (name, fit.params[name], se)


@pytest.mark.parametrize(
    ("module", "sampler", "truth"),
    [
        (bgnbd, simulation.bgnbd, {"r": 0.4, "alpha": 5.0, "a": 0.8, "b": 2.5}),
        (mbgnbd, simulation.mbgnbd, {"r": 0.6, "alpha": 6.0, "a": 0.9, "b": 1.8}),
        (paretonbd, simulation.paretonbd, {"r": 0.55, "alpha": 10.0, "s": 0.6, "beta": 12.0}),
    ],
    ids=["bgnbd", "mbgnbd", "paretonbd"],
)
def test_fit_recovers_simulated_purchase_parameters(
    module: object, sampler: object, truth: dict[str, float]
) -> None:
    rng = np.random.default_rng(20261122)
    T = _ages_in_weeks(40_000, rng)
    x, t_x, _ = sampler(np.array(list(truth.values())), T, rng)  # type: ignore[operator]
    fit = module.fit(compress(x, t_x, T, resolution=1 / 7))  # type: ignore[attr-defined]
    _assert_recovered(fit, truth)


def test_fit_recovers_simulated_spend_parameters() -> None:
    rng = np.random.default_rng(20261122)
    truth = {"p": 6.0, "q": 3.5, "gamma": 15.0}
    x = rng.integers(1, 12, 20_000).astype(np.float64)
    m = simulation.spend(np.array(list(truth.values())), x, rng)
    _assert_recovered(gammagamma.fit(gammagamma.SpendData.build(x, m)), truth)


def test_fit_recovers_simulated_churn_parameters() -> None:
    rng = np.random.default_rng(20261122)
    truth = {"gamma": 0.7, "delta": 1.2}
    periods, churned = simulation.sbg(np.array([0.7, 1.2]), 20_000, 8, rng)
    _assert_recovered(sbg.fit(sbg.ChurnData.build(periods, churned)), truth)
