"""What the report leaves out, and why: ``report.json``'s ``not_included``.

Every metric of ``fidelite metrics`` and ``fidelite clv`` that the report does not carry
is named here with the reason, so a reader never takes a missing section for a zero.
Two kinds of reason:

* the input does not allow it (no product column, no survey or subscriptions file, no
  answers to a question): the section appears when the input is given;
* it is one row per customer (per-customer RFM scores, kinds of loyal customers, health
  scores and churn risk, CLV predictions) or per product (per-product repurchase), it
  depends on the reader's choice (bracket retention's brackets), or needs inputs the
  command does not take
  (a program database's interactions, a targeting file, a reference value): the report
  keeps to aggregates (a 10-million-row file has about a million customers, which
  would make ``report.json`` as large as the input and the report slower than its
  30-second target), and names the command that gives them.

Given a program database, the product sections say the database keeps no products,
and a program without any purchase (or any event) has each purchase-based section (or
engagement) listed with that reason.

The keys are stable names a script can test for; the values are sentences for people.
"""

from __future__ import annotations

from typing import Any

SURVEYS = "needs a survey answers file (--surveys)"
PER_CUSTOMER: dict[str, str] = {
    "rfm_customers": (
        "per-customer RFM scores: one row per customer would make report.json as large "
        "as the input; rfm_segments gives the customers and revenue of each segment, and "
        "fidelite metrics rfm lists every customer"
    ),
    "loyalty_kinds": (
        "kinds of loyal customers: classified one customer at a time, which would slow "
        "the report down on large files (and without survey answers it cannot tell "
        "truly loyal from convenience-loyal customers); fidelite metrics loyalty-kinds "
        "--surveys FILE gives them"
    ),
    "health_and_churn_risk": (
        "customer health scores and churn-risk segments: one row per customer; fidelite "
        "clv health gives them (the report's P(alive) section shows how likely customers "
        "are to still be active)"
    ),
    "clv_predictions": (
        "per-customer CLV predictions: one row per customer; clv_models gives their "
        "distribution and fidelite clv predict every customer's value"
    ),
    "engagement": (
        "needs a program database's interactions: give the report the program database "
        "(fidelite report PATH.db#PROGRAM), or run fidelite metrics engagement"
    ),
    "program_kpis": (
        "needs a program database: give the report the program database (fidelite report "
        "PATH.db#PROGRAM), or run fidelite metrics program-kpis"
    ),
    "repurchase_per_product": (
        "per-product repurchase rates (the same product ordered again within 30 to 360 "
        "days, by first-purchase month): one row per product and month, which grows with "
        "the catalogue; metrics.repurchase gives the business-wide rates, and fidelite "
        "metrics repurchase --per-product (with a product column) every product's"
    ),
    "bracket_retention": (
        "retention within day brackets (e.g. days 1-7, 8-30, 31-90 after the first "
        "purchase): the brackets are the reader's choice; the report shows N-month "
        "(metrics.cohorts) and unbounded (metrics.unbounded_cohorts) retention, and "
        "fidelite metrics cohorts --kind bracket --brackets 1-7,8-30,31-90 gives brackets"
    ),
    "coupon_effectiveness": "needs a targeting file: fidelite metrics coupons",
    "benchmark": "needs a reference value to compare with: fidelite metrics benchmark",
}
PROGRAM_SECTIONS = ("engagement", "program_kpis")
NO_POINT_VALUE = (
    "the program database keeps no point value, so program_kpis has no liability nor "
    "cost of rewards: fidelite metrics program-kpis --db PATH.db#PROGRAM -P PROGRAM.yaml "
    "prices the points with the currency's value"
)
PRODUCTS = "needs a product column (product_id, or name it with --product-col)"
PRODUCTS_IN_DATABASE = (
    "needs a product per purchase, which the program database does not keep (a purchase "
    "event's items are used for its points, not stored): export the transactions with a "
    "product column to a CSV or Parquet file and run fidelite report FILE (--product-col "
    "COLUMN when it is not product_id), or fidelite metrics multi-product and basket on it"
)
# The sections computed from the purchases: left out when the program has none.
PURCHASE_SECTIONS = (
    "retention", "new_vs_returning", "repeat_rate", "repurchase", "cohorts",
    "unbounded_cohorts", "pareto", "clv", "rfm_segments", "pareto_curve", "clv_models",
)  # fmt: skip


def without_purchases(program_id: str, *, segmented: bool = False) -> dict[str, str]:
    """Why each purchase-based section is missing when ``program_id`` has no purchase
    (``segmented``: the per-segment section was asked for)."""
    why = (
        f"program '{program_id}' has no purchases: the purchase-based figures come from "
        "the purchases and refunds the program processed (events with an amount), and "
        "members and points entered straight in the ledger (fidelite member add, ledger "
        "earn, fidelite demo) make none"
    )
    keys = PURCHASE_SECTIONS + (("segments",) if segmented else ())
    return dict.fromkeys(keys, why)


def not_included(
    data: dict[str, Any], *, database: bool = False, left_out: dict[str, str] | None = None
) -> dict[str, str]:
    """Each part of the analytics missing from ``data`` (the report's JSON), with why.

    ``database``: the input is a program database; ``left_out``: parts the input could
    have given but did not, with why (a program without purchases or events), first.
    """
    out: dict[str, str] = dict(left_out or {})
    metrics = data["metrics"]
    for key in ("multi_product", "basket_affinity"):
        if key not in metrics:
            out[key] = PRODUCTS_IN_DATABASE if database else PRODUCTS
    surveys = data.get("surveys")
    if surveys is None:
        for key in ("nps_trend", "csat", "ces", "share_of_wallet"):
            out[key] = SURVEYS
    else:
        for key, question in (("nps_trend", "nps"), ("csat", "csat"), ("ces", "ces"),
                              ("share_of_wallet", "share_of_wallet")):  # fmt: skip
            if key not in surveys:
                out[key] = f"the survey answers file has no {question} answers"
    if "revenue" not in data:
        out["recurring_revenue"] = "needs a subscriptions file (--subscriptions)"
    # a reason of this input (no events for engagement) wins over the generic one
    missing = out | {key: why for key, why in PER_CUSTOMER.items() if key not in out}
    if "program_kpis" in metrics:  # the input was a program database
        for key in PROGRAM_SECTIONS:
            if key in metrics:
                missing.pop(key)
        missing["liability_and_cost_of_rewards"] = NO_POINT_VALUE
    return missing
