"""Likelihoods against independent evaluations, and analytic gradients against differences."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import quad
from scipy.special import beta as beta_fn
from scipy.special import gamma as gamma_fn

from fidelite.clv import _betageo, bgnbd, gammagamma, mbgnbd, paretonbd, sbg
from fidelite.clv.triples import FloatArray, compress


def _pareto_by_quadrature(theta: FloatArray, x: float, t: float, T: float) -> float:
    """Pareto/NBD likelihood from its integral form (alive at T, or dropped out in (t_x, T])."""
    r, alpha, s, beta = theta
    const = gamma_fn(r + x) / gamma_fn(r) * alpha**r * beta**s
    alive = (alpha + T) ** -(r + x) * (beta + T) ** -s
    died, _ = quad(lambda u: s * (alpha + u) ** -(r + x) * (beta + u) ** -(s + 1), t, T)
    return float(np.log(const * (alive + died)))


@pytest.mark.parametrize(
    "theta",
    [[0.55, 10.58, 0.61, 11.67], [0.55, 11.67, 0.61, 10.58], [2.0, 3.0, 1.5, 3.0]],
    ids=["alpha<beta", "alpha>beta", "alpha=beta"],
)
@pytest.mark.parametrize(("x", "t", "T"), [(0, 0, 30), (3, 12.5, 38), (12, 37.9, 38)])
def test_log_likelihood_paretonbd_equals_quadrature(
    theta: list[float], x: float, t: float, T: float
) -> None:
    th = np.array(theta)
    ours = paretonbd.log_likelihood(th, np.array([x], float), np.array([t]), np.array([T], float))
    assert ours[0] == pytest.approx(_pareto_by_quadrature(th, x, t, T), rel=1e-9, abs=1e-9)


def test_log_likelihood_paretonbd_finite_for_heavy_buyers() -> None:
    # Hundreds of purchases with alpha << beta overflow the unsimplified 2F1.
    theta = np.array([10.465, 7.98565181e-03, 3.0516, 2.820])
    ll = paretonbd.log_likelihood(
        theta, np.array([400.0, 500.0, 500.0]), np.array([5.0, 1.0, 4.0]), np.array([6.0, 37, 37])
    )
    assert np.isfinite(ll).all()
    alive = paretonbd.probability_alive(
        theta, np.array([40.0, 50.0, 50.0]), np.array([5.0, 1.0, 4.0]), np.array([6.0, 37, 37])
    )
    assert ((alive >= 0) & (alive <= 1)).all()


def _bgnbd_direct(theta: FloatArray, x: int, t: float, T: float) -> float:
    """FHL (2005) eq. (6), evaluated without logs."""
    r, alpha, a, b = theta
    common = gamma_fn(r + x) * alpha**r / gamma_fn(r)
    alive = beta_fn(a, b + x) / beta_fn(a, b) * common / (alpha + T) ** (r + x)
    died = beta_fn(a + 1, b + x - 1) / beta_fn(a, b) * common / (alpha + t) ** (r + x)
    return float(np.log(alive + (died if x > 0 else 0.0)))


def _mbgnbd_direct(theta: FloatArray, x: int, t: float, T: float) -> float:
    """Batislam et al. (2007): dropout also possible after the first purchase."""
    r, alpha, a, b = theta
    common = gamma_fn(r + x) * alpha**r / gamma_fn(r)
    alive = beta_fn(a, b + x + 1) / beta_fn(a, b) * common / (alpha + T) ** (r + x)
    died = beta_fn(a + 1, b + x) / beta_fn(a, b) * common / (alpha + t) ** (r + x)
    return float(np.log(alive + died))


@pytest.mark.parametrize(("x", "t", "T"), [(0, 0.0, 20.0), (1, 3.0, 20.0), (7, 19.0, 25.0)])
def test_log_likelihood_betageo_models_equal_direct_formulas(x: int, t: float, T: float) -> None:
    theta = np.array([0.243, 4.414, 0.793, 2.426])
    args = (np.array([x], float), np.array([t]), np.array([T]))
    assert bgnbd.log_likelihood(theta, *args)[0] == pytest.approx(_bgnbd_direct(theta, x, t, T))
    assert mbgnbd.log_likelihood(theta, *args)[0] == pytest.approx(_mbgnbd_direct(theta, x, t, T))


def _central_difference(f: object, theta: FloatArray) -> FloatArray:
    grad = np.empty_like(theta)
    for i in range(theta.shape[0]):
        h = 1e-6 * theta[i]
        up, down = theta.copy(), theta.copy()
        up[i] += h
        down[i] -= h
        grad[i] = (f(up) - f(down)) / (2 * h)  # type: ignore[operator]
    return grad


@pytest.mark.parametrize("shift", [0, 1], ids=["bgnbd", "mbgnbd"])
def test_gradient_betageo_matches_central_differences(shift: int) -> None:
    rng = np.random.default_rng(3)
    T = rng.uniform(5, 40, 300)
    x = rng.integers(0, 8, 300).astype(float)
    t = np.where(x > 0, T * rng.uniform(0, 1, 300), 0.0)
    data = _betageo.BetaGeoData.build(compress(x, t, T), shift)
    theta = np.array([0.5, 6.0, 0.9, 1.7])
    _, grad = _betageo.loglik_grad(theta, data, shift)
    numeric = _central_difference(lambda th: _betageo.loglik_grad(th, data, shift)[0], theta)
    np.testing.assert_allclose(grad, numeric, rtol=1e-5)


def test_gradient_gammagamma_matches_central_differences() -> None:
    rng = np.random.default_rng(4)
    x = rng.integers(1, 9, 200).astype(float)
    data = gammagamma.SpendData.build(x, rng.uniform(5, 90, 200))
    theta = np.array([6.0, 3.7, 15.0])
    _, grad = gammagamma.loglik_grad(theta, data)
    numeric = _central_difference(lambda th: gammagamma.loglik_grad(th, data)[0], theta)
    np.testing.assert_allclose(grad, numeric, rtol=1e-5)
    direct = gammagamma.log_likelihood(theta, data.x, data.m).sum()
    assert gammagamma.loglik_grad(theta, data)[0] == pytest.approx(direct, rel=1e-12)


def test_gradient_sbg_matches_central_differences() -> None:
    data = sbg.ChurnData.from_survivors([1000, 631, 468, 382, 326, 289, 262, 241])
    theta = np.array([0.7, 1.2])
    _, grad = sbg.loglik_grad(theta, data)
    numeric = _central_difference(lambda th: sbg.loglik_grad(th, data)[0], theta)
    np.testing.assert_allclose(grad, numeric, rtol=1e-5)


def test_loglik_sbg_equals_hand_computed_two_period_cohort() -> None:
    # 10 customers: 4 churn in period 1, 3 in period 2, 3 still active after 2 periods.
    # gamma = delta = 1: P(1) = 1/2, P(2) = 1/6, S(2) = 1/3.
    data = sbg.ChurnData.from_survivors([10, 6, 3])
    ll, _ = sbg.loglik_grad(np.array([1.0, 1.0]), data)
    assert ll == pytest.approx(4 * np.log(1 / 2) + 3 * np.log(1 / 6) + 3 * np.log(1 / 3))
