"""Shared algebra of BG/NBD and MBG/NBD (they differ only by a shift ``m`` in ``b``).

Both models (Fader, Hardie & Lee 2005; Batislam, Denizel & Filiztekin 2007) give a
customer with triple (x, t_x, T) the likelihood

    L = B(a, b+x+m)/B(a, b) * G(r+x)/G(r) * alpha^r / (alpha+T)^(r+x) * (1 + e^d)
    d = log a - log(b+x-1+m) + (r+x) * (log(alpha+T) - log(alpha+t_x))

with ``m = 0`` (BG/NBD: the ``e^d`` "died after the last purchase" branch exists only
when x > 0) or ``m = 1`` (MBG/NBD: a customer may also drop out right after the first
purchase, so the branch exists for every x). Written this way the log-likelihood is
``C(x) - (r+x) log(alpha+T) + softplus(d)``: the special functions (gammaln, betaln,
digamma) are evaluated once per distinct x, and each row costs a few logs, which keeps
fitting at millions of rows fast. ``softplus`` is evaluated with ``logaddexp`` so large
``d`` never overflows; ``sigmoid(d)`` (the posterior probability of having dropped out)
gives the analytic gradient and ``P(alive) = exp(-softplus(d))``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import betainccinv, betaincinv, betaln, digamma, expit, gammaln, hyp2f1

from fidelite.clv.fitting import FitResult, maximize_likelihood, no_repeat_purchases
from fidelite.clv.triples import FloatArray, IntArray, Triples, weighted_counts


@dataclass(frozen=True)
class BetaGeoData:
    """Triples regrouped for fast likelihood evaluation (built once per fit).

    Everything that depends on one coordinate only is aggregated: the per-x constant by
    distinct x (``x_weight``), the ``-(r+x) log(alpha+T)`` term by distinct T
    (``T_weight``, ``T_xweight``). Only rows with the dropout branch (x > 0 for BG/NBD,
    all rows for MBG/NBD) are touched per evaluation, through integer indices into the
    distinct x, t_x and T values so that logs are taken on a few hundred values.
    """

    x_values: FloatArray
    x_weight: FloatArray
    T_values: FloatArray
    T_weight: FloatArray
    T_xweight: FloatArray
    t_values: FloatArray
    row_x: FloatArray
    row_w: FloatArray
    row_x_index: IntArray
    row_T_index: IntArray
    row_t_index: IntArray

    @property
    def total_weight(self) -> float:
        return float(self.x_weight.sum())

    @classmethod
    def build(cls, triples: Triples, shift: int) -> BetaGeoData:
        x, w = triples.frequency, triples.weight
        x_values, x_index = np.unique(x, return_inverse=True)
        T_values, T_index = np.unique(triples.T, return_inverse=True)
        rows = np.flatnonzero(_branch(x, shift))
        t_values, t_index = np.unique(triples.recency[rows], return_inverse=True)
        return cls(
            x_values=x_values,
            x_weight=weighted_counts(x_index, w, x_values.shape[0]),
            T_values=T_values,
            T_weight=weighted_counts(T_index, w, T_values.shape[0]),
            T_xweight=weighted_counts(T_index, w * x, T_values.shape[0]),
            t_values=t_values,
            row_x=x[rows],
            row_w=w[rows],
            row_x_index=x_index[rows].astype(np.int64),
            row_T_index=T_index[rows].astype(np.int64),
            row_t_index=t_index.astype(np.int64),
        )


def _branch(x: FloatArray, shift: int) -> FloatArray:
    """1.0 where the 'dropped out after t_x' branch exists: x > 0 (BG/NBD), all rows (MBG)."""
    return (x > -shift).astype(np.float64)


def _dropout_logit(
    theta: FloatArray, x: FloatArray, t: FloatArray, T: FloatArray, shift: int
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Return (d, log(alpha+T), log(alpha+t)) per row; d is finite where the branch exists."""
    r, alpha, a, b = theta
    log_at = np.log(alpha + T)
    log_ax = np.log(alpha + t)
    denom = np.maximum(b + x - 1.0 + shift, np.finfo(float).tiny)
    d = np.log(a) - np.log(denom) + (r + x) * (log_at - log_ax)
    return d, log_at, log_ax


