"""Per-customer inputs of the health score (:mod:`fidelite.clv.health`) from the data.

As of the last day in the transactions (``as_of``), with a window of W days:

* days since last purchase = as_of - the customer's last purchase day;
* purchases and spend in the recent window (as_of - W, as_of] and in the previous one
  (as_of - 2W, as_of - W]; purchases = distinct orders, spend = purchase amounts
  (refunds excluded: a refund is not a sign of engagement either way);
* NPS answer = the customer's latest ``nps`` answer (the latest instant, not local
  time), the highest score when several share it
  (:func:`~fidelite.analytics.metrics.surveys.latest_scores`, as the kinds of loyal
  customers take it); missing without a surveys file or an
  answer (the component then drops out of that customer's score);
* support cases = cases in the recent window (missing without a support file).

Customers are those with at least one purchase, sorted by id.

P(alive) (:func:`probability_alive`) comes from BG/NBD fitted on the customer summary
in weeks. A fit that fails or does not converge (``converged`` false: e.g. no repeat
purchase, a flat likelihood, a parameter at its bound) gives no P(alive) at all, with a
note saying why: its figures are not estimates of anything (a customer who bought five
days ago can get P(alive) 0), as the loyalty report treats such a fit. The health
score does not depend on the fit and is computed either way.

:func:`customer_health` gives it all as a metric result (``metric``, ``definition``,
``parameters``, ``rows``, ``summary``), the shape every ``fidelite metrics`` command
prints, so it composes with ``fidelite metrics benchmark``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import ibis
import numpy as np
import pyarrow as pa

from fidelite.analytics.answers import LoadedAnswers
from fidelite.analytics.engine import Dataset
from fidelite.analytics.metrics.result import MetricResult
from fidelite.analytics.metrics.surveys import Answers, latest_scores
from fidelite.analytics.summary import customer_summary
from fidelite.analytics.support import LoadedSupport
from fidelite.clv.fitting import FitError, FitResult
from fidelite.clv.health import (
    ChurnRiskThresholds,
    HealthConfig,
    HealthInputs,
    HealthScore,
    churn_risk,
    health_score,
)
from fidelite.clv.predictions import predict_customers, purchase_model
from fidelite.clv.triples import FloatArray, SummaryError, compress


@dataclass(frozen=True)
class HealthData:
    """Customer ids and their health inputs, in the same order."""

    customer_ids: list[str]
    inputs: HealthInputs
    as_of: date
    window_days: int


def health_inputs(
    ds: Dataset,
    *,
    window_days: int = 90,
    answers: LoadedAnswers | None = None,
    support: LoadedSupport | None = None,
) -> HealthData:
    """Compute the health inputs of every purchasing customer."""
    if window_days <= 0:
        raise ValueError(f"the window must be at least one day, got {window_days}")
    t = ds.transactions
    p = t.filter(~t.is_refund)
    as_of: date = ds.execute(t.aggregate(d=t.day.max())).to_pylist()[0]["d"]
    recent_from = as_of - timedelta(days=window_days)
    previous_from = as_of - timedelta(days=2 * window_days)
    recent = (p.day > ibis.date(recent_from)) & (p.day <= ibis.date(as_of))
    previous = (p.day > ibis.date(previous_from)) & (p.day <= ibis.date(recent_from))
    expr = p.group_by("customer_id").aggregate(
        last_day=p.day.max(),
        orders_recent=p.order_id.nunique(where=recent),
        orders_previous=p.order_id.nunique(where=previous),
        spend_recent=p.amount.sum(where=recent),
        spend_previous=p.amount.sum(where=previous),
    )
    table = ds.execute(expr.order_by("customer_id"))
    ids = [str(v) for v in table.column("customer_id").to_pylist()]
    days = [(as_of - d).days for d in table.column("last_day").to_pylist()]
    inputs = HealthInputs(
        days_since_last_purchase=np.asarray(days, dtype=np.float64),
        purchases_recent=_floats(table, "orders_recent"),
        purchases_previous=_floats(table, "orders_previous"),
        spend_recent=_floats(table, "spend_recent"),
        spend_previous=_floats(table, "spend_previous"),
        nps_answer=_latest_nps(answers, ids, ds),
        support_cases=_support_counts(support, ids, recent_from, as_of),
    )
    return HealthData(ids, inputs, as_of, window_days)


def _floats(table: pa.Table, name: str) -> np.ndarray:
    values = table.column(name).to_pylist()
    return np.asarray([0.0 if v is None else float(v) for v in values], dtype=np.float64)


def _latest_nps(answers: LoadedAnswers | None, ids: list[str], ds: Dataset) -> np.ndarray:
    """Each customer's latest nps answer (ties on time: the highest score), on the
    dataset's engine, by the rule of the kinds of loyal customers."""
    out = np.full(len(ids), np.nan)
    if answers is None:
        return out
    latest = latest_scores(Answers(answers, ds.engine), ("nps",))
    for i, cid in enumerate(ids):
        if "nps" in latest.get(cid, {}):
            out[i] = latest[cid]["nps"]
    return out


def _support_counts(
    support: LoadedSupport | None, ids: list[str], after: date, until: date
) -> np.ndarray:
    if support is None:
        return np.full(len(ids), np.nan)
    rows = support.connection.execute(
        f"SELECT customer_id, count(*) FROM {support.table} "
        "WHERE day > ? AND day <= ? GROUP BY customer_id",
        [after, until],
    ).fetchall()
    counts = {str(c): float(n) for c, n in rows}
    return np.asarray([counts.get(cid, 0.0) for cid in ids], dtype=np.float64)


