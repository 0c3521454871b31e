"""Calibration/holdout validation: predicted vs actual purchases in the holdout period.

The standard check of a buy-till-you-die model (Fader, Hardie & Lee 2005, Figure 4):
fit on the calibration period, predict each customer's purchases over the holdout
length, and compare mean predicted with mean actual purchases by calibration frequency
(0, 1, ..., ``max_group``+). Invariant: group counts add up to the number of customers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from fidelite.clv.fitting import FitResult
from fidelite.clv.predictions import predict_triples
from fidelite.clv.triples import FloatArray, compress


@dataclass(frozen=True)
class FrequencyGroup:
    """Holdout comparison for customers with the same calibration frequency."""

    frequency: str
    customers: int
    actual_mean: float
    predicted_mean: float


@dataclass(frozen=True)
class ValidationReport:
    """Predicted vs actual holdout purchases, overall and by calibration frequency."""

    model: str
    holdout_length: float
    customers: int
    actual_total: float
    predicted_total: float
    mean_absolute_error: float
    groups: tuple[FrequencyGroup, ...]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready view of the report."""
        return asdict(self)


def holdout_report(
    fit: FitResult,
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    holdout_frequency: ArrayLike,
    holdout_length: float,
    *,
    max_group: int = 7,
) -> ValidationReport:
    """Compare the fitted model's holdout predictions with what customers did."""
    triples = compress(frequency, recency, T)
    assert triples.inverse is not None
    predicted = predict_triples(fit, triples, holdout_length, steps=1).expected_purchases
    per_customer: FloatArray = predicted[triples.inverse]
    actual = np.asarray(holdout_frequency, dtype=np.float64)
    if actual.shape != per_customer.shape:
        raise ValueError("holdout_frequency must give one count per customer")
    x = triples.frequency[triples.inverse]
    groups = []
    for k in range(max_group + 1):
        members = x >= k if k == max_group else x == k
        count = int(members.sum())
        if count == 0:
            continue
        groups.append(
            FrequencyGroup(
                frequency=f"{k}+" if k == max_group else str(k),
                customers=count,
                actual_mean=float(actual[members].mean()),
                predicted_mean=float(per_customer[members].mean()),
            )
        )
    return ValidationReport(
        model=fit.model,
        holdout_length=holdout_length,
        customers=int(actual.shape[0]),
        actual_total=float(actual.sum()),
        predicted_total=float(per_customer.sum()),
        mean_absolute_error=float(np.abs(actual - per_customer).mean()),
        groups=tuple(groups),
    )
