"""Kinds of loyal customers: an explainable classification from behaviour and answers.

Loyalty has two sides: what customers do (they keep buying) and what they feel (they
would recommend us). Customers who keep buying for another reason — a price, the
rewards, the shop being on their way — look loyal in the till data but leave when the
reason goes. This metric separates them, per customer, with rules that can be read
and checked by hand (SPEC §4, "kinds of loyal customers").

Inputs per customer who bought at least once (refund lines are not orders):

* orders = distinct orders; days since last = days from the last order to the
  observation end (the last day in the data unless given);
* coupon share = orders carrying a coupon code / orders x 100;
* the latest answer (latest instant, not local time; the highest score if several
  share it) to ``nps`` (recommend, 0-10), ``csat`` (1-5) and ``program`` (0-10: "how much do our
  program's rewards decide where you shop"), when a survey answers file is given.

Behaviourally loyal = at least ``min_orders`` orders and the last one at most
``active_days`` days before the end. Then the first matching kind wins:

1. **truly loyal** — behaviourally loyal and a promoter (recommend 9-10);
2. **low-price-loyal** — behaviourally loyal, and at least ``price_share`` % of the
   orders used a coupon: the price keeps them;
3. **program-loyal** — behaviourally loyal, and the ``program`` answer is 7-10: the
   rewards keep them;
4. **convenience-loyal** — behaviourally loyal, answered the recommend question with
   0-8 and neither price nor rewards drive them: habit or convenience keeps them;
5. **repeat, attitude unknown** — behaviourally loyal with no recommend answer and no
   price or program signal (ask them: a survey decides between 1 and 4);
6. **satisfied** — not behaviourally loyal, but satisfied (csat 4-5 or recommend 7-10):
   they like us yet do not come back (yet);
7. **not loyal** — everyone else.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import ibis

from fidelite.analytics.engine import Dataset
from fidelite.analytics.metrics.result import MetricResult, percent
from fidelite.analytics.metrics.surveys import Answers, latest_scores

KINDS = (
    "truly loyal",
    "low-price-loyal",
    "program-loyal",
    "convenience-loyal",
    "repeat, attitude unknown",
    "satisfied",
    "not loyal",
)
QUESTIONS = ("nps", "csat", "program")


@dataclass(frozen=True)
class Thresholds:
    """The classification's knobs (defaults documented in the module docstring)."""

    min_orders: int = 3
    active_days: int = 90
    price_share: float = 50.0

    def check(self) -> None:
        if self.min_orders < 2:
            raise ValueError("--min-orders must be at least 2 (loyalty needs a repeat order)")
        if self.active_days < 0:
            raise ValueError("--active-days must not be negative")
        if not 0 < self.price_share <= 100:
            raise ValueError("--price-share must be above 0 and at most 100")


# The fields of a row (:func:`_classify`), in order: the CSV header without rows.
COLUMNS = ("customer_id", "orders", "days_since_last", "coupon_share", "recommend", "csat",
           "program", "kind", "reason")  # fmt: skip


def loyalty_kinds(
    ds: Dataset,
    answers: Answers | None = None,
    thresholds: Thresholds | None = None,
    end: date | None = None,
) -> MetricResult:
    """One row per customer with the inputs, the kind and the reason; counts per kind."""
    rules = thresholds or Thresholds()
    rules.check()
    end_day = end or ds.last_day()
    said = latest_scores(answers, QUESTIONS) if answers else {}
    rows = [_classify(r, said.get(r["customer_id"], {}), rules) for r in _behaviour(ds, end_day)]
    counts = {kind: 0 for kind in KINDS}
    for row in rows:
        counts[row["kind"]] += 1
    summary = {
        "customers": len(rows),
        "kinds": [
            {"kind": k, "customers": n, "share": percent(n, len(rows))} for k, n in counts.items()
        ],
    }
    params = {
        "min_orders": rules.min_orders,
        "active_days": rules.active_days,
        "price_share": rules.price_share,
        "observation_end": end_day.isoformat(),
        **ds.describe(),
        **({"surveys": answers.loaded.source, "answers": answers.loaded.rows} if answers else {}),
    }
    return MetricResult("loyalty-kinds", _definition(rules), params, rows, summary, COLUMNS)


