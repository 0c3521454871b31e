"""Pareto/NBD model of non-contractual repeat purchases.

Schmittlein, Morrison & Colombo (1987); likelihood as in Fader & Hardie, "A Note on
Deriving the Pareto/NBD Model and Related Expressions" (2005). While active, a customer
buys at Poisson rate lambda ~ Gamma(r, alpha) and drops out at an exponential time with
rate mu ~ Gamma(s, beta). Parameters, in order: ``r, alpha, s, beta``.

Likelihood of (x, t_x, T)::

    L = G(r+x) alpha^r beta^s / G(r) * [ (alpha+T)^-(r+x) (beta+T)^-s + s/(r+s+x) A0 ]
    A0 = F(t_x) - F(T),   F(u) = 2F1(r+s+x, b2; r+s+x+1; z(u)) / (m+u)^(r+s+x)

with ``m = max(alpha, beta)``, ``z(u) = |alpha-beta| / (m+u)`` and ``b2 = s+1`` when
alpha >= beta, else ``r+x`` (the published switch that keeps 0 <= z < 1).

Numerical stability, beyond the published form:

* ``log 2F1`` is evaluated after Euler's transformation
  ``2F1(a, b2; a+1; z) = (1-z)^(1-b2) 2F1(1, a+1-b2; a+1; z)``: the remaining series has
  positive terms bounded by z^n, so it never overflows, whereas the original grows like
  (1-z)^(1-b2) and overflows for customers with hundreds of purchases;
* ``A0`` (a difference of two positive terms, F(t_x) >= F(T)) and the final sum are
  taken in log space (``log F(t) + log(1 - exp(log F(T) - log F(t)))``, ``logaddexp``).

There is no analytic gradient here (the derivative of 2F1 in its parameters has no
cheap closed form); the optimiser uses central differences in log-parameters.
"""

from __future__ import annotations

import numpy as np
from scipy.special import gammaln, hyp2f1

from fidelite.clv.fitting import FitResult, maximize_likelihood, no_repeat_purchases
from fidelite.clv.triples import FloatArray, Triples

MODEL = "paretonbd"
PARAMS = ("r", "alpha", "s", "beta")


def _log_f(a2: FloatArray, b2: FloatArray, gap: float, big: float, u: FloatArray) -> FloatArray:
    """log F(u) = log 2F1(a2, b2; a2+1; gap/(big+u)) - a2 log(big+u), overflow-free."""
    z = gap / (big + u)
    series = hyp2f1(1.0, a2 + 1.0 - b2, a2 + 1.0, z)
    log_f: FloatArray = (1.0 - b2) * np.log1p(-z) + np.log(series) - a2 * np.log(big + u)
    return log_f


def _log_terms(
    theta: FloatArray, x: FloatArray, t: FloatArray, T: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """(log of the 'alive at T' term, log of the bracket); both without the constant."""
    r, alpha, s, beta = theta
    a2 = r + s + x
    if alpha >= beta:
        b2 = np.full_like(x, s + 1.0)
        big = alpha
    else:
        b2 = r + x
        big = beta
    gap = abs(alpha - beta)
    log_ft = _log_f(a2, b2, gap, big, t)
    log_fT = _log_f(a2, b2, gap, big, T)
    # A0 = F(t) - F(T) >= 0, and exactly 0 where t == T (a customer who bought on the
    # last day) or where F(t) underflows to 0: log A0 = -inf there, which logaddexp
    # absorbs. Setting it directly, not from log(-expm1(...)), avoids -inf - (-inf) = NaN
    # at extreme parameters (r, alpha in the millions on tiny data).
    some = (t < T) & (log_ft != -np.inf)  # NaN stays NaN: a failed evaluation shows
    with np.errstate(divide="ignore", invalid="ignore"):
        log_a0 = np.where(
            some,
            log_ft + np.log(-np.expm1(np.minimum(np.where(some, log_fT - log_ft, -1.0), 0.0))),
            -np.inf,
        )
    log_alive = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
    # scipy's 2F1 gives NaN at extreme parameters (r in the millions, z within 1e-8 of 1):
    # the NaN is kept (the fit steers away from it; a NaN end point raises FitError), but
    # numpy's RuntimeWarning about it would only reach the user's terminal as noise.
    with np.errstate(invalid="ignore"):
        log_bracket = np.logaddexp(log_alive, np.log(s) - np.log(a2) + log_a0)
    return log_alive, log_bracket


def log_likelihood(theta: FloatArray, x: FloatArray, t: FloatArray, T: FloatArray) -> FloatArray:
    """Per-customer log-likelihood at ``theta = (r, alpha, s, beta)``."""
    r, alpha, s, beta = theta
    _, log_bracket = _log_terms(theta, x, t, T)
    ll: FloatArray = (
        gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta) + log_bracket
    )
    return ll