@dataclass(frozen=True)
class AliveEstimate:
    """BG/NBD P(alive) per customer, or ``None`` with ``note`` saying why there is none.

    Invariant: ``values`` is set exactly when the fit ran and converged; ``fit`` is the
    fit whenever one ran (converged or not), for the output's diagnostics.
    """

    values: FloatArray | None
    note: str | None
    fit: FitResult | None


def probability_alive(ds: Dataset, ids: list[str]) -> AliveEstimate:
    """BG/NBD P(alive) of each customer in ``ids`` (in that order), weeks at daily
    precision, from a fit on the whole file."""
    summary = customer_summary(ds, time_unit="week")
    if [str(v) for v in summary.column("customer_id").to_pylist()] != ids:
        raise ValueError("internal: summary and health customers differ")
    x, t, T = (_floats(summary, name) for name in ("frequency", "recency", "T"))
    unavailable = "probability_alive, churn_risk: null for every customer"
    try:
        triples = compress(x, t, T, resolution=1.0 / 7)
        fit = purchase_model("bgnbd").fit(triples)
    except (FitError, SummaryError) as exc:
        return AliveEstimate(None, f"{unavailable}: the BG/NBD model could not be fitted "
                                   f"({exc})", None)  # fmt: skip
    if not fit.converged:
        note = (
            f"{unavailable}: the BG/NBD model did not converge ({fit.message}), so its "
            "P(alive) is not an estimate of anything; the health scores do not use it"
        )
        return AliveEstimate(None, note, fit)
    return AliveEstimate(predict_customers(fit, triples, 1.0).probability_alive, None, fit)


def customer_health(
    ds: Dataset,
    *,
    window_days: int = 90,
    answers: LoadedAnswers | None = None,
    support: LoadedSupport | None = None,
) -> MetricResult:
    """Every purchasing customer's health score, its components' points, the raw inputs,
    P(alive) and churn risk, as a metric result.

    ``summary.note`` says why P(alive) and churn risk are null when they are (see
    :func:`probability_alive`); the parameters state the as-of day, the window, the
    weights and the inputs (files, time zone, engine) as every metric's do.
    """
    config, thresholds = HealthConfig(), ChurnRiskThresholds()
    data = health_inputs(ds, window_days=window_days, answers=answers, support=support)
    scored = health_score(data.inputs, config)
    alive = probability_alive(ds, data.customer_ids)
    rows = _rows(data, scored, alive.values)
    parameters: dict[str, Any] = {
        "as_of": data.as_of.isoformat(),
        "window_days": window_days,
        "weights": config.weights,
        "recency_half_life_days": config.recency_half_life_days,
        "churn_risk_thresholds": thresholds.__dict__,
        "surveys": answers.source if answers else None,
        "support_cases": support.source if support else None,
        **ds.describe(),
    }
    scores = [row["health_score"] for row in rows]
    summary: dict[str, Any] = {
        "customers": len(rows),
        "mean_health_score": round(sum(scores) / len(scores), 2) if scores else None,
    }
    if alive.note:
        summary["note"] = alive.note
    return MetricResult("health", _definition(data, config, thresholds), parameters, rows,
                        summary)  # fmt: skip


def _rows(data: HealthData, scored: HealthScore, alive: FloatArray | None) -> list[dict[str, Any]]:
    """One row per customer; points rounded to 2 decimals (they add up to the score up to
    that rounding), P(alive) to 4."""
    inputs = data.inputs
    risk = churn_risk(alive, scored.components["frequency_trend"]) if alive is not None else None
    rows = []
    for i, cid in enumerate(data.customer_ids):
        row: dict[str, Any] = {"customer_id": cid, "health_score": round(float(scored.score[i]), 2)}
        for name, values in scored.contributions.items():
            row[f"{name}_points"] = round(float(values[i]), 2)
        row["days_since_last_purchase"] = int(np.asarray(inputs.days_since_last_purchase)[i])
        nps = float(np.asarray(inputs.nps_answer)[i])
        row["nps_answer"] = None if np.isnan(nps) else int(nps)
        cases = float(np.asarray(inputs.support_cases)[i])
        row["support_cases"] = None if np.isnan(cases) else int(cases)
        row["probability_alive"] = None if alive is None else round(float(alive[i]), 4)
        row["churn_risk"] = None if risk is None else str(risk[i])
        rows.append(row)
    return rows


def _definition(data: HealthData, config: HealthConfig, th: ChurnRiskThresholds) -> str:
    w, days = config.weights, data.window_days
    return (
        f"Health score 0-100 per purchasing customer as of {data.as_of} (the last day in "
        "the data): the weighted mean of component scores in [0, 1]: recency = 0.5 ^ (days "
        f"since the last purchase / {config.recency_half_life_days:g}) (weight "
        f"{w['recency']:g}); frequency trend = orders in the last {days} days / (those + "
        f"orders in the {days} days before), 0.5 without orders ({w['frequency_trend']:g}); "
        f"spend trend = the same share of purchase spend, refunds excluded "
        f"({w['spend_trend']:g}); latest nps answer (highest score on a tie) / 10 "
        f"({w['nps']:g}); 1 / (1 + support "
        f"cases in the last {days} days) ({w['support']:g}). A component without data (no "
        "survey or support file, no nps answer) drops out and the other weights are "
        "rescaled; NAME_points is a component's share of the score (they add up to "
        "health_score). probability_alive: BG/NBD P(alive), fitted on the whole file in "
        "weeks (null when the model cannot be fitted or does not converge). churn_risk: "
        f"high when P(alive) < {th.high_below:g}; medium when P(alive) < "
        f"{th.medium_below:g} or the frequency trend < {th.falling_trend_below:g}; low "
        "otherwise."
    )
