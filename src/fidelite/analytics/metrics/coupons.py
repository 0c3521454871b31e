"""Coupon and offer effectiveness against a holdout group.

Input: the transactions (with a ``coupon_code`` column) and a targeting file
``customer_id, campaign, group[, code_prefix]`` where group is ``treatment`` (received
the offer) or ``holdout`` (kept out on purpose, chosen at random), plus the campaign
window [start, end] (whole days in the time zone of the transactions, inclusive;
the definition names it: a program database defaults to UTC).

Per campaign and group, over the window (refunds subtract from revenue):

* customers = targeted customers in the group; buyers = those with a purchase in the
  window; conversion rate = buyers / customers x 100;
* revenue per customer = net revenue of the group's customers in the window /
  customers (customers who bought nothing count as 0);
* redemption rate = customers of the group with a purchase in the window carrying one
  of the campaign's codes / customers of the group x 100. On the holdout it measures
  leakage: a held-out customer who bought with the campaign's code was not kept out of
  the offer, and the result then carries a ``warning`` in its summary;
* lift = (revenue per treated customer - revenue per holdout customer) / revenue per
  holdout customer x 100, null when the holdout's revenue per customer is 0 or below
  (a negative base turns the sign: 10 against -5 read -300 %); incremental revenue =
  that difference x treated customers = treated revenue - holdout revenue x treated /
  held-out customers.

Revenue is summed exactly (as a decimal) and lift and incremental revenue are computed
from the unrounded sums, rounded once for display.

Which codes are a campaign's: a program's coupon campaign issues codes made of its
prefix, a dash and a random body with a check symbol (``SPRING-7KQ2-M9XD-4HRT-B``, see
:mod:`fidelite.engine.coupon`). A code is read as the till reads it
(:func:`fidelite.engine.coupon.normalise`): in any case, with or without its dashes
(``spring7kq2m9xd4hrtb``). With a ``code_prefix`` column (one prefix per campaign) a
code counts for the campaign when it is the prefix itself (a shared code, any case) or
a valid code of that prefix (check symbol correct: a mistyped code, which the till
refuses, does not count). A campaign without a prefix (a file without the column) has
no way to tell its codes from another campaign's: its redemption rate is null, and the
definition says why (conversion, revenue and lift are still given). A file with several
campaigns and no prefixes is refused.

Invariants checked on the targeting file (one error naming the line): a customer is in
one group per campaign (in both, they would be counted treated and held out at once),
and a campaign has one code prefix.
"""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal, localcontext
from pathlib import Path
from typing import Any

import duckdb
import ibis
import pyarrow as pa

from fidelite.analytics import csvfile
from fidelite.analytics.engine import Dataset
from fidelite.analytics.errors import InputError
from fidelite.analytics.metrics.columns import require
from fidelite.analytics.metrics.result import MetricResult, money, percent
from fidelite.analytics.summary import MONEY
from fidelite.engine.coupon import normalise, parse_code

GROUPS = ("treatment", "holdout")
PREFIX = "code_prefix"
TARGETING = pa.schema(
    [("customer_id", pa.string()), ("campaign", pa.string()), ("grp", pa.string()),
     ("prefix", pa.string())]
)  # fmt: skip


def load_targeting(path: Path) -> pa.Table:
    """``customer_id, campaign, grp, prefix`` rows, validated (one error naming line and
    column); ``prefix`` is null without a ``code_prefix`` column.

    The file is read as transactions files are (:mod:`fidelite.analytics.csvfile`):
    delimiter from the header, RFC 4180 quotes, blank lines skipped; a line number is
    the file's physical line where the record starts, the header being line 1 (a blank
    line or a quoted line break before it counts).
    """
    name = str(path)
    if not path.is_file():
        raise InputError("file not found", file=name)
    try:
        layout = csvfile.read_layout(path)
        bad = csvfile.first_malformed_record(path, layout)
        if bad is not None:
            raise InputError(bad.reason, file=name, row=bad.line)
        records = list(csvfile.records(path, layout))
    except (csvfile.HeaderError, OSError) as exc:
        raise InputError(f"cannot read the file: {exc}", file=name) from exc
    columns = layout.columns
    for col in ("customer_id", "campaign", "group"):
        if col not in columns:
            raise InputError(f"missing required column '{col}'", file=name, column=col)
    has_prefix = PREFIX in columns
    if not records:
        raise InputError("no targeted customers (the file has a header but no rows)", file=name)
    out: dict[str, list[str | None]] = {"customer_id": [], "campaign": [], "grp": [], "prefix": []}
    seen = _Targeting(name, has_prefix)
    for line, fields in records:
        customer, campaign, grp, prefix = seen.check(line, dict(zip(columns, fields, strict=True)))
        out["customer_id"].append(customer)
        out["campaign"].append(campaign)
        out["grp"].append(grp)
        out["prefix"].append(prefix)
    if not has_prefix and len(seen.prefixes) > 1:
        campaigns = ", ".join(sorted(seen.prefixes))
        raise InputError(
            f"several campaigns ({campaigns}) and no code_prefix column: a coupon code "
            "cannot be told apart between campaigns; add code_prefix (e.g. SPRING for "
            "codes SPRING-7KQ2-...)",
            file=name,
            column=PREFIX,
        )
    return pa.table(out, schema=TARGETING)