def _behaviour(ds: Dataset, end_day: date) -> list[dict[str, Any]]:
    """Orders, days since the last order and coupon share per customer, by customer."""
    t = ds.transactions
    p = t.filter((t.day <= ibis.date(end_day)) & ~t.is_refund)
    g = p.group_by("customer_id").aggregate(
        orders=p.order_id.nunique(),
        coupon_orders=p.order_id.nunique(where=p.coupon_code.notnull()),
        last=p.day.max(),
    )
    g = g.select(
        "customer_id",
        orders=g.orders.cast("int64"),
        coupon_orders=g.coupon_orders.cast("int64"),
        days_since_last=ibis.date(end_day).delta(g.last, unit="day").cast("int64"),
    )
    rows: list[dict[str, Any]] = ds.execute(g.order_by("customer_id")).to_pylist()
    return rows


def _classify(row: dict[str, Any], said: dict[str, float], rules: Thresholds) -> dict[str, Any]:
    """The first matching kind, and a reason naming the facts that decided it."""
    orders, days = int(row["orders"]), int(row["days_since_last"])
    share = percent(int(row["coupon_orders"]), orders) or 0.0
    recommend, csat, program = said.get("nps"), said.get("csat"), said.get("program")
    repeat = orders >= rules.min_orders and days <= rules.active_days
    habit = f"{orders} orders, last {days} days ago"
    if repeat and recommend is not None and recommend >= 9:
        kind, why = KINDS[0], f"{habit}; would recommend us ({recommend:g}/10)"
    elif repeat and share >= rules.price_share:
        kind, why = KINDS[1], f"{habit}; {share:g}% of orders with a coupon"
    elif repeat and program is not None and program >= 7:
        kind, why = KINDS[2], f"{habit}; the rewards decide where they shop ({program:g}/10)"
    elif repeat and recommend is not None:
        kind, why = KINDS[3], f"{habit}; {_not_promoter(recommend)}"
    elif repeat:
        kind, why = KINDS[4], f"{habit}; no recommend answer"
    elif (csat is not None and csat >= 4) or (recommend is not None and recommend >= 7):
        kind, why = KINDS[5], f"{_not_repeat(orders, days, rules)}; {_liking(csat, recommend)}"
    else:
        kind, why = KINDS[6], _not_repeat(orders, days, rules)
    return {
        "customer_id": row["customer_id"],
        "orders": orders,
        "days_since_last": days,
        "coupon_share": share,
        "recommend": recommend,
        "csat": csat,
        "program": program,
        "kind": kind,
        "reason": why,
    }


def _not_promoter(recommend: float) -> str:
    """A recommend answer below 9, named as NPS names it: 7-8 passive, 0-6 detractor."""
    if recommend >= 7:
        return f"a passive, not a promoter ({recommend:g}/10)"
    return f"would not recommend us ({recommend:g}/10)"


def _not_repeat(orders: int, days: int, rules: Thresholds) -> str:
    if orders < rules.min_orders:
        return f"{orders} order(s), fewer than {rules.min_orders}"
    return f"last order {days} days ago, more than {rules.active_days}"


def _liking(csat: float | None, recommend: float | None) -> str:
    parts = []
    if csat is not None and csat >= 4:
        parts.append(f"satisfied ({csat:g}/5)")
    if recommend is not None and recommend >= 7:
        parts.append(f"recommend {recommend:g}/10")
    return " and ".join(parts)


def _definition(rules: Thresholds) -> str:
    return (
        f"Behaviourally loyal = at least {rules.min_orders} orders (refunds are not orders) "
        f"and the last at most {rules.active_days} days before the observation end. First "
        "matching kind: truly loyal (behaviourally loyal and latest recommend answer 9-10); "
        f"low-price-loyal (behaviourally loyal, >= {rules.price_share:g}% of orders with a "
        "coupon); program-loyal (behaviourally loyal, latest 'program' answer 7-10); "
        "convenience-loyal (behaviourally loyal, recommend 0-8); repeat, attitude unknown "
        "(behaviourally loyal, no recommend answer); satisfied (not behaviourally loyal, "
        "latest csat 4-5 or recommend 7-10); not loyal otherwise. Latest answer = latest "
        "instant, not local time (highest score on ties)."
    )