def loglik_grad(theta: FloatArray, data: BetaGeoData, shift: int) -> tuple[float, FloatArray]:
    """Total weighted log-likelihood and its gradient in (r, alpha, a, b)."""
    r, alpha, a, b = theta
    xv = data.x_values
    x_weight = data.x_weight
    per_x = (
        gammaln(r + xv) - gammaln(r) + r * np.log(alpha) + betaln(a, b + xv + shift) - betaln(a, b)
    )
    log_T = np.log(alpha + data.T_values)
    inv_T = 1.0 / (alpha + data.T_values)
    T_rx = r * data.T_weight + data.T_xweight  # sum of w (r + x) per distinct T
    ll = float(per_x @ x_weight) - float(T_rx @ log_T)

    # Rows with the dropout branch: d = log a - log(b+x-1+m) + (r+x)(log(a+T) - log(a+t_x)).
    inv_bx = 1.0 / np.maximum(b + xv - 1.0 + shift, np.finfo(float).tiny)
    diff = log_T[data.row_T_index] - np.log(alpha + data.t_values)[data.row_t_index]
    rx = r + data.row_x
    d = (np.log(a) + np.log(inv_bx))[data.row_x_index] + rx * diff
    e = np.exp(-np.abs(d))
    softplus = np.maximum(d, 0.0) + np.log1p(e)
    sig = np.where(d >= 0, 1.0, e) / (1.0 + e)  # expit(d) without overflow
    ws = data.row_w * sig
    ll += float(data.row_w @ softplus)
    ws_per_x = weighted_counts(data.row_x_index, ws, xv.shape[0])
    d_inv = inv_T[data.row_T_index] - (1.0 / (alpha + data.t_values))[data.row_t_index]

    psi_ab = digamma(a + b)
    psi_abx = digamma(a + b + xv + shift)
    grad = np.array(
        [
            float((digamma(r + xv) - digamma(r) + np.log(alpha)) @ x_weight)
            - float(data.T_weight @ log_T)
            + float(ws @ diff),
            r / alpha * data.total_weight - float(T_rx @ inv_T) + float((ws * rx) @ d_inv),
            float((psi_ab - psi_abx) @ x_weight) + float(ws_per_x.sum()) / a,
            float((digamma(b + xv + shift) - psi_abx - digamma(b) + psi_ab) @ x_weight)
            - float(ws_per_x @ inv_bx),
        ]
    )
    return ll, grad


def loglik_rows(
    theta: FloatArray, x: FloatArray, t: FloatArray, T: FloatArray, shift: int
) -> FloatArray:
    """Per-row log-likelihood (used by tests and diagnostics; fitting uses ``loglik_grad``)."""
    r, alpha, a, b = theta
    d, log_at, _ = _dropout_logit(theta, x, t, T, shift)
    branch = _branch(x, shift)
    per_row: FloatArray = (
        gammaln(r + x)
        - gammaln(r)
        + r * np.log(alpha)
        + betaln(a, b + x + shift)
        - betaln(a, b)
        - (r + x) * log_at
        + np.logaddexp(0.0, d) * branch
    )
    return per_row


def probability_alive(
    theta: FloatArray, x: FloatArray, t: FloatArray, T: FloatArray, shift: int
) -> FloatArray:
    """P(still active at T | x, t_x, T) = 1 / (1 + e^d) (1 where the branch is absent)."""
    d, _, _ = _dropout_logit(theta, x, t, T, shift)
    branch = _branch(x, shift)
    alive: FloatArray = np.exp(-np.logaddexp(0.0, d) * branch)
    return alive


