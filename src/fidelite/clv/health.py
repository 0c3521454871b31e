"""Churn-risk segments and an explainable customer health score.

Health score (0-100): a weighted mean of component scores in [0, 1], each with a plain
meaning, so every customer's score decomposes exactly into visible contributions
(``contributions[name]`` sums to ``score``). Components:

* ``recency``: 0.5 ** (days since last purchase / half-life): 1 just after a purchase,
  halves every ``recency_half_life_days``.
* ``frequency_trend``: recent / (recent + previous) purchase counts over two equal
  windows: 0.5 = steady, above = growing, below = slowing (0.5 with no purchases).
* ``spend_trend``: the same share for spend.
* ``nps``: the last likelihood-to-recommend answer (0-10) / 10.
* ``support``: 1 / (1 + support cases in the window).

A missing input (NaN) drops out of that customer's weighted mean, and the remaining
weights are renormalised, so a customer without survey answers is not penalised.

Churn-risk segment: ``high`` when P(alive) < ``high_below``; ``medium`` when
P(alive) < ``medium_below`` or the frequency trend is below ``falling_trend_below``
(purchases slowing); otherwise ``low``. ``alive_risk`` is the same cut of P(alive)
without the trend (what ``clv predict`` writes, having no trend window): a different
figure under a different name.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

from fidelite.clv.triples import FloatArray

COMPONENTS = ("recency", "frequency_trend", "spend_trend", "nps", "support")


@dataclass(frozen=True)
class HealthConfig:
    """Weights of the components (any non-negative numbers) and the recency half-life."""

    weights: dict[str, float] = field(
        default_factory=lambda: {
            "recency": 0.30,
            "frequency_trend": 0.25,
            "spend_trend": 0.15,
            "nps": 0.20,
            "support": 0.10,
        }
    )
    recency_half_life_days: float = 90.0

    def __post_init__(self) -> None:
        unknown = set(self.weights) - set(COMPONENTS)
        if unknown:
            raise ValueError(f"unknown health components: {sorted(unknown)}")
        if any(w < 0 for w in self.weights.values()) or sum(self.weights.values()) <= 0:
            raise ValueError("health weights must be >= 0 with a positive sum")
        if self.recency_half_life_days <= 0:
            raise ValueError("recency_half_life_days must be > 0")


@dataclass(frozen=True)
class HealthInputs:
    """Per-customer inputs (equal-length arrays; NaN = not available)."""

    days_since_last_purchase: ArrayLike
    purchases_recent: ArrayLike
    purchases_previous: ArrayLike
    spend_recent: ArrayLike
    spend_previous: ArrayLike
    nps_answer: ArrayLike
    support_cases: ArrayLike


@dataclass(frozen=True)
class HealthScore:
    """Scores (0-100) and each component's contribution (they sum to the score)."""

    score: FloatArray
    components: dict[str, FloatArray]
    contributions: dict[str, FloatArray]


def _share(recent: FloatArray, previous: FloatArray) -> FloatArray:
    total = recent + previous
    with np.errstate(invalid="ignore", divide="ignore"):
        share: FloatArray = np.where(total > 0, recent / total, 0.5)
    return np.where(np.isnan(total), np.nan, share)


def component_scores(inputs: HealthInputs, config: HealthConfig) -> dict[str, FloatArray]:
    """Each component's score in [0, 1] (NaN where its input is missing)."""

    def arr(values: ArrayLike) -> FloatArray:
        return np.asarray(values, dtype=np.float64)

    nps = arr(inputs.nps_answer)
    if np.any((nps < 0) | (nps > 10)):
        raise ValueError("nps_answer must be between 0 and 10")
    days = arr(inputs.days_since_last_purchase)
    return {
        "recency": 0.5 ** (np.maximum(days, 0.0) / config.recency_half_life_days),
        "frequency_trend": _share(arr(inputs.purchases_recent), arr(inputs.purchases_previous)),
        "spend_trend": _share(arr(inputs.spend_recent), arr(inputs.spend_previous)),
        "nps": nps / 10.0,
        "support": 1.0 / (1.0 + np.maximum(arr(inputs.support_cases), 0.0)),
    }


def health_score(inputs: HealthInputs, config: HealthConfig | None = None) -> HealthScore:
    """Weighted health score with per-component contributions."""
    config = config or HealthConfig()
    scores = component_scores(inputs, config)
    names = [n for n in COMPONENTS if config.weights.get(n, 0.0) > 0]
    available_weight = sum(np.where(np.isnan(scores[n]), 0.0, config.weights[n]) for n in names)
    available_weight = np.asarray(available_weight, dtype=np.float64)
    contributions: dict[str, FloatArray] = {}
    with np.errstate(invalid="ignore", divide="ignore"):
        for n in names:
            share = np.where(np.isnan(scores[n]), 0.0, scores[n] * config.weights[n])
            contributions[n] = np.where(available_weight > 0, 100.0 * share / available_weight, 0.0)
    total: FloatArray = np.sum([contributions[n] for n in names], axis=0)
    return HealthScore(score=total, components=scores, contributions=contributions)


@dataclass(frozen=True)
class ChurnRiskThresholds:
    """Cut-offs for the churn-risk segments."""

    high_below: float = 0.3
    medium_below: float = 0.7
    falling_trend_below: float = 0.3


def alive_risk(
    probability_alive: ArrayLike, thresholds: ChurnRiskThresholds | None = None
) -> NDArray[np.str_]:
    """``high`` when P(alive) < ``high_below``, ``medium`` when < ``medium_below``, else
    ``low``: P(alive) only, never the frequency trend (that is :func:`churn_risk`)."""
    th = thresholds or ChurnRiskThresholds()
    alive = np.asarray(probability_alive, dtype=np.float64)
    segment = np.where(
        alive < th.high_below, "high", np.where(alive < th.medium_below, "medium", "low")
    )
    return segment.astype(np.str_)


def churn_risk(
    probability_alive: ArrayLike,
    frequency_trend: ArrayLike | None = None,
    thresholds: ChurnRiskThresholds | None = None,
) -> NDArray[np.str_]:
    """Segment each customer into ``high``, ``medium`` or ``low`` churn risk."""
    th = thresholds or ChurnRiskThresholds()
    alive = np.asarray(probability_alive, dtype=np.float64)
    trend = (
        np.full_like(alive, 0.5)
        if frequency_trend is None
        else np.asarray(frequency_trend, dtype=np.float64)
    )
    falling = np.nan_to_num(trend, nan=0.5) < th.falling_trend_below
    segment = np.where(
        alive < th.high_below,
        "high",
        np.where((alive < th.medium_below) | falling, "medium", "low"),
    )
    return segment.astype(np.str_)
