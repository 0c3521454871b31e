"""Discounted CLV per month, as lifetimes' ``customer_lifetime_value``, at any horizon.

The horizon used to be split into 12 steps whatever its length, each discounted at its
end: over 50 years the CDNOW base was worth 237,347 instead of 297,761, and CLV fell as
the horizon grew (427 at 50,000 weeks). Now each step is about one month.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from fidelite.clv import bgnbd, gammagamma
from fidelite.clv.fitting import FitResult
from fidelite.clv.predictions import (
    UNITS_PER_YEAR,
    max_horizon,
    monthly_steps,
    predict_customers,
    predict_triples,
)
from fidelite.clv.triples import Triples, compress
from tests.clv.cdnow import Cdnow

MONTH_DAYS = 365.25 / 12  # 30.4375
RATE = 1.1**12 - 1.0  # yearly rate whose monthly factor is 1.1


def _pareto(r: float, alpha: float, s: float, beta: float) -> FitResult:
    return FitResult(
        model="paretonbd",
        params={"r": r, "alpha": alpha, "s": s, "beta": beta},
        log_likelihood=0.0,
        std_errors={},
        n_customers=1,
        n_unique=1,
        converged=True,
        message="",
        iterations=0,
        function_evaluations=0,
        gradient_norm=0.0,
        penalizer=0.0,
    )


@pytest.fixture(scope="module")
def newcomer() -> Triples:
    """One customer who just made their first purchase (x = t_x = T = 0)."""
    zero = np.zeros(1)
    return compress(zero, zero, zero, keep_inverse=True)


def test_each_month_discounted_at_its_end_by_hand(newcomer: Triples) -> None:
    # Pareto/NBD r = 1, s = 2, alpha = beta = one month (in days): a new customer's
    # E[X(h) | alive] = h / (month + h), i.e. k / (k + 1) after k months: 1/2, 2/3, 3/4.
    fit = _pareto(1.0, MONTH_DAYS, 2.0, MONTH_DAYS)
    three = predict_triples(fit, newcomer, 3 * MONTH_DAYS, discount_rate=RATE, time_unit="day")
    assert three.probability_alive.tolist() == [1.0]
    assert three.expected_purchases[0] == pytest.approx(0.75, rel=1e-14)
    by_hand = (1 / 2) / 1.1 + (1 / 6) / 1.1**2 + (1 / 12) / 1.1**3  # 0.654896...
    assert three.discounted_purchases[0] == pytest.approx(by_hand, rel=1e-12)
    assert round(by_hand, 9) == 0.654896068
    # Five years: 60 monthly steps, the k-th worth 1 / (k (k + 1)) purchases.
    five = predict_triples(fit, newcomer, 60 * MONTH_DAYS, discount_rate=RATE, time_unit="day")
    by_hand = sum(1.0 / (k * (k + 1) * 1.1**k) for k in range(1, 61))
    assert five.discounted_purchases[0] == pytest.approx(by_hand, rel=1e-12)
    assert round(by_hand, 9) == 0.76020372  # 12 steps of 5 months gave 0.5572
    twelve = predict_triples(
        fit, newcomer, 60 * MONTH_DAYS, discount_rate=RATE, time_unit="day", steps=12
    )
    assert round(float(twelve.discounted_purchases[0]), 4) == 0.5572


def test_one_year_keeps_twelve_steps() -> None:
    assert [monthly_steps(h, "week") for h in (52.0, 52.1786, 39.0, 1.0, 4.0)] == [
        12,
        12,
        9,
        1,
        1,
    ]
    assert [monthly_steps(h, "day") for h in (365.0, 366.0, 30.0, 10.0)] == [12, 12, 1, 1]
    assert monthly_steps(max_horizon("week"), "week") == 1200
    assert monthly_steps(max_horizon("day"), "day") == 1200


@pytest.fixture(scope="module")
def cdnow_fits(cdnow: Cdnow) -> tuple[Triples, FitResult, FitResult]:
    triples = compress(cdnow.x, cdnow.t_x, cdnow.T, resolution=1 / 7, keep_inverse=True)
    spend = gammagamma.fit(gammagamma.SpendData.build(cdnow.x, cdnow.m))
    return triples, bgnbd.fit(triples), spend


LIFETIMES_MONTH_WEEKS = 4.345  # lifetimes' month with freq="W"


@pytest.mark.parametrize("months", [12, 120])
def test_clv_equals_lifetimes_customer_lifetime_value(
    cdnow: Cdnow, cdnow_fits: tuple[Triples, FitResult, FitResult], months: int
) -> None:
    pd = pytest.importorskip("pandas")
    lifetimes = pytest.importorskip("lifetimes")
    triples, fit, spend = cdnow_fits
    # lifetimes at fidelite's estimates, so only the CLV sums are compared.
    purchases = lifetimes.BetaGeoFitter()
    purchases.params_ = pd.Series(fit.params)
    purchases.predict = purchases.conditional_expected_number_of_purchases_up_to_time
    spending = lifetimes.GammaGammaFitter()
    p, q, gamma = spend.param_array()
    spending.params_ = pd.Series({"p": p, "q": q, "v": gamma})
    yearly = 0.1
    monthly = (1.0 + yearly) ** (LIFETIMES_MONTH_WEEKS / UNITS_PER_YEAR["week"]) - 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = spending.customer_lifetime_value(
            purchases,
            pd.Series(cdnow.x),
            pd.Series(cdnow.t_x),
            pd.Series(cdnow.T),
            pd.Series(cdnow.m),
            time=months,
            discount_rate=monthly,
            freq="W",
        ).to_numpy()
    mine = predict_customers(
        fit,
        triples,
        months * LIFETIMES_MONTH_WEEKS,
        spend_fit=spend,
        monetary_value=cdnow.m,
        discount_rate=yearly,
    ).clv
    assert mine is not None
    np.testing.assert_allclose(mine, theirs, rtol=1e-10)


def test_cdnow_base_value_grows_with_the_horizon(
    cdnow: Cdnow, cdnow_fits: tuple[Triples, FitResult, FitResult]
) -> None:
    triples, fit, spend = cdnow_fits

    def total(months: int) -> float:
        clv = predict_customers(
            fit,
            triples,
            months * LIFETIMES_MONTH_WEEKS,
            spend_fit=spend,
            monetary_value=cdnow.m,
            discount_rate=0.1,
        ).clv
        assert clv is not None
        return float(clv.sum())

    totals = [total(m) for m in (12, 60, 240, 600)]
    # lifetimes 0.11.3 customer_lifetime_value at these estimates (monthly rate
    # 1.1^(4.345/52.1786) - 1, freq="W"): 72,363.14, 193,242.52, 284,556.02, 297,761.04.
    expected = [72363.14105090, 193242.5218814, 284556.0206757, 297761.0355752]
    np.testing.assert_allclose(totals, expected, rtol=1e-9)
    assert totals == sorted(totals)


def test_horizon_over_one_hundred_years_is_refused(newcomer: Triples) -> None:
    fit = _pareto(1.0, MONTH_DAYS, 2.0, MONTH_DAYS)
    assert max_horizon("week") == 100 * 365.25 / 7 and max_horizon("day") == 36525.0
    longest = predict_triples(fit, newcomer, 36525.0, discount_rate=0.0, time_unit="day")
    assert longest.discounted_purchases[0] == pytest.approx(1200 / 1201, rel=1e-12)
    with pytest.raises(ValueError) as refused:
        predict_triples(fit, newcomer, 5218.0, discount_rate=0.1)
    assert str(refused.value) == (
        "horizon must be at most 100 years (5,217.857 weeks; CLV is discounted per month, "
        "1,200 steps at most), got 5218"
    )


def test_huge_rate_over_long_horizon_is_worth_almost_nothing(newcomer: Triples) -> None:
    # (1 + 1e300)^(k/12) overflows a float after 12 months: those months are worth 0.
    fit = _pareto(1.0, MONTH_DAYS, 2.0, MONTH_DAYS)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = predict_triples(fit, newcomer, 36525.0, discount_rate=1e300, time_unit="day")
    first = 0.5 / (1.0 + 1e300) ** (1 / 12)  # 1e-25; the later months add < 1e-49
    assert result.discounted_purchases[0] == pytest.approx(first, rel=1e-12)
    assert math.isfinite(float(result.expected_purchases[0]))
