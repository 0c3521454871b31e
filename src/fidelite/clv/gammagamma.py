"""Gamma-Gamma model of spend per transaction.

Fader, Hardie & Lee (2005), "RFM and CLV"; Fader & Hardie, "The Gamma-Gamma Model of
Monetary Value" (2013). Each transaction value is Gamma(p, nu) with customer-specific
nu ~ Gamma(q, gamma), independent of the purchase process. Fitted on customers with at
least one repeat purchase, from x (number of repeat purchases) and m (their mean value).
Parameters, in order: ``p, q, gamma``.

Density of the mean value m of x transactions::

    f(m | x) = G(px+q) / (G(px) G(q)) * gamma^q * m^(px-1) * x^(px) / (gamma + m x)^(px+q)

The gammaln/digamma terms depend on x only and are evaluated once per distinct x; the
sums of ``x log m``, ``log m`` and ``x log x`` are computed once per fit, so a likelihood
evaluation costs one log per customer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import digamma, gammaln

from fidelite.clv.fitting import FitResult, maximize_likelihood
from fidelite.clv.triples import FloatArray, IntArray, SummaryError, weighted_counts

MODEL = "gammagamma"
PARAMS = ("p", "q", "gamma")


@dataclass(frozen=True)
class SpendData:
    """Repeat customers' (x, m) with weights and the sufficient sums the likelihood uses."""

    x: FloatArray
    m: FloatArray
    w: FloatArray
    wx: FloatArray  # w * x
    mx: FloatArray  # m * x, the total repeat spend
    x_values: FloatArray
    x_index: IntArray
    x_weight: FloatArray
    sum_wx_log_m: float
    sum_w_log_m: float
    sum_wx_log_x: float

    @property
    def n_customers(self) -> int:
        """Number of customers represented (sum of weights, rounded)."""
        return round(float(self.w.sum()))

    @classmethod
    def build(
        cls, frequency: ArrayLike, monetary_value: ArrayLike, weights: ArrayLike | None = None
    ) -> SpendData:
        """Keep customers with x > 0 and check their mean values are positive and finite."""
        x_all = np.asarray(frequency, dtype=np.float64)
        m_all = np.asarray(monetary_value, dtype=np.float64)
        w_all = None if weights is None else np.asarray(weights, np.float64)
        if x_all.shape != m_all.shape or (w_all is not None and w_all.shape != x_all.shape):
            raise SummaryError("frequency, monetary_value and weights must have the same length")
        rows = np.flatnonzero(x_all > 0)
        x, m = x_all[rows], m_all[rows]
        bad = ~(m > 0) | ~np.isfinite(m)  # NaN fails "> 0" too
        if bad.any():
            row = int(rows[np.flatnonzero(bad)[0]])
            raise SummaryError(
                f"row {row}: monetary_value must be a positive number for a customer with "
                f"repeat purchases (frequency={x_all[row]}, monetary_value={m_all[row]})"
            )
        w = np.ones_like(x) if w_all is None else w_all[rows]
        if x.shape[0] == 0:
            raise SummaryError("the Gamma-Gamma model needs customers with repeat purchases")
        x_values, x_index = _distinct(x)
        log_m = np.log(m)
        return cls(
            x=x,
            m=m,
            w=w,
            wx=w * x,
            mx=m * x,
            x_values=x_values,
            x_index=x_index.astype(np.int64),
            x_weight=weighted_counts(x_index, w, x_values.shape[0]),
            sum_wx_log_m=float((w * x) @ log_m),
            sum_w_log_m=float(w @ log_m),
            sum_wx_log_x=float((w * x) @ np.log(x)),
        )


