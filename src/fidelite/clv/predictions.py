"""Per-customer and population predictions from fitted models, and discounted CLV.

Every purchase-model quantity depends on a customer only through the (x, t_x, T)
triple, so predictions are computed once per unique triple and scattered back to
customers with ``Triples.inverse``: predicting for 10M customers costs what predicting
for their few hundred thousand distinct triples costs.

Discounted CLV over a horizon H (in the model's time unit) splits H into n equal steps
of about one month and discounts the purchases expected in step k at its end::

    CLV = spend * sum_k (E[X(k H/n)] - E[X((k-1) H/n)]) / (1 + R)^(k H/n / U)

with R the yearly discount rate, U the number of time units per year (365.25 days, or
365.25 / 7 = 52.1786 weeks) and n = round(12 H / U), at least 1: monthly steps, as
lifetimes' ``customer_lifetime_value`` takes them (its monthly rate is (1 + R)^(1/12) - 1).
A one-year horizon (52 weeks, 365 days) has 12 steps. A fixed number of steps would
discount ever longer intervals at their end as H grows, and understate CLV more and more
(20 % at 50 years with 12 steps). ``spend`` is the Gamma-Gamma expected value per
transaction (or the margin per transaction, if the caller passes margins as monetary
values).

The horizon is at most ``MAX_HORIZON_YEARS`` (100 years, 1,200 monthly steps), which
bounds the cost at 100 times that of a one-year horizon; a longer one is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Protocol, cast

import numpy as np

from fidelite.clv import bgnbd, gammagamma, mbgnbd, paretonbd
from fidelite.clv.fitting import FitResult
from fidelite.clv.triples import FloatArray, IntArray, Triples

UNITS_PER_YEAR = {"day": 365.25, "week": 365.25 / 7.0}
MONTHS_PER_YEAR = 12
MAX_HORIZON_YEARS = 100


def max_horizon(time_unit: str) -> float:
    """The longest horizon predictions accept, in ``time_unit``s (100 years)."""
    return MAX_HORIZON_YEARS * UNITS_PER_YEAR[time_unit]


def monthly_steps(horizon: float, time_unit: str) -> int:
    """Number of equal discounting steps of about one month in ``horizon`` (at least 1)."""
    return max(1, round(horizon * MONTHS_PER_YEAR / UNITS_PER_YEAR[time_unit]))


class PurchaseModel(Protocol):
    """What predictions need from a purchase-process model module."""

    MODEL: str
    PARAMS: tuple[str, ...]

    def fit(self, triples: Triples, *, penalizer: float = 0.0) -> FitResult: ...

    def probability_alive(
        self, theta: FloatArray, x: FloatArray, t: FloatArray, T: FloatArray
    ) -> FloatArray: ...

    def expected_purchases(
        self, theta: FloatArray, horizon: float, x: FloatArray, t: FloatArray, T: FloatArray
    ) -> FloatArray: ...

    def expected_purchases_if_alive(
        self, theta: FloatArray, horizon: float, x: FloatArray, T: FloatArray
    ) -> FloatArray: ...

    def population_expected_purchases(
        self, theta: FloatArray, horizon: float | FloatArray
    ) -> FloatArray: ...


_PURCHASE_MODULES: dict[str, ModuleType] = {m.MODEL: m for m in (bgnbd, mbgnbd, paretonbd)}


def purchase_model(name: str) -> PurchaseModel:
    """The purchase model called ``name`` (bgnbd, mbgnbd or paretonbd)."""
    try:
        return cast(PurchaseModel, _PURCHASE_MODULES[name])
    except KeyError:
        known = ", ".join(sorted(_PURCHASE_MODULES))
        raise ValueError(f"unknown purchase model {name!r} (known: {known})") from None


@dataclass(frozen=True)
class TriplePredictions:
    """Predictions per unique triple (same order as the ``Triples`` rows)."""

    probability_alive: FloatArray
    expected_purchases: FloatArray
    discounted_purchases: FloatArray


def predict_triples(
    fit: FitResult,
    triples: Triples,
    horizon: float,
    *,
    discount_rate: float = 0.0,
    time_unit: str = "week",
    steps: int | None = None,
) -> TriplePredictions:
    """P(alive), expected purchases and discounted expected purchases for each triple.

    ``steps`` None (the default) discounts per month (:func:`monthly_steps`) and refuses a
    horizon over :func:`max_horizon`; an explicit number of steps takes any horizon. A
    discount factor too large for a float (a huge rate over a long horizon) counts as
    infinite: that step's purchases are worth 0 today.
    """
    if not (np.isfinite(horizon) and horizon > 0):
        raise ValueError(f"horizon must be a finite number > 0, got {horizon}")
    if steps is None:
        if horizon > max_horizon(time_unit):
            raise ValueError(horizon_limit_message("horizon", horizon, time_unit))
        steps = monthly_steps(horizon, time_unit)
    if not (np.isfinite(discount_rate) and discount_rate >= 0) or steps < 1:
        raise ValueError(
            f"discount_rate must be a finite number >= 0 and steps >= 1, got {discount_rate} "
            f"and {steps}"
        )
    model = purchase_model(fit.model)
    theta = fit.param_array()
    x, t, T = triples.frequency, triples.recency, triples.T
    alive = model.probability_alive(theta, x, t, T)
    per_year = UNITS_PER_YEAR[time_unit]
    # E[X | active] depends on (x, T) only: evaluate the costly 2F1 per distinct pair.
    pair_x, pair_T, pair_index = _distinct_pairs(x, T)
    previous = np.zeros_like(pair_x)
    discounted = np.zeros_like(pair_x)
    base = np.float64(1.0 + discount_rate)
    for k in range(1, steps + 1):
        at = horizon * k / steps
        cumulative = model.expected_purchases_if_alive(theta, at, pair_x, pair_T)
        with np.errstate(over="ignore"):  # inf: worth 0 today
            factor = base ** np.float64(at / per_year)
        discounted += (cumulative - previous) / factor
        previous = cumulative
    return TriplePredictions(
        probability_alive=alive,
        expected_purchases=previous[pair_index] * alive,
        discounted_purchases=discounted[pair_index] * alive,
    )


def horizon_limit_message(name: str, horizon: float, time_unit: str) -> str:
    """Why ``horizon`` is refused: the allowed range, in ``time_unit``s and in years."""
    limit = max_horizon(time_unit)
    return (
        f"{name} must be at most {MAX_HORIZON_YEARS} years ({limit:,.3f} {time_unit}s; "
        f"CLV is discounted per month, {MAX_HORIZON_YEARS * MONTHS_PER_YEAR:,} steps at most), "
        f"got {horizon:g}"
    )


def _distinct_pairs(x: FloatArray, T: FloatArray) -> tuple[FloatArray, FloatArray, IntArray]:
    """Distinct (x, T) rows and each row's index into them."""
    T_values, T_index = np.unique(T, return_inverse=True)
    key = x.astype(np.int64) * T_values.shape[0] + T_index
    keys, index = np.unique(key, return_inverse=True)
    n_T = T_values.shape[0]
    return (keys // n_T).astype(np.float64), T_values[keys % n_T], index.astype(np.int64)


@dataclass(frozen=True)
class CustomerPredictions:
    """Per-customer predictions, in the order of the summary the triples came from."""

    probability_alive: FloatArray
    expected_purchases: FloatArray
    expected_spend: FloatArray | None
    clv: FloatArray | None


def predict_customers(
    fit: FitResult,
    triples: Triples,
    horizon: float,
    *,
    spend_fit: FitResult | None = None,
    monetary_value: FloatArray | None = None,
    discount_rate: float = 0.0,
    time_unit: str = "week",
    steps: int | None = None,
) -> CustomerPredictions:
    """Scatter triple predictions to customers; add spend and CLV with a spend model.

    ``triples`` must come from :func:`fidelite.clv.triples.compress` with
    ``keep_inverse=True``; ``monetary_value`` is each customer's mean repeat spend (in
    the same customer order), needed with ``spend_fit``. A customer whose expected spend
    is infinite (a spend fit with q <= 1, see :func:`gammagamma.spend_defined`) gets
    ``inf`` as spend and CLV, never a negative number.
    """
    if triples.inverse is None:
        raise ValueError("the triples were compressed without keep_inverse=True")
    per_triple = predict_triples(
        fit, triples, horizon, discount_rate=discount_rate, time_unit=time_unit, steps=steps
    )
    inverse = triples.inverse
    spend: FloatArray | None = None
    clv: FloatArray | None = None
    if spend_fit is not None:
        if monetary_value is None or monetary_value.shape[0] != inverse.shape[0]:
            raise ValueError("monetary_value must give one mean spend per customer")
        frequency = triples.frequency[inverse]
        spend = gammagamma.expected_spend(spend_fit.param_array(), frequency, monetary_value)
        # inf where the spend has no finite mean (q <= 1 and few repeat purchases).
        with np.errstate(invalid="ignore"):
            clv = spend * per_triple.discounted_purchases[inverse]
    return CustomerPredictions(
        probability_alive=per_triple.probability_alive[inverse],
        expected_purchases=per_triple.expected_purchases[inverse],
        expected_spend=spend,
        clv=clv,
    )


@dataclass(frozen=True)
class PopulationSummary:
    """Population-level expectations implied by the fitted models."""

    horizon: float
    new_customer_expected_purchases: float
    existing_customers_expected_purchases: float
    expected_active_customers: float
    mean_spend_per_transaction: float | None
    existing_customers_expected_value: float | None


def population_summary(
    fit: FitResult,
    triples: Triples,
    horizon: float,
    *,
    spend_fit: FitResult | None = None,
    customer_predictions: CustomerPredictions | None = None,
) -> PopulationSummary:
    """Expected purchases of a new customer over the horizon, and totals for the base.

    The mean spend is ``inf`` when the spend fit has q <= 1, and so is the base's value
    when a customer's CLV is (:func:`predict_customers`).
    """
    model = purchase_model(fit.model)
    theta = fit.param_array()
    per_triple = predict_triples(fit, triples, horizon, steps=1)
    mean_spend = gammagamma.population_mean_spend(spend_fit.param_array()) if spend_fit else None
    value = None
    if customer_predictions is not None and customer_predictions.clv is not None:
        value = float(customer_predictions.clv.sum())
    return PopulationSummary(
        horizon=horizon,
        new_customer_expected_purchases=float(
            model.population_expected_purchases(theta, horizon)[0]
        ),
        existing_customers_expected_purchases=float(triples.weight @ per_triple.expected_purchases),
        expected_active_customers=float(triples.weight @ per_triple.probability_alive),
        mean_spend_per_transaction=mean_spend,
        existing_customers_expected_value=value,
    )
