"""Per-customer summary: hand-computed BTYD values (lifetimes convention, freq='D')."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from fidelite.analytics.io import LoadOptions
from fidelite.analytics.summary import calibration_holdout_summary, customer_summary

TX = """
customer_id,timestamp,amount
A,2024-01-01 10:00:00,10
A,2024-01-01 18:00:00,5
A,2024-01-05,20
A,2024-01-15,30
B,2024-01-10,7
C,2024-01-02,12
C,2024-01-08,-12
"""


def rows(table: Any) -> dict[str, dict[str, Any]]:
    return {r["customer_id"]: r for r in table.to_pylist()}


def test_summary_counts_repeat_days_with_same_day_purchases_merged(
    write_csv: Callable[..., Path],
) -> None:
    # A buys on Jan 1 (twice: one period worth 15), Jan 5 (20) and Jan 15 (30).
    # The last day in the file is Jan 15, so T = 14 for A, 5 for B, 13 for C.
    out = rows(customer_summary(write_csv(TX)))
    assert out["A"] == {
        "customer_id": "A",
        "frequency": 2,
        "recency": 14.0,
        "T": 14.0,
        "monetary_value": 25.0,  # mean of the repeat days (20 + 30) / 2
    }
    assert out["B"] == {
        "customer_id": "B",
        "frequency": 0,
        "recency": 0.0,
        "T": 5.0,
        "monetary_value": 0.0,
    }


def test_summary_ignores_refunds_as_purchases(write_csv: Callable[..., Path]) -> None:
    # C's refund on Jan 8 is neither a purchase day nor part of a day's value.
    out = rows(customer_summary(write_csv(TX)))
    assert (out["C"]["frequency"], out["C"]["recency"], out["C"]["T"]) == (0, 0.0, 13.0)


def test_summary_in_weeks_divides_days_by_seven(write_csv: Callable[..., Path]) -> None:
    out = rows(customer_summary(write_csv(TX), time_unit="week", observation_end=date(2024, 1, 29)))
    assert out["A"]["recency"] == 2.0  # 14 days
    assert out["A"]["T"] == 4.0  # Jan 1 -> Jan 29 = 28 days
    assert out["B"]["T"] == pytest.approx(19 / 7, abs=0)


def test_summary_drops_purchases_after_observation_end(write_csv: Callable[..., Path]) -> None:
    out = rows(customer_summary(write_csv(TX), observation_end=date(2024, 1, 5)))
    assert set(out) == {"A", "C"}  # B's first purchase is after the end
    assert out["A"] == {
        "customer_id": "A",
        "frequency": 1,
        "recency": 4.0,
        "T": 4.0,
        "monetary_value": 20.0,
    }


def test_summary_converts_aware_observation_end_to_business_day(
    write_csv: Callable[..., Path],
) -> None:
    # 2024-01-04 23:30 UTC is already Jan 5 in Paris: A's Jan 5 purchase counts.
    end = datetime(2024, 1, 4, 23, 30, tzinfo=UTC)
    out = rows(
        customer_summary(
            write_csv(TX), observation_end=end, options=LoadOptions(timezone="Europe/Paris")
        )
    )
    assert out["A"]["frequency"] == 1


def test_summary_places_utc_purchases_on_local_days(write_csv: Callable[..., Path]) -> None:
    # 23:30 UTC on Jan 1 is 00:30 on Jan 2 in Paris: two distinct local days.
    path = write_csv(
        """
        customer_id,timestamp,amount
        A,2024-01-01T10:00:00+00:00,10
        A,2024-01-01T23:30:00+00:00,40
        """
    )
    utc = rows(customer_summary(path))["A"]
    paris = rows(customer_summary(path, options=LoadOptions(timezone="Europe/Paris")))["A"]
    assert (utc["frequency"], utc["monetary_value"]) == (0, 0.0)
    assert (paris["frequency"], paris["recency"], paris["monetary_value"]) == (1, 1.0, 40.0)


def test_calibration_holdout_splits_on_calibration_day(write_csv: Callable[..., Path]) -> None:
    out = rows(calibration_holdout_summary(write_csv(TX), calibration_end=date(2024, 1, 5)))
    # Only customers seen by Jan 5 (A, C); the holdout runs Jan 6 - Jan 15 (10 days).
    assert set(out) == {"A", "C"}
    assert out["A"] == {
        "customer_id": "A",
        "frequency_cal": 1,
        "recency_cal": 4.0,
        "T_cal": 4.0,
        "monetary_value_cal": 20.0,
        "frequency_holdout": 1,
        "monetary_value_holdout": 30.0,
        "duration_holdout": 10.0,
    }
    assert (out["C"]["frequency_holdout"], out["C"]["duration_holdout"]) == (0, 10.0)


def test_calibration_holdout_rejects_end_before_calibration(
    write_csv: Callable[..., Path],
) -> None:
    with pytest.raises(ValueError, match="must be after calibration end"):
        calibration_holdout_summary(
            write_csv(TX), calibration_end=date(2024, 1, 20), observation_end=date(2024, 1, 10)
        )