def outside_model(frequency: ArrayLike, monetary_value: ArrayLike) -> NDArray[np.bool_]:
    """Customers with repeat purchases whose mean repeat value is not a positive number
    (e.g. 0: repeat days with a zero amount, such as free items).

    Gamma-Gamma describes positive spends (its likelihood has log m), so these customers
    cannot be fitted or given an expected spend by it; :meth:`SpendData.build` refuses
    them, and callers leave them out (``~outside_model(x, m)``) and say so. Customers
    without repeat purchases are never outside: the model ignores their value.
    """
    x = np.asarray(frequency, dtype=np.float64)
    m = np.asarray(monetary_value, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        outside: NDArray[np.bool_] = (x > 0) & ~((m > 0) & np.isfinite(m))
    return outside


def inside_data(frequency: ArrayLike, monetary_value: ArrayLike) -> SpendData:
    """The spend data of the customers inside the model (:func:`outside_model` left out).

    When every customer with repeat purchases is outside, the error says so: "needs
    customers with repeat purchases" would blame data that has them."""
    x = np.asarray(frequency, dtype=np.float64)
    m = np.asarray(monetary_value, dtype=np.float64)
    outside = outside_model(x, m)
    repeaters = int((x > 0).sum())
    if repeaters and int(outside.sum()) == repeaters:
        who = f"{repeaters:,} customer{'s' if repeaters != 1 else ''}"
        raise SummaryError(
            f"the repeat purchases of every customer who has some ({who}) are worth 0 on "
            "average: the Gamma-Gamma model describes positive spends, so it has nothing "
            "to fit"
        )
    return SpendData.build(x[~outside], m[~outside])


# Rows per block: block temporaries stay in cache and are recycled by the allocator.
_CHUNK = 1 << 18


def _row_sums(gamma: float, data: SpendData) -> tuple[float, float, float, float]:
    """Sums over customers of w x log(g + m x), w log(g + m x), w x / (g + m x), w / (g + m x).

    The only per-customer work of an evaluation (everything else is per distinct x).
    """
    sums = np.zeros(4)
    for lo in range(0, data.mx.shape[0], _CHUNK):
        hi = lo + _CHUNK
        denom = data.mx[lo:hi] + gamma
        log_denom = np.log(denom)
        inv_denom = np.reciprocal(denom, out=denom)
        wx, w = data.wx[lo:hi], data.w[lo:hi]
        sums += (wx @ log_denom, w @ log_denom, wx @ inv_denom, w @ inv_denom)
    return float(sums[0]), float(sums[1]), float(sums[2]), float(sums[3])


def _distinct(x: FloatArray) -> tuple[FloatArray, IntArray]:
    """Distinct values of x and each row's index into them (bincount path for counts)."""
    as_int = x.astype(np.int64)
    if np.array_equal(as_int, x) and as_int.max() < 1 << 24:
        present = np.flatnonzero(np.bincount(as_int))
        rank = np.zeros(int(present[-1]) + 1, dtype=np.int64)
        rank[present] = np.arange(present.shape[0])
        return present.astype(np.float64), rank[as_int]
    values, index = np.unique(x, return_inverse=True)
    return values, index.astype(np.int64)


def loglik_grad(theta: FloatArray, data: SpendData) -> tuple[float, FloatArray]:
    """Total weighted log-likelihood and its gradient in (p, q, gamma)."""
    p, q, gamma = theta
    xv = data.x_values
    px = p * xv
    per_x = gammaln(px + q) - gammaln(px) - gammaln(q)
    wx_log, w_log, wx_inv, w_inv = _row_sums(float(gamma), data)
    total_w = float(data.x_weight.sum())
    ll = (
        float(per_x @ data.x_weight)
        + q * np.log(gamma) * total_w
        + p * data.sum_wx_log_m
        - data.sum_w_log_m
        + p * data.sum_wx_log_x
        - p * wx_log
        - q * w_log
    )
    psi_pxq = digamma(px + q)
    grad = np.array(
        [
            float((xv * (psi_pxq - digamma(px))) @ data.x_weight)
            + data.sum_wx_log_m
            + data.sum_wx_log_x
            - wx_log,
            float((psi_pxq - digamma(q)) @ data.x_weight) + np.log(gamma) * total_w - w_log,
            q / gamma * total_w - p * wx_inv - q * w_inv,
        ]
    )
    return float(ll), grad


def log_likelihood(theta: FloatArray, x: FloatArray, m: FloatArray) -> FloatArray:
    """Per-customer log-density of the mean spend ``m`` of ``x`` repeat purchases."""
    p, q, gamma = theta
    px = p * x
    ll: FloatArray = (
        gammaln(px + q)
        - gammaln(px)
        - gammaln(q)
        + q * np.log(gamma)
        + (px - 1.0) * np.log(m)
        + px * np.log(x)
        - (px + q) * np.log(gamma + m * x)
    )
    return ll


def start_values(data: SpendData) -> FloatArray:
    """p = 1, q = 3 and gamma giving the observed mean spend (E[value] = p gamma / (q-1))."""
    mean_spend = float(data.w @ data.m) / float(data.w.sum())
    return np.array([1.0, 3.0, 2.0 * mean_spend])


def fit(data: SpendData, *, penalizer: float = 0.0) -> FitResult:
    """Maximum-likelihood fit on repeat customers' spend."""
    return maximize_likelihood(
        model=MODEL,
        names=PARAMS,
        loglik=lambda th: loglik_grad(th, data)[0],
        loglik_grad=lambda th: loglik_grad(th, data),
        start=start_values(data),
        n_customers=data.n_customers,
        n_unique=int(data.x.shape[0]),
        total_weight=float(data.w.sum()),
        penalizer=penalizer,
    )


def spend_defined(theta: FloatArray, x: FloatArray) -> NDArray[np.bool_]:
    """Where the conditional expected spend is a finite number: p x + q - 1 > 0.

    Given x repeat purchases of mean m, a customer's nu is Gamma(q + p x, gamma + x m)
    and E[value] = p E[1/nu] exists only for q + p x > 1. Always true when q > 1; at
    q <= 1 it fails for customers with x <= (1 - q) / p (the one-time buyers at least).
    """
    p, q, _ = theta
    defined: NDArray[np.bool_] = p * np.asarray(x, dtype=np.float64) + q - 1.0 > 0.0
    return defined


def expected_spend(theta: FloatArray, x: FloatArray, m: FloatArray) -> FloatArray:
    """E[value per transaction | x, m] = p (gamma + x m) / (p x + q - 1).

    A weighted average of the population mean p gamma / (q-1) and the customer's own
    mean m, with weight p x / (p x + q - 1) on the latter; customers with x = 0 get the
    population mean (m is ignored). Where p x + q - 1 <= 0 (only possible when q <= 1,
    see :func:`spend_defined`) the expectation is infinite and ``inf`` is returned, never
    the negative number the formula gives there (lifetimes returns that number).
    """
    p, q, gamma = theta
    x = np.asarray(x, dtype=np.float64)
    m_used = np.where(x > 0, m, 0.0)
    defined = spend_defined(theta, x)
    denominator = np.where(defined, p * x + q - 1.0, 1.0)
    spend: FloatArray = np.where(defined, p * (gamma + x * m_used) / denominator, np.inf)
    return spend


def population_mean_spend(theta: FloatArray) -> float:
    """E[value per transaction] across customers: p gamma / (q - 1) (infinite if q <= 1)."""
    p, q, gamma = theta
    return float(p * gamma / (q - 1.0)) if q > 1.0 else float("inf")


def infinite_mean_note(theta: FloatArray) -> str | None:
    """Why the fit gives no mean spend (q <= 1), in words for an analyst; None when q > 1."""
    q = float(theta[1])
    if q > 1.0:
        return None
    return (
        f"gammagamma: q = {q:.4g} <= 1: the spend per transaction this fit describes is so "
        "heavy-tailed that its mean, p*gamma/(q-1), is infinite (it exists only for q > 1); "
        "check the amounts for outliers (a few very large values) or fit on a longer history"
    )