def expected_purchases_if_alive(
    theta: FloatArray, horizon: float | FloatArray, x: FloatArray, T: FloatArray, shift: int
) -> FloatArray:
    """E[purchases in (T, T+horizon] | x, T, active at T]; depends on (x, T) only.

    Uses the Euler transformation of the published 2F1 term,
    ``(1-z)^(r+x) 2F1(r+x, b+x+m; c; z) = (1-z)^(a-1) 2F1(c-r-x, a-1; c; z)`` with
    ``c = a+b+x-1+m`` and ``1-z = (alpha+T)/(alpha+T+h)``: the transformed series
    converges at every z in [0, 1) without overflow at large x, where the original
    diverges like (1-z)^(a-1-r-x).

    When the fit ends on the boundary of no heterogeneity in dropout (a and b in the
    hundreds of thousands: every customer has the same dropout probability), the
    transformed series overflows (0 x inf) while the published form, whose parameters
    are then tame relative to c, is finite: rows where the first is not finite use the
    second.

    Where neither closed form gives a finite, non-negative number (fits that end with r
    and alpha in the millions, i.e. no heterogeneity in the purchase rate, where scipy's
    2F1 returns NaN) or where a is within 1e-6 of 1 (the closed form divides by a - 1),
    the expectation is integrated numerically (:func:`_expected_by_quadrature`).
    """
    r, alpha, a, b = theta
    h, x, T = np.broadcast_arrays(
        np.asarray(horizon, dtype=np.float64),
        np.asarray(x, dtype=np.float64),
        np.asarray(T, dtype=np.float64),
    )
    c = a + b + x - 1.0 + shift
    one_minus_z = (alpha + T) / (alpha + T + h)
    z = 1.0 - one_minus_z
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        term = one_minus_z ** (a - 1.0) * hyp2f1(c - r - x, a - 1.0, c, z)
        bad = ~np.isfinite(term)
        if np.any(bad):
            published = one_minus_z ** (r + x) * hyp2f1(r + x, b + x + shift, c, z)
            term = np.where(bad, published, term)
        expected: FloatArray = np.asarray(c / (a - 1.0) * (1.0 - term), dtype=np.float64)
    redo = ~np.isfinite(expected) | (expected < 0.0)
    if abs(a - 1.0) < _NEAR_ONE:
        redo[...] = True
    if np.any(redo):
        expected = expected.copy()
        expected[redo] = _expected_by_quadrature(theta, h[redo], x[redo], T[redo], shift)
    return expected


# |a - 1| below which the closed form's division by a - 1 loses every digit.
_NEAR_ONE = 1e-6
# The quadrature fallback: tanh-sinh nodes t = -3.5, -3.5 + 1/32, ..., 3.5 (u reaches
# 1e-23 of either end of (0, 1)), and rows per block (block x nodes floats at a time).
_QUAD_STEP = 1.0 / 32.0
_QUAD_TMAX = 3.5
_QUAD_BLOCK = 4096