class _Targeting:
    """Row checks of a targeting file that need the rows before (group, prefix)."""

    def __init__(self, file: str, has_prefix: bool) -> None:
        self.file = file
        self.has_prefix = has_prefix
        self.groups: dict[tuple[str, str], tuple[str, int]] = {}
        self.prefixes: dict[str, tuple[str | None, int]] = {}

    def check(self, line: int, r: dict[str, str | None]) -> tuple[str, str, str, str | None]:
        """The cleaned row; an :class:`InputError` naming ``line`` when it is wrong."""
        for col in ("customer_id", "campaign"):
            if not (r[col] or "").strip():
                raise InputError(f"missing {col}", file=self.file, row=line, column=col)
        customer, campaign = str(r["customer_id"]).strip(), str(r["campaign"]).strip()
        grp = (r["group"] or "").strip().lower()
        if grp not in GROUPS:
            reason = (
                f"group must be treatment or holdout, not '{(r['group'] or '').strip()}'"
                if grp
                else "empty group: it must be treatment or holdout"
            )
            raise InputError(reason, file=self.file, row=line, column="group")
        first = self.groups.setdefault((customer, campaign), (grp, line))
        if first[0] != grp:
            raise InputError(
                f"customer '{customer}' is in both the {first[0]} group (line {first[1]}) and "
                f"the {grp} group of campaign '{campaign}'",
                file=self.file, row=line, column="group",
            )  # fmt: skip
        return customer, campaign, grp, self._prefix(line, campaign, r)

    def _prefix(self, line: int, campaign: str, r: dict[str, str | None]) -> str | None:
        prefix = None
        if self.has_prefix:
            prefix = (r[PREFIX] or "").strip().upper().rstrip("-")
            if not prefix:
                raise InputError("missing code_prefix", file=self.file, row=line, column=PREFIX)
        known = self.prefixes.setdefault(campaign, (prefix, line))
        if known[0] != prefix:
            raise InputError(
                f"campaign '{campaign}' has code prefix '{known[0]}' on line {known[1]} and "
                f"'{prefix}' here: one prefix per campaign",
                file=self.file, row=line, column=PREFIX,
            )  # fmt: skip
        return prefix


def coupon_effectiveness(ds: Dataset, targeting: pa.Table, start: date, end: date) -> MetricResult:
    """One row per campaign and group, with lift and incremental revenue on treatment rows."""
    if end < start:
        raise ValueError("the campaign window ends before it starts")
    require(ds, "coupon_code", "coupon effectiveness")
    t = ds.transactions
    w = t.filter((t.day >= ibis.date(start)) & (t.day <= ibis.date(end)))
    per = w.group_by("customer_id").aggregate(
        revenue=w.amount.cast(MONEY).sum(),  # exact: 33.33 + 33.34 is 66.67
        bought=(~w.is_refund).any(),
    )
    used = w.filter(w.coupon_code.notnull() & ~w.is_refund)
    codes = used.select("customer_id", "coupon_code").distinct()
    con = duckdb.connect()
    con.register("spend", ds.execute(per))
    con.register("codes", _read_codes(ds.execute(codes)))
    con.register("targeting", ds.in_segment(targeting))
    rows = con.execute(_SQL).fetchall()
    prefixes = {r["campaign"]: r["prefix"] for r in targeting.to_pylist()}
    out = [_row(*r, has_codes=prefixes.get(r[0]) is not None) for r in rows]
    _add_lift(out, {(r[0], r[1]): (_exact(r[5]), int(r[2])) for r in rows})
    by_prefix = all(p is not None for p in prefixes.values())
    codes_rule = (
        "a code of the campaign (its code_prefix itself, or a valid code of that prefix: "
        "any case, with or without dashes, check symbol correct)"
        if by_prefix
        else "a code of the campaign; null here: the targeting file names no code_prefix, "
        "so a code cannot be told to be this campaign's rather than another's"
    )
    facts = ds.describe()
    definition = (
        f"Campaign window {start} to {end} (days in {facts['timezone']}, inclusive)."
        " Per campaign and group: conversion "
        "rate = customers with a purchase / targeted customers x 100; revenue per customer "
        "= net revenue / targeted customers; redemption rate = customers of the group who "
        f"bought with {codes_rule} / customers of the group x 100 (on the holdout: "
        "held-out customers who used the offer anyway); lift = (revenue per treated - per "
        "holdout customer) / per holdout customer x 100 (null when per holdout customer is "
        "0 or below); incremental revenue = that difference x treated customers; both "
        "from the exact revenue, rounded once."
    )
    params = {
        "start": start,
        "end": end,
        "code_prefixes": dict(sorted(prefixes.items())) if by_prefix else None,
        **facts,
    }
    leaks = [_leak(r, int(r_[4])) for r, r_ in zip(out, rows, strict=True)
             if r["group"] == "holdout" and r["redemption_rate"] and int(r_[4])]  # fmt: skip
    summary = {"warning": " ".join(leaks)} if leaks else {}
    return MetricResult("coupons", definition, params, out, summary)


