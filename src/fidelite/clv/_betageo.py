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
from scipy.special import betaln, digamma, expit, gammaln, hyp2f1

from fidelite.clv.triples import FloatArray, IntArray, Triples, weighted_counts


@dataclass(frozen=True)
class BetaGeoData:
    """Triples plus the per-distinct-x index the likelihood needs (built once per fit)."""

    x: FloatArray
    t: FloatArray
    T: FloatArray
    w: FloatArray
    x_values: FloatArray
    x_index: IntArray
    x_weight: FloatArray
    branch: FloatArray  # 1.0 where the "dropped out after t_x" branch exists, else 0.0

    @classmethod
    def build(cls, triples: Triples, shift: int) -> BetaGeoData:
        x_values, x_index = np.unique(triples.frequency, return_inverse=True)
        x_weight = weighted_counts(x_index, triples.weight, x_values.shape[0])
        branch = _branch(triples.frequency, shift)
        return cls(
            x=triples.frequency,
            t=triples.recency,
            T=triples.T,
            w=triples.weight,
            x_values=x_values,
            x_index=x_index.astype(np.int64),
            x_weight=x_weight,
            branch=branch,
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
    per_x = (
        gammaln(r + xv) - gammaln(r) + r * np.log(alpha) + betaln(a, b + xv + shift) - betaln(a, b)
    )
    d, log_at, log_ax = _dropout_logit(theta, data.x, data.t, data.T, shift)
    branch = data.branch
    softplus = np.logaddexp(0.0, d) * branch
    rx = r + data.x
    w = data.w
    ll = float(per_x @ data.x_weight) + float(w @ (softplus - rx * log_at))

    sig = expit(d) * branch * w
    psi_ab = digamma(a + b)
    psi_abx = digamma(a + b + xv + shift)
    g_r_x = digamma(r + xv) - digamma(r) + np.log(alpha)
    g_a_x = psi_ab - psi_abx
    g_b_x = digamma(b + xv + shift) - psi_abx - digamma(b) + psi_ab
    inv_at = 1.0 / (alpha + data.T)
    grad = np.array(
        [
            float(g_r_x @ data.x_weight) - float(w @ log_at) + float(sig @ (log_at - log_ax)),
            r / alpha * float(data.w.sum())
            - float(w @ (rx * inv_at))
            + float(sig @ (rx * (inv_at - 1.0 / (alpha + data.t)))),
            float(g_a_x @ data.x_weight) + float(sig.sum()) / a,
            float(g_b_x @ data.x_weight)
            - float(sig @ (1.0 / np.maximum(b + data.x - 1.0 + shift, 1e-300))),
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


def expected_purchases(
    theta: FloatArray,
    horizon: float | FloatArray,
    x: FloatArray,
    t: FloatArray,
    T: FloatArray,
    shift: int,
) -> FloatArray:
    """E[purchases in (T, T+horizon] | x, t_x, T].

    Uses the Euler transformation of the published 2F1 term,
    ``(1-z)^(r+x) 2F1(r+x, b+x+m; c; z) = (1-z)^(a-1) 2F1(c-r-x, a-1; c; z)`` with
    ``c = a+b+x-1+m`` and ``1-z = (alpha+T)/(alpha+T+h)``: the transformed series
    converges at every z in [0, 1) without overflow at large x, where the original
    diverges like (1-z)^(a-1-r-x).
    """
    r, alpha, a, b = theta
    h = np.asarray(horizon, dtype=np.float64)
    c = a + b + x - 1.0 + shift
    one_minus_z = (alpha + T) / (alpha + T + h)
    z = 1.0 - one_minus_z
    bracket = 1.0 - one_minus_z ** (a - 1.0) * hyp2f1(c - r - x, a - 1.0, c, z)
    expected: FloatArray = c / (a - 1.0) * bracket * probability_alive(theta, x, t, T, shift)
    return expected