def _expected_by_quadrature(
    theta: FloatArray, h: FloatArray, x: FloatArray, T: FloatArray, shift: int
) -> FloatArray:
    """E[purchases in (T, T+h] | x, T, active at T] by numerical integration.

    Given activity at T, the purchase rate is Gamma(r+x, alpha+T) and the dropout
    probability Beta(a, b+x+m), independently; a customer with (lambda, p) makes
    (1 - exp(-lambda p h)) / p purchases on average, so averaging over lambda gives

        E = E_p[(1 - (1 + p h / (alpha+T))^-(r+x)) / p],  p ~ Beta(a, b+x+m),

    whose integrand is bounded (its limit at p = 0 is (r+x) h / (alpha+T)) and finite at
    any parameters. The mean over p is the integral over u in (0, 1) of the integrand at
    p = the Beta quantile of u, taken by tanh-sinh quadrature (nodes crowd both ends,
    where a small a or a long horizon puts the integrand's steep part). Where the closed
    form can be evaluated the two agree to 1e-8 (relative) or better, to 1e-4 when a and b
    are both near 0 (the Beta quantile then jumps from 0 to 1 mid-way).
    """
    r, alpha, a, b = theta
    t = np.arange(-_QUAD_TMAX, _QUAD_TMAX + _QUAD_STEP / 2.0, _QUAD_STEP)
    s = np.pi * np.sinh(t)
    u, v = expit(s), expit(-s)  # u and 1 - u, each exact near its own end
    w = _QUAD_STEP * np.pi * np.cosh(t) * u * v
    x_values, x_index = np.unique(x, return_inverse=True)
    shape = b + x_values[:, None] + shift
    quantiles = np.where(
        t <= 0.0, betaincinv(a, shape, u[None, :]), betainccinv(a, shape, v[None, :])
    )
    out = np.empty(h.shape[0], dtype=np.float64)
    for lo in range(0, h.shape[0], _QUAD_BLOCK):
        hi = lo + _QUAD_BLOCK
        p = quantiles[x_index[lo:hi]]
        k = (h[lo:hi] / (alpha + T[lo:hi]))[:, None]
        n = (r + x[lo:hi])[:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            g = np.where(p > 0.0, -np.expm1(-n * np.log1p(p * k)) / p, n * k)
        out[lo:hi] = g @ w
    return out


def expected_purchases(
    theta: FloatArray,
    horizon: float | FloatArray,
    x: FloatArray,
    t: FloatArray,
    T: FloatArray,
    shift: int,
) -> FloatArray:
    """E[purchases in (T, T+horizon] | x, t_x, T] = E[... | active] * P(active)."""
    expected: FloatArray = expected_purchases_if_alive(
        theta, horizon, x, T, shift
    ) * probability_alive(theta, x, t, T, shift)
    return expected


PARAMS = ("r", "alpha", "a", "b")


@dataclass(frozen=True)
class BetaGeoModel:
    """BG/NBD (``shift=0``) or MBG/NBD (``shift=1``): the same algebra, one switch.

    The shift says whether the first purchase is also a drop-out opportunity. Each
    model module exposes these methods as its functions.
    """

    name: str
    shift: int

    def start_values(self, triples: Triples) -> FloatArray:
        """r = 1, a = 1, b = 3 and alpha matching the mean observed purchase rate."""
        weight = triples.weight
        rate = float(weight @ triples.frequency) / max(float(weight @ triples.T), 1e-9)
        return np.array([1.0, 1.0 / max(rate, 1e-6), 1.0, 3.0])

    def fit(self, triples: Triples, *, penalizer: float = 0.0) -> FitResult:
        """Maximum-likelihood fit on weighted unique triples."""
        data = BetaGeoData.build(triples, self.shift)
        return maximize_likelihood(
            model=self.name,
            names=PARAMS,
            loglik=lambda th: loglik_grad(th, data, self.shift)[0],
            loglik_grad=lambda th: loglik_grad(th, data, self.shift),
            start=self.start_values(triples),
            n_customers=triples.n_customers,
            n_unique=len(triples),
            total_weight=float(triples.weight.sum()),
            penalizer=penalizer,
            unidentified=no_repeat_purchases(triples.frequency, triples.weight),
        )

    def log_likelihood(
        self, theta: FloatArray, x: FloatArray, t: FloatArray, T: FloatArray
    ) -> FloatArray:
        """Per-customer log-likelihood at parameters ``theta = (r, alpha, a, b)``."""
        return loglik_rows(theta, x, t, T, self.shift)

    def probability_alive(
        self, theta: FloatArray, x: FloatArray, t: FloatArray, T: FloatArray
    ) -> FloatArray:
        """P(active at T | x, t_x, T) (BG/NBD: 1 for customers without repeat purchases)."""
        return probability_alive(theta, x, t, T, self.shift)

    def expected_purchases(
        self, theta: FloatArray, horizon: float, x: FloatArray, t: FloatArray, T: FloatArray
    ) -> FloatArray:
        """E[purchases in the next ``horizon`` time units | x, t_x, T]."""
        return expected_purchases(theta, horizon, x, t, T, self.shift)

    def expected_purchases_if_alive(
        self, theta: FloatArray, horizon: float, x: FloatArray, T: FloatArray
    ) -> FloatArray:
        """E[purchases in the next ``horizon`` time units | x, T, still active at T]."""
        return expected_purchases_if_alive(theta, horizon, x, T, self.shift)

    def population_expected_purchases(
        self, theta: FloatArray, horizon: float | FloatArray
    ) -> FloatArray:
        """E[X(horizon)] for a customer just acquired (the model's population curve)."""
        h = np.atleast_1d(np.asarray(horizon, dtype=np.float64))
        zero = np.zeros_like(h)
        return expected_purchases(theta, h, zero, zero, zero, self.shift)
