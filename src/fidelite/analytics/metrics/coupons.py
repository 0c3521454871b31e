"""Coupon and offer effectiveness against a holdout group.

Input: the transactions and a targeting file ``customer_id, campaign, group`` where
group is ``treatment`` (received the offer) or ``holdout`` (kept out on purpose, chosen
at random), plus the campaign window [start, end] (local days, inclusive).

Per campaign and group, over the window (refunds subtract from revenue):

* customers = targeted customers in the group; buyers = those with a purchase in the
  window; conversion rate = buyers / customers x 100;
* revenue per customer = net revenue of the group's customers in the window /
  customers (customers who bought nothing count as 0);
* redemption rate (treatment) = treated customers with a purchase carrying a coupon
  code in the window / treated customers x 100;
* lift = (revenue per treated customer - revenue per holdout customer) / revenue per
  holdout customer x 100; incremental revenue = that difference x treated customers.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import ibis
import pyarrow as pa

from fidelite.analytics.engine import Dataset
from fidelite.analytics.errors import InputError
from fidelite.analytics.metrics.result import MetricResult, money, percent

GROUPS = ("treatment", "holdout")


def load_targeting(path: Path) -> pa.Table:
    """``customer_id, campaign, group`` rows, validated (one error naming line and column)."""
    name = str(path)
    if not path.is_file():
        raise InputError("file not found", file=name)
    con = duckdb.connect()
    try:
        table: pa.Table = con.read_csv(name, header=True, all_varchar=True).to_arrow_table()
    except duckdb.Error as exc:
        raise InputError(f"cannot read the file: {str(exc).splitlines()[0]}", file=name) from exc
    for col in ("customer_id", "campaign", "group"):
        if col not in table.column_names:
            raise InputError(f"missing required column '{col}'", file=name, column=col)
    rows = table.select(["customer_id", "campaign", "group"]).to_pylist()
    if not rows:
        raise InputError("no targeted customers (the file has a header but no rows)", file=name)
    for line, r in enumerate(rows, start=2):
        for col in ("customer_id", "campaign"):
            if not (r[col] or "").strip():
                raise InputError(f"missing {col}", file=name, row=line, column=col)
        if (r["group"] or "").strip().lower() not in GROUPS:
            raise InputError(
                f"group must be treatment or holdout: '{r['group']}'",
                file=name,
                row=line,
                column="group",
            )
    return pa.table(
        {
            "customer_id": [r["customer_id"].strip() for r in rows],
            "campaign": [r["campaign"].strip() for r in rows],
            "grp": [r["group"].strip().lower() for r in rows],
        }
    )


def coupon_effectiveness(ds: Dataset, targeting: pa.Table, start: date, end: date) -> MetricResult:
    """One row per campaign and group, with lift and incremental revenue on treatment rows."""
    if end < start:
        raise ValueError("the campaign window ends before it starts")
    t = ds.transactions
    w = t.filter((t.day >= ibis.date(start)) & (t.day <= ibis.date(end)))
    coupon = w.coupon_code.notnull() & ~w.is_refund
    per = w.group_by("customer_id").aggregate(
        revenue=w.amount.sum(),
        bought=(~w.is_refund).any(),
        used_coupon=coupon.any(),
    )
    spend = ds.execute(per)
    con = duckdb.connect()
    con.register("spend", spend)
    con.register("targeting", targeting)
    rows = con.execute(
        "SELECT g.campaign, g.grp, count(*) AS customers, "
        "count(*) FILTER (WHERE coalesce(s.bought, FALSE)) AS buyers, "
        "count(*) FILTER (WHERE coalesce(s.used_coupon, FALSE)) AS redeemers, "
        "coalesce(sum(s.revenue), 0) AS revenue "
        "FROM (SELECT DISTINCT customer_id, campaign, grp FROM targeting) g "
        "LEFT JOIN spend s USING (customer_id) GROUP BY 1, 2 ORDER BY 1, 2 DESC"
    ).fetchall()
    out = [_row(*r) for r in rows]
    _add_lift(out)
    definition = (
        f"Campaign window {start} to {end} (local days). Per campaign and group: conversion "
        "rate = customers with a purchase / targeted customers x 100; revenue per customer "
        "= net revenue / targeted customers; redemption rate = treated customers who used a "
        "coupon / treated customers x 100; lift = (revenue per treated - per holdout "
        "customer) / per holdout customer x 100; incremental revenue = that difference x "
        "treated customers."
    )
    params = {"start": start, "end": end, **ds.describe()}
    return MetricResult("coupons", definition, params, out)


def _row(
    campaign: str, grp: str, customers: int, buyers: int, redeemers: int, revenue: float
) -> dict[str, Any]:
    return {
        "campaign": campaign,
        "group": grp,
        "customers": customers,
        "buyers": buyers,
        "conversion_rate": percent(buyers, customers),
        "revenue": money(revenue),
        "revenue_per_customer": money(revenue / customers) if customers else None,
        "redemption_rate": percent(redeemers, customers) if grp == "treatment" else None,
        "lift": None,
        "incremental_revenue": None,
    }


def _add_lift(rows: list[dict[str, Any]]) -> None:
    by = {(r["campaign"], r["group"]): r for r in rows}
    for (campaign, grp), row in by.items():
        holdout = by.get((campaign, "holdout"))
        if grp != "treatment" or holdout is None or not row["customers"]:
            continue
        treated = row["revenue"] / row["customers"]
        base = holdout["revenue"] / holdout["customers"]
        row["incremental_revenue"] = money((treated - base) * row["customers"])
        row["lift"] = round(100.0 * (treated - base) / base, 4) if base else None
