"""`fidelite clv fit -m sbg` on transactions files: the published sBG cohorts.

Fader & Hardie (2007), "How to project customer retention", Table 1: of 1,000 customers
who subscribed in year 0, the regular and high-end segments' survivors after years
1..7, fitted to gamma, delta = 0.704, 1.182 (regular) and 0.668, 3.806 (high end).
The transactions file has one payment per customer per period: a customer lost in year
k paid k times; a survivor paid 8 times and is still subscribed.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from fidelite.cli.main import _register, app
from fidelite.clv import sbg

runner = CliRunner()
_register()

SURVIVORS = {
    "regular": [1000, 631, 468, 382, 326, 289, 262, 241],
    "high": [1000, 869, 743, 653, 593, 551, 517, 491],
}
PUBLISHED = {"regular": {"gamma": 0.704, "delta": 1.182}, "high": {"gamma": 0.668, "delta": 3.806}}
START = date(2000, 1, 1)


def _cohort_file(path: Path, survivors: list[int], step_days: int) -> Path:
    """One row per payment, every ``step_days`` days from 2000-01-01."""
    lines = ["customer_id,timestamp,amount"]
    payments = [k for k in range(1, 8) for _ in range(survivors[k - 1] - survivors[k])]
    payments += [8] * survivors[7]
    for customer, count in enumerate(payments, start=1):
        lines += [f"c{customer},{START + timedelta(days=step_days * j)},10" for j in range(count)]
    path.write_text("\n".join(lines) + "\n")
    return path


def _fit(path: Path, *args: str) -> dict[str, object]:
    result = runner.invoke(app, ["clv", "fit", "-i", str(path), "-m", "sbg", *args, "-f", "json"])
    assert result.exit_code == 0, result.output
    payload: dict[str, object] = json.loads(result.stdout)
    return payload


@pytest.mark.parametrize("segment", ["regular", "high"])
@pytest.mark.parametrize(
    ("step_days", "unit", "period", "end_after_last"),
    [
        (100, "day", "100", 0),  # the survivors' 8th payment is on the calibration end day
        (100, "day", "100", 1),  # the day after it
        (100, "day", "100", 99),  # their 9th payment is due the day after the end
        (364, "week", "52", 30),  # yearly payments counted in weeks
    ],
    ids=["paid-on-end-day", "day-after", "due-after-end", "weeks"],
)
def test_fit_sbg_from_transactions_matches_fader_hardie_2007(
    tmp_path: Path, segment: str, step_days: int, unit: str, period: str, end_after_last: int
) -> None:
    data = _cohort_file(tmp_path / "tx.csv", SURVIVORS[segment], step_days)
    end = START + timedelta(days=7 * step_days + end_after_last)
    payload = _fit(
        data, "--time-unit", unit, "--period-length", period, "--calibration-end", str(end)
    )
    params = payload["params"]
    assert isinstance(params, dict)
    assert {k: round(v, 3) for k, v in params.items()} == PUBLISHED[segment]
    assert payload["converged"] is True and payload["n_customers"] == 1000
    # The same likelihood as the published cohort curve, to rounding.
    reference = sbg.fit(sbg.ChurnData.from_survivors(SURVIVORS[segment]))
    assert payload["log_likelihood"] == pytest.approx(reference.log_likelihood, rel=1e-9)


@pytest.mark.parametrize("end_day", [800, 801], ids=["due-on-end-day", "day-after"])
def test_a_renewal_missed_on_or_before_the_end_day_is_churn(tmp_path: Path, end_day: int) -> None:
    # The survivors' 9th payment is due on day 800: unpaid by the end of the calibration
    # end day (observed whole, as its payments are), it is missed, so all 1,000
    # customers churned and the fit is the one of a cohort lost by year 8.
    data = _cohort_file(tmp_path / "tx.csv", SURVIVORS["regular"], 100)
    end = START + timedelta(days=end_day)
    payload = _fit(data, "--time-unit", "day", "--period-length", "100", "--calibration-end",
                   str(end))  # fmt: skip
    reference = sbg.fit(sbg.ChurnData.from_survivors([*SURVIVORS["regular"], 0]))
    assert payload["log_likelihood"] == pytest.approx(reference.log_likelihood, rel=1e-9)


def test_from_payments_scores_active_customers_on_the_renewals_they_survived() -> None:
    # Active after 3 payments: survived 2 renewals, S(2); after 1 payment: S(0) = 1.
    data = sbg.ChurnData.from_payments([3, 3, 1, 2], [0, 1, 0, 1])
    assert sorted(zip(data.periods, data.churned, data.weight, strict=True)) == [
        (0.0, 0.0, 1.0),
        (2.0, 0.0, 1.0),
        (2.0, 1.0, 1.0),
        (3.0, 1.0, 1.0),
    ]
    theta = np.array([0.7, 1.2])
    ll, _ = sbg.loglik_grad(theta, data)
    expected = (
        np.log(sbg.survival(theta, 2))
        + np.log(sbg.survival(theta, 1) - sbg.survival(theta, 2))
        + np.log(sbg.survival(theta, 2) - sbg.survival(theta, 3))
    )
    assert ll == pytest.approx(float(expected[()]), rel=1e-12)
    alone, alone_grad = sbg.loglik_grad(theta, sbg.ChurnData.from_payments([1], [0]))
    assert alone == 0.0 and np.abs(alone_grad).max() < 1e-15


def _singles(path: Path, n: int, last_day: date) -> Path:
    """``n`` customers with one payment each, on days spread over the 200 days to
    ``last_day``: the churned ones are all lost in their first period."""
    lines = ["customer_id,timestamp,amount"]
    lines += [f"s{i},{last_day - timedelta(days=i)},10" for i in range(n)]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("end", ["2024-07-31", "2025-07-31"], ids=["some-active", "all-churned"])
def test_fit_sbg_on_one_payment_per_customer_is_unidentified(tmp_path: Path, end: str) -> None:
    # Nobody renewed: the likelihood depends on gamma/(gamma+delta) only (flat along that
    # ridge: -69.3031 at x0.1 and x10 in the brief's data), so no estimate, whatever
    # point of the ridge the optimiser stops at.
    data = _singles(tmp_path / "tx.csv", 200, date(2024, 7, 31))
    args = ["clv", "fit", "-i", str(data), "-m", "sbg", "--time-unit", "day"]
    result = runner.invoke(app, [*args, "--period-length", "30", "--calibration-end", end,
                                 "-f", "json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["converged"] is False and payload["n_customers"] == 200
    assert payload["message"].startswith(
        "sbg: no customer was observed through a second period (a renewal followed by "
        "another renewal or by churn), so only the mean churn probability "
        "gamma/(gamma+delta) is identified: the data do not identify the parameters"
    )
    assert "Warning: the churn model did not converge (sbg: no customer was observed" in (
        result.stderr
    )


@pytest.mark.parametrize(
    ("active", "reason"),
    [
        ([100, 40], "no customer was observed through a second period"),
        ([100, 0], "no customer was observed through a second period"),
        ([100, 100, 100, 100], "no customer churned"),
    ],
)
def test_sbg_unidentified_data_never_converge(active: list[int], reason: str) -> None:
    fit = sbg.fit(sbg.ChurnData.from_survivors(active))
    assert fit.converged is False
    assert fit.message.startswith(f"sbg: {reason}")


@pytest.mark.parametrize("segment", ["regular", "high"])
def test_published_cohorts_stay_identified(segment: str) -> None:
    data = sbg.ChurnData.from_survivors(SURVIVORS[segment])
    assert sbg.unidentified(data) is None
    assert sbg.fit(data).converged is True
