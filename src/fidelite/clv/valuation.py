"""From a per-customer summary to each customer's value: the one pipeline the CLI's
``clv predict`` and the loyalty report share.

Steps: compress (frequency, recency, T) into weighted triples, fit the purchase model
(BG/NBD by default) and Gamma-Gamma on the repeat spend, then predict P(alive),
expected purchases, expected spend and discounted CLV over the horizon for every
customer, in the order of the summary.

A repeat customer whose mean repeat value is not positive (0: zero-amount repeat days)
is outside Gamma-Gamma, which describes positive spends: they are left out of the spend
fit, their expected spend and CLV are NaN (``Valuation.spend_left_out`` marks them) and
the base's value sums the other customers. One such customer no longer stops the
valuation of the whole base.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from fidelite.clv import gammagamma
from fidelite.clv.fitting import FitResult
from fidelite.clv.predictions import (
    CustomerPredictions,
    PopulationSummary,
    population_summary,
    predict_customers,
    purchase_model,
)
from fidelite.clv.triples import FloatArray, compress

DAYS_PER_UNIT = {"day": 1, "week": 7}


@dataclass(frozen=True)
class Valuation:
    """The fitted models and the per-customer predictions (CLV and spend are set)."""

    fit: FitResult
    spend_fit: FitResult
    predictions: CustomerPredictions
    population: PopulationSummary
    spend_left_out: NDArray[np.bool_] | None = None  # repeat customers with mean value <= 0

    @property
    def clv(self) -> FloatArray:
        assert self.predictions.clv is not None
        return self.predictions.clv

    @property
    def expected_spend(self) -> FloatArray:
        assert self.predictions.expected_spend is not None
        return self.predictions.expected_spend


def column(table: pa.Table, name: str) -> FloatArray:
    """A numeric summary column as float64."""
    return np.asarray(table.column(name).to_numpy(zero_copy_only=False), dtype=np.float64)


def value_customers(
    summary: pa.Table,
    *,
    horizon: float,
    discount_rate: float,
    time_unit: str = "week",
    model: str = "bgnbd",
    penalizer: float = 0.0,
) -> Valuation:
    """Fit ``model`` and Gamma-Gamma on ``summary`` and value every customer.

    ``summary`` has the columns of :func:`fidelite.analytics.summary.customer_summary`
    in ``time_unit``; raises ``FitError``/``SummaryError``/``ValueError`` with the reason
    when the data cannot support a fit.
    """
    if not (np.isfinite(horizon) and horizon > 0):
        raise ValueError(f"the horizon must be a finite number > 0, got {horizon}")
    x, t, T = column(summary, "frequency"), column(summary, "recency"), column(summary, "T")
    m = column(summary, "monetary_value")
    triples = compress(x, t, T, resolution=1.0 / DAYS_PER_UNIT[time_unit])
    fit = purchase_model(model).fit(triples, penalizer=penalizer)
    left_out = gammagamma.outside_model(x, m)
    spend_fit = gammagamma.fit(gammagamma.inside_data(x, m), penalizer=penalizer)
    preds = predict_customers(
        fit, triples, horizon, spend_fit=spend_fit, monetary_value=np.where(left_out, 0.0, m),
        discount_rate=discount_rate, time_unit=time_unit,
    )  # fmt: skip
    population = population_summary(
        fit, triples, horizon, spend_fit=spend_fit, customer_predictions=preds
    )
    if left_out.any():
        assert preds.expected_spend is not None and preds.clv is not None
        spend = np.where(left_out, np.nan, preds.expected_spend)
        clv = np.where(left_out, np.nan, preds.clv)
        preds = replace(preds, expected_spend=spend, clv=clv)
        population = replace(
            population, existing_customers_expected_value=float(clv[~left_out].sum())
        )
    return Valuation(fit, spend_fit, preds, population, left_out)
