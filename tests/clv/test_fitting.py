"""Fitting behaviour: weights, penalty, failure modes, input checks."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from fidelite.clv import bgnbd, gammagamma, mbgnbd, paretonbd, sbg
from fidelite.clv.triples import SummaryError, Triples, compress
from tests.clv.cdnow import Cdnow


def test_compress_groups_equal_triples_and_maps_customers_back() -> None:
    triples = compress([0, 2, 0, 2, 1], [0, 3, 0, 3, 1], [5, 6, 5, 6, 6], resolution=1.0)
    assert triples.frequency.tolist() == [0.0, 1.0, 2.0]
    assert triples.recency.tolist() == [0.0, 1.0, 3.0]
    assert triples.T.tolist() == [5.0, 6.0, 6.0]
    assert triples.weight.tolist() == [2.0, 1.0, 2.0]
    assert triples.inverse is not None
    assert triples.inverse.tolist() == [0, 2, 0, 2, 1]


def test_compress_without_resolution_groups_exact_values() -> None:
    triples = compress([1, 1, 1], [0.5, 0.5, 0.25], [2.0, 2.0, 2.0])
    assert triples.weight.tolist() == [1.0, 2.0]
    assert triples.recency.tolist() == [0.25, 0.5]


@pytest.mark.parametrize(
    ("frequency", "recency", "T", "message"),
    [
        ([1, 2], [1, 5], [3, 4], "row 1: T is smaller than recency"),
        ([1, -1], [1, 0], [3, 4], "row 1: frequency is negative"),
        ([0, 1.5], [0, 1], [3, 4], "row 1: frequency is not a whole number"),
        ([0, 1], [2, 1], [3, 4], "row 0: recency must be 0 when frequency is 0"),
        ([0, 1], [0, float("nan")], [3, 4], "row 1: recency is not a finite number"),
    ],
)
def test_compress_rejects_invalid_summary_naming_row(
    frequency: list[float], recency: list[float], T: list[float], message: str
) -> None:
    with pytest.raises(SummaryError, match=message):
        compress(frequency, recency, T)


def test_fit_on_weighted_triples_equals_fit_on_customers(cdnow: Cdnow) -> None:
    per_customer = Triples(cdnow.x, cdnow.t_x, cdnow.T, np.ones_like(cdnow.x))
    compressed = compress(cdnow.x, cdnow.t_x, cdnow.T, resolution=1 / 7)
    a, b = bgnbd.fit(per_customer), bgnbd.fit(compressed)
    assert a.log_likelihood == pytest.approx(b.log_likelihood, abs=1e-6)
    np.testing.assert_allclose(a.param_array(), b.param_array(), rtol=1e-5)
    assert (a.n_unique, b.n_unique) == (2357, len(compressed))


def test_fit_with_penalizer_shrinks_parameters(cdnow_triples: Triples) -> None:
    free = bgnbd.fit(cdnow_triples)
    penalised = bgnbd.fit(cdnow_triples, penalizer=0.1)
    assert (penalised.param_array() < free.param_array()).all()
    assert penalised.log_likelihood < free.log_likelihood
    assert penalised.penalizer == 0.1


@pytest.mark.parametrize("model", [paretonbd, bgnbd, mbgnbd], ids=lambda m: m.__name__)
def test_fit_without_repeat_purchases_reports_unidentified_parameters(model: Any) -> None:
    # Nobody ever came back: the purchase rate -> 0, so the fit must say so rather than
    # return NaN or "converged" (whichever way the optimiser left the flat ridge: that
    # depends on the machine's rounding, so the data decide the message).
    triples = compress(np.zeros(500), np.zeros(500), np.linspace(1, 40, 500))
    fit = model.fit(triples)
    values = [*fit.params.values(), fit.log_likelihood]
    assert np.isfinite(values).all()
    assert not fit.converged
    assert "no customer made a repeat purchase: the data do not identify" in fit.message


def test_one_repeat_purchase_is_enough_to_try(cdnow_triples: Triples) -> None:
    fit = paretonbd.fit(cdnow_triples)  # the usual case is not flagged as unidentified
    assert fit.converged and fit.message == "converged"


def test_fit_sbg_without_churn_reports_bound() -> None:
    fit = sbg.fit(sbg.ChurnData.from_survivors([100, 100, 100, 100]))
    assert not fit.converged
    assert "the data do not identify the parameters" in fit.message
    assert np.isfinite(fit.log_likelihood)


def test_fit_rejects_negative_penalizer(cdnow_triples: Triples) -> None:
    with pytest.raises(ValueError, match="penalizer must be >= 0"):
        bgnbd.fit(cdnow_triples, penalizer=-1.0)


def test_spend_data_rejects_non_positive_value_naming_row() -> None:
    with pytest.raises(SummaryError, match="row 2: monetary_value must be a positive number"):
        gammagamma.SpendData.build([1, 0, 3], [10.0, 0.0, -5.0])


def test_cohort_curve_rejects_growth_naming_period() -> None:
    with pytest.raises(SummaryError, match="period 2: the number of active customers cannot grow"):
        sbg.ChurnData.from_survivors([100, 80, 90])
