"""BG/NBD (beta-geometric / negative binomial) model of non-contractual repeat purchases.

Fader, Hardie & Lee (2005), "Counting your customers the easy way". While active, a
customer buys at Poisson rate lambda ~ Gamma(r, alpha); after each repeat purchase they
drop out with probability p ~ Beta(a, b). Parameters, in order: ``r, alpha, a, b``
(alpha in the same time unit as recency and T). Likelihood algebra: ``_betageo``.
"""

from __future__ import annotations

import numpy as np

from fidelite.clv import _betageo
from fidelite.clv.fitting import FitResult, maximize_likelihood
from fidelite.clv.triples import FloatArray, Triples

MODEL = "bgnbd"
PARAMS = ("r", "alpha", "a", "b")
_SHIFT = 0


def start_values(triples: Triples) -> FloatArray:
    """r = 1, a = 1, b = 3 and alpha matching the mean observed purchase rate."""
    rate = float(triples.weight @ triples.frequency) / max(float(triples.weight @ triples.T), 1e-9)
    return np.array([1.0, 1.0 / max(rate, 1e-6), 1.0, 3.0])


def fit(triples: Triples, *, penalizer: float = 0.0) -> FitResult:
    """Maximum-likelihood fit on weighted unique triples."""
    data = _betageo.BetaGeoData.build(triples, _SHIFT)
    return maximize_likelihood(
        model=MODEL,
        names=PARAMS,
        loglik=lambda th: _betageo.loglik_grad(th, data, _SHIFT)[0],
        loglik_grad=lambda th: _betageo.loglik_grad(th, data, _SHIFT),
        start=start_values(triples),
        n_customers=triples.n_customers,
        n_unique=len(triples),
        total_weight=float(triples.weight.sum()),
        penalizer=penalizer,
    )


def log_likelihood(theta: FloatArray, x: FloatArray, t: FloatArray, T: FloatArray) -> FloatArray:
    """Per-customer log-likelihood at parameters ``theta = (r, alpha, a, b)``."""
    return _betageo.loglik_rows(theta, x, t, T, _SHIFT)


def probability_alive(theta: FloatArray, x: FloatArray, t: FloatArray, T: FloatArray) -> FloatArray:
    """P(active at T | x, t_x, T); 1 for customers without repeat purchases."""
    return _betageo.probability_alive(theta, x, t, T, _SHIFT)


def expected_purchases(
    theta: FloatArray, horizon: float, x: FloatArray, t: FloatArray, T: FloatArray
) -> FloatArray:
    """E[purchases in the next ``horizon`` time units | x, t_x, T]."""
    return _betageo.expected_purchases(theta, horizon, x, t, T, _SHIFT)


def expected_purchases_if_alive(
    theta: FloatArray, horizon: float, x: FloatArray, T: FloatArray
) -> FloatArray:
    """E[purchases in the next ``horizon`` time units | x, T, still active at T]."""
    return _betageo.expected_purchases_if_alive(theta, horizon, x, T, _SHIFT)


def population_expected_purchases(theta: FloatArray, horizon: float | FloatArray) -> FloatArray:
    """E[X(horizon)] for a customer just acquired (the model's population curve)."""
    h = np.atleast_1d(np.asarray(horizon, dtype=np.float64))
    zero = np.zeros_like(h)
    return _betageo.expected_purchases(theta, h, zero, zero, zero, _SHIFT)