def start_values(triples: Triples) -> FloatArray:
    """r = s = 1, alpha from the mean purchase rate, beta from the mean customer age."""
    rate = float(triples.weight @ triples.frequency) / max(float(triples.weight @ triples.T), 1e-9)
    mean_age = float(triples.weight @ triples.T) / float(triples.weight.sum())
    return np.array([1.0, 1.0 / max(rate, 1e-6), 1.0, max(mean_age, 1e-3)])


def fit(triples: Triples, *, penalizer: float = 0.0) -> FitResult:
    """Maximum-likelihood fit on weighted unique triples."""
    x, t, T, w = triples.frequency, triples.recency, triples.T, triples.weight

    def loglik(theta: FloatArray) -> float:
        return float(w @ log_likelihood(theta, x, t, T))

    return maximize_likelihood(
        model=MODEL,
        names=PARAMS,
        loglik=loglik,
        loglik_grad=None,
        start=start_values(triples),
        n_customers=triples.n_customers,
        n_unique=len(triples),
        total_weight=float(w.sum()),
        penalizer=penalizer,
        unidentified=no_repeat_purchases(x, w),
    )


def probability_alive(theta: FloatArray, x: FloatArray, t: FloatArray, T: FloatArray) -> FloatArray:
    """P(active at T | x, t_x, T): the share of the likelihood from the 'alive' term."""
    log_alive, log_bracket = _log_terms(theta, x, t, T)
    alive: FloatArray = np.exp(log_alive - log_bracket)
    return alive


def _growth(s: float, base: FloatArray, horizon: FloatArray) -> FloatArray:
    """(1 - (base/(base+h))^(s-1)) / (s-1), with its limit log(1 + h/base) at s = 1."""
    log_ratio = np.log(base) - np.log(base + horizon)
    if abs(s - 1.0) < 1e-9:
        limit: FloatArray = -log_ratio
        return limit
    growth: FloatArray = -np.expm1((s - 1.0) * log_ratio) / (s - 1.0)
    return growth


def expected_purchases_if_alive(
    theta: FloatArray, horizon: float, x: FloatArray, T: FloatArray
) -> FloatArray:
    """E[purchases in the next ``horizon`` time units | x, T, still active at T]."""
    r, alpha, s, beta = theta
    h = np.asarray(horizon, dtype=np.float64)
    rate = (r + x) * (beta + T) / (alpha + T)
    expected: FloatArray = rate * _growth(s, beta + T, h)
    return expected


def expected_purchases(
    theta: FloatArray, horizon: float, x: FloatArray, t: FloatArray, T: FloatArray
) -> FloatArray:
    """E[purchases in the next ``horizon`` time units | x, t_x, T]."""
    expected: FloatArray = expected_purchases_if_alive(theta, horizon, x, T) * probability_alive(
        theta, x, t, T
    )
    return expected


def population_expected_purchases(theta: FloatArray, horizon: float | FloatArray) -> FloatArray:
    """E[X(horizon)] for a customer just acquired: r beta / alpha * growth(beta, h)."""
    r, alpha, s, beta = theta
    h = np.atleast_1d(np.asarray(horizon, dtype=np.float64))
    curve: FloatArray = r * beta / alpha * _growth(s, np.full_like(h, beta), h)
    return curve
