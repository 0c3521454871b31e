"""Shifted-beta-geometric (sBG) model of contractual (subscription) churn.

Fader & Hardie (2007), "How to project customer retention". Each customer renews at
the end of every period with a fixed probability 1 - theta, theta ~ Beta(gamma, delta)
across customers. Parameters, in order: ``gamma, delta``.

A customer either churned in period ``periods`` (>= 1: paid ``periods`` times, the
renewal due after the last payment never came) or is still active after surviving
``periods`` renewals (>= 0, right-censored: paid ``periods + 1`` times, the next renewal
not yet due)::

    P(churn in period t) = B(gamma+1, delta+t-1) / B(gamma, delta)
    S(t) = P(still active after t periods) = B(gamma, delta+t) / B(gamma, delta)

Customers are grouped by (periods, churned), so a cohort of millions is a few dozen rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import betaln, digamma, hyp2f1

from fidelite.clv.fitting import FitResult, maximize_likelihood
from fidelite.clv.triples import FloatArray, SummaryError, weighted_counts

MODEL = "sbg"
PARAMS = ("gamma", "delta")


@dataclass(frozen=True)
class ChurnData:
    """Unique (periods, churned) rows with the number of customers in each."""

    periods: FloatArray
    churned: FloatArray  # 1.0 churned at the end of ``periods``, 0.0 still active
    weight: FloatArray

    @property
    def n_customers(self) -> int:
        """Number of customers represented (sum of weights, rounded)."""
        return round(float(self.weight.sum()))

    @classmethod
    def build(
        cls, periods: ArrayLike, churned: ArrayLike, weights: ArrayLike | None = None
    ) -> ChurnData:
        """Group per-customer rows; ``periods`` must be whole numbers, >= 1 for a churned
        customer and >= 0 for an active one (0: still in the first period, which says
        nothing about churn: S(0) = 1, a log-likelihood term of 0)."""
        t = np.asarray(periods, dtype=np.float64)
        c = np.asarray(churned, dtype=np.float64)
        w = np.ones_like(t) if weights is None else np.asarray(weights, dtype=np.float64)
        if t.shape != c.shape or t.shape != w.shape or t.ndim != 1:
            raise SummaryError("periods, churned and weights must be 1-D and the same length")
        if not np.isin(c, (0.0, 1.0)).all():
            row = int(np.flatnonzero(~np.isin(c, (0.0, 1.0)))[0])
            raise SummaryError(f"row {row}: churned must be 0/1 (or a boolean), got {c[row]}")
        bad = ~np.isfinite(t) | (t < c) | (t != np.floor(t))
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            least = ">= 1 for a churned customer" if c[row] else ">= 0"
            raise SummaryError(f"row {row}: periods must be a whole number {least}, got {t[row]}")
        if (w < 0).any() or not np.isfinite(w).all():
            raise SummaryError("weights must be finite and >= 0")
        key = np.stack([t, c], axis=1)
        uniq, inverse = np.unique(key, axis=0, return_inverse=True)
        weight = weighted_counts(inverse.reshape(-1), w, uniq.shape[0])
        keep = weight > 0
        if not keep.any():  # e.g. a calibration end before the first purchase
            raise SummaryError("the summary has no customers")
        return cls(periods=uniq[keep, 0], churned=uniq[keep, 1], weight=weight[keep])

    @classmethod
    def from_payments(
        cls, payments: ArrayLike, churned: ArrayLike, weights: ArrayLike | None = None
    ) -> ChurnData:
        """From each customer's number of payments (>= 1, one per period) and churn flag.

        A churned customer who paid n times churned in period n (``periods`` = n). An
        active customer who paid n times has survived the n - 1 renewals observed so far
        and is censored there (``periods`` = n - 1, scored on S(n - 1)): the n-th
        payment opened period n, whose renewal is not yet due.
        """
        n = np.asarray(payments, dtype=np.float64)
        c = np.asarray(churned, dtype=np.float64)
        if n.shape != c.shape:
            raise SummaryError("payments and churned must be the same length")
        if (~np.isfinite(n) | (n < 1)).any():
            row = int(np.flatnonzero(~np.isfinite(n) | (n < 1))[0])
            raise SummaryError(f"row {row}: payments must be a whole number >= 1, got {n[row]}")
        return cls.build(np.where(c == 1.0, n, n - 1.0), c, weights)

    @classmethod
    def from_survivors(cls, active: Sequence[float]) -> ChurnData:
        """From a cohort curve: ``active[k]`` customers still active after k periods.

        ``active[0]`` is the cohort size; the customers lost between k-1 and k churned in
        period k, and the ``active[-1]`` still active are censored after the last period.
        """
        counts = np.asarray(active, dtype=np.float64)
        if counts.ndim != 1 or counts.shape[0] < 2:
            raise SummaryError("the cohort curve needs the initial size and at least one period")
        lost = counts[:-1] - counts[1:]
        if (lost < 0).any():
            k = int(np.flatnonzero(lost < 0)[0]) + 1
            raise SummaryError(f"period {k}: the number of active customers cannot grow")
        n = counts.shape[0] - 1
        periods = np.concatenate([np.arange(1, n + 1, dtype=np.float64), [float(n)]])
        churned = np.concatenate([np.ones(n), [0.0]])
        weight = np.concatenate([lost, counts[-1:]])
        keep = weight > 0
        return cls(periods=periods[keep], churned=churned[keep], weight=weight[keep])


def loglik_grad(theta: FloatArray, data: ChurnData) -> tuple[float, FloatArray]:
    """Total weighted log-likelihood and its gradient in (gamma, delta)."""
    g, d = theta
    t, c, w = data.periods, data.churned, data.weight
    # churned rows: B(g+1, d+t-1); active rows: B(g, d+t).
    first = g + c
    second = d + t - c
    ll = float(w @ (betaln(first, second) - betaln(g, d)))
    psi_sum = digamma(g + d + t)
    psi_gd = digamma(g + d)
    grad = np.array(
        [
            float(w @ (digamma(first) - psi_sum - digamma(g) + psi_gd)),
            float(w @ (digamma(second) - psi_sum - digamma(d) + psi_gd)),
        ]
    )
    return ll, grad


def unidentified(data: ChurnData) -> str | None:
    """Why these customers cannot identify (gamma, delta), or None.

    The likelihood is a product of binomial terms in the churn hazards
    h(k) = gamma / (gamma + delta + k - 1), one per period k that customers were observed
    through (churned in a period >= k, or survived >= k renewals). Two parameters need two
    hazards: with customers observed through the first period only, the likelihood
    depends on h(1) = gamma / (gamma + delta) alone and is flat along that ridge (every
    customer with one payment, for example). With no churn at all it rises without end
    as gamma goes to 0.
    """
    observed = data.weight > 0
    if not (data.churned[observed] == 1.0).any():
        return "no customer churned"
    if not (data.periods[observed] >= 2).any():
        return (
            "no customer was observed through a second period (a renewal followed by "
            "another renewal or by churn), so only the mean churn probability "
            "gamma/(gamma+delta) is identified"
        )
    return None


def fit(data: ChurnData, *, penalizer: float = 0.0) -> FitResult:
    """Maximum-likelihood fit; starts at gamma = delta = 1 (uniform churn probability).

    Never converged when :func:`unidentified` finds the data cannot identify the
    parameters (the optimiser stops somewhere on a flat ridge)."""
    return maximize_likelihood(
        model=MODEL,
        names=PARAMS,
        loglik=lambda th: loglik_grad(th, data)[0],
        loglik_grad=lambda th: loglik_grad(th, data),
        start=np.array([1.0, 1.0]),
        n_customers=data.n_customers,
        n_unique=int(data.periods.shape[0]),
        total_weight=float(data.weight.sum()),
        penalizer=penalizer,
        unidentified=unidentified(data),
    )


def survival(theta: FloatArray, periods: ArrayLike) -> FloatArray:
    """S(t): share of a new cohort still active after t periods."""
    g, d = theta
    t = np.asarray(periods, dtype=np.float64)
    s: FloatArray = np.exp(betaln(g, d + t) - betaln(g, d))
    return s


def retention_rate(theta: FloatArray, periods: ArrayLike) -> FloatArray:
    """r(t) = S(t)/S(t-1) = (delta+t-1)/(gamma+delta+t-1): retention rises with tenure."""
    g, d = theta
    t = np.asarray(periods, dtype=np.float64)
    rate: FloatArray = (d + t - 1.0) / (g + d + t - 1.0)
    return rate


def discounted_expected_residual_lifetime(
    theta: FloatArray, renewals: ArrayLike, discount_rate: float
) -> FloatArray:
    """DERL: expected discounted number of future payments of a customer active now.

    Fader & Hardie (2010), "Customer-base valuation in a contractual setting": for a
    customer who has made ``n - 1`` renewals (is in period n), with discount rate d per
    period, DERL = (delta+n-1)/(gamma+delta+n-1) * 2F1(1, delta+n; gamma+delta+n; 1/(1+d)).
    Multiply by the margin per period for the residual value.
    """
    g, d = theta
    n = np.asarray(renewals, dtype=np.float64) + 1.0
    if not (np.isfinite(discount_rate) and discount_rate > 0):
        raise ValueError(
            f"the discount rate must be a finite number > 0 for a finite residual lifetime, "
            f"got {discount_rate}"
        )
    factor = 1.0 / (1.0 + discount_rate)
    derl: FloatArray = (d + n - 1.0) / (g + d + n - 1.0) * hyp2f1(1.0, d + n, g + d + n, factor)
    return derl