# A targeted customer redeemed when one of their codes in the window is the campaign's:
# its prefix itself (a shared code) or a valid code of that prefix (never for a campaign
# without a prefix). Targeting rows are distinct per customer, campaign and group (a
# repeated row counts once).
_SQL = """
WITH g AS (SELECT DISTINCT customer_id, campaign, grp, prefix FROM targeting),
used AS (
    SELECT DISTINCT g.customer_id, g.campaign FROM g JOIN codes c USING (customer_id)
    WHERE g.prefix IS NOT NULL AND (c.code = g.prefix OR c.prefix = g.prefix)
)
SELECT g.campaign, g.grp, count(*) AS customers,
    count(*) FILTER (WHERE coalesce(s.bought, FALSE)) AS buyers,
    count(*) FILTER (WHERE u.customer_id IS NOT NULL) AS redeemers,
    coalesce(sum(s.revenue), 0) AS revenue
FROM g LEFT JOIN spend s USING (customer_id)
LEFT JOIN used u ON u.customer_id = g.customer_id AND u.campaign = g.campaign
GROUP BY 1, 2 ORDER BY 1, 2 DESC
"""

CODES = pa.schema([("customer_id", pa.string()), ("code", pa.string()), ("prefix", pa.string())])


def _read_codes(used: pa.Table) -> pa.Table:
    """``customer_id, code, prefix``: each code as the till reads it (upper case, spaces
    dropped, dashes put back), with its campaign prefix when it is a valid code (check
    symbol correct), else null. Done here, on the distinct codes, so that DuckDB and
    Spark read codes alike (:func:`fidelite.engine.coupon.normalise`)."""
    read: dict[str, tuple[str, str | None]] = {}
    customers = used.column("customer_id").to_pylist()
    typed = used.column("coupon_code").to_pylist()
    out_code: list[str] = []
    out_prefix: list[str | None] = []
    for text in typed:
        if text not in read:
            parsed = parse_code(text)
            read[text] = (normalise(text), parsed[0] if parsed else None)
        code, prefix = read[text]
        out_code.append(code)
        out_prefix.append(prefix)
    return pa.table([customers, out_code, out_prefix], schema=CODES)


def _leak(row: dict[str, Any], redeemers: int) -> str:
    """The warning for a holdout whose customers bought with the campaign's code."""
    return (
        f"campaign {row['campaign']}: {redeemers} of {row['customers']} holdout customers "
        f"({row['redemption_rate']:g} %) bought with the campaign's code: they were not "
        "kept out of the offer, so lift and incremental revenue understate its effect."
    )


def _row(
    campaign: str,
    grp: str,
    customers: int,
    buyers: int,
    redeemers: int,
    revenue: Any,
    *,
    has_codes: bool,
) -> dict[str, Any]:
    exact = _exact(revenue)
    return {
        "campaign": campaign,
        "group": grp,
        "customers": customers,
        "buyers": buyers,
        "conversion_rate": percent(buyers, customers),
        "revenue": money(exact),
        "revenue_per_customer": money(exact / customers) if customers else None,
        "redemption_rate": percent(redeemers, customers) if has_codes else None,
        "lift": None,
        "incremental_revenue": None,
    }


def _exact(value: Any) -> Decimal:
    """An engine's decimal sum (``None`` when nothing was summed) as a Decimal."""
    return Decimal(0) if value is None else Decimal(value)


_RATE = Decimal("0.0001")


def _add_lift(rows: list[dict[str, Any]], sums: dict[tuple[str, str], tuple[Decimal, int]]) -> None:
    """Lift and incremental revenue on each treatment row, from the exact revenue sums
    (``sums``: (campaign, group) -> (revenue, customers)), not from the rounded ones."""
    for row in rows:
        campaign = row["campaign"]
        if row["group"] != "treatment" or (campaign, "holdout") not in sums:
            continue
        revenue_t, n_t = sums[(campaign, "treatment")]
        revenue_h, n_h = sums[(campaign, "holdout")]
        if not n_t or not n_h:
            continue
        with localcontext() as ctx:
            ctx.prec = 100  # sums up to 10^32 with 6 decimals, and their ratios
            # (revenue_t / n_t - revenue_h / n_h) x n_t, with one division only.
            row["incremental_revenue"] = money(revenue_t - revenue_h * n_t / n_h)
            if revenue_h > 0:  # a base of 0 or below gives no (or a sign-flipped) ratio
                lift = 100 * (revenue_t * n_h - revenue_h * n_t) / (revenue_h * n_t)
                row["lift"] = float(lift.quantize(_RATE, rounding=ROUND_HALF_UP))
