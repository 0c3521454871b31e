"""Draw per-customer summaries from the models' own generative stories.

Used to check that fitting recovers known parameters, to size benchmarks, and by users
to see what a fitted model implies. Every draw is vectorised (no per-customer loop):

* BG/NBD / MBG/NBD: given K ~ Poisson(lambda T) purchase opportunities in (0, T] and the
  index N of the purchase after which the customer drops out (N ~ Geometric(p) on
  {1, 2, ...} for BG/NBD, on {0, 1, ...} for MBG/NBD), x = min(N, K) and, the K arrival
  times being uniform order statistics, t_x / T ~ Beta(x, K - x + 1).
* Pareto/NBD: lifetime tau ~ Exponential(mu); x ~ Poisson(lambda min(tau, T)) and
  t_x = min(tau, T) U^(1/x) (the largest of x uniform times).
* Gamma-Gamma: the sum of x values ~ Gamma(p x, 1/nu), nu ~ Gamma(q, 1/gamma).
* sBG: churn period ~ Geometric(theta), theta ~ Beta(gamma, delta), censored at n periods.
"""

from __future__ import annotations

import numpy as np

from fidelite.clv.triples import FloatArray


def _beta_geo(
    theta: FloatArray, T: FloatArray, rng: np.random.Generator, shift: int, holdout: float
) -> tuple[FloatArray, FloatArray, FloatArray]:
    r, alpha, a, b = theta
    n = T.shape[0]
    rate = rng.gamma(r, 1.0 / alpha, n)
    p = rng.beta(a, b, n)
    dropout_after = rng.geometric(p) - shift
    # Opportunities over (0, T + holdout]; each falls in the calibration part w.p. T/(T+h).
    opportunities_all = rng.poisson(rate * (T + holdout))
    opportunities = rng.binomial(opportunities_all, T / (T + holdout))
    x = np.minimum(dropout_after, opportunities)
    x_holdout = np.minimum(dropout_after, opportunities_all) - x
    has = x > 0
    position = np.zeros(n)
    position[has] = rng.beta(x[has], opportunities[has] - x[has] + 1)
    return x.astype(np.float64), position * T, x_holdout.astype(np.float64)


def bgnbd(
    theta: FloatArray, T: FloatArray, rng: np.random.Generator, holdout: float = 0.0
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """(x, t_x, holdout purchases) for customers of ages ``T`` under BG/NBD(r, alpha, a, b).

    The third array counts purchases in (T, T + holdout] (zeros when holdout is 0).
    """
    return _beta_geo(theta, T, rng, 0, holdout)


def mbgnbd(
    theta: FloatArray, T: FloatArray, rng: np.random.Generator, holdout: float = 0.0
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """(x, t_x, holdout purchases) for customers of ages ``T`` under MBG/NBD(r, alpha, a, b)."""
    return _beta_geo(theta, T, rng, 1, holdout)


def paretonbd(
    theta: FloatArray, T: FloatArray, rng: np.random.Generator, holdout: float = 0.0
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """(x, t_x, holdout purchases) for customers of ages ``T`` under Pareto/NBD."""
    r, alpha, s, beta = theta
    n = T.shape[0]
    rate = rng.gamma(r, 1.0 / alpha, n)
    death_rate = rng.gamma(s, 1.0 / beta, n)
    lifetime = rng.exponential(1.0 / death_rate)
    active_for = np.minimum(lifetime, T)
    x = rng.poisson(rate * active_for).astype(np.float64)
    t_x = np.zeros(n)
    has = x > 0
    t_x[has] = active_for[has] * rng.random(int(has.sum())) ** (1.0 / x[has])
    active_later = np.clip(lifetime - T, 0.0, holdout)
    x_holdout = rng.poisson(rate * active_later).astype(np.float64)
    return x, t_x, x_holdout


def spend(theta: FloatArray, x: FloatArray, rng: np.random.Generator) -> FloatArray:
    """Mean value of each customer's ``x`` repeat purchases under Gamma-Gamma(p, q, gamma).

    Customers with x = 0 get 0 (they have no repeat purchase to average).
    """
    p, q, gamma = theta
    nu = rng.gamma(q, 1.0 / gamma, x.shape[0])
    m = np.zeros_like(x)
    has = x > 0
    m[has] = rng.gamma(p * x[has], 1.0 / nu[has]) / x[has]
    return m


def sbg(
    theta: FloatArray, n_customers: int, periods: int, rng: np.random.Generator
) -> tuple[FloatArray, FloatArray]:
    """(periods observed, churned 0/1) for a cohort watched for ``periods`` periods."""
    gamma, delta = theta
    churn_probability = rng.beta(gamma, delta, n_customers)
    churn_period = rng.geometric(churn_probability).astype(np.float64)
    churned = (churn_period <= periods).astype(np.float64)
    return np.minimum(churn_period, float(periods)), churned
