"""The report's customer-lifetime-value section: the CLV distribution and P(alive).

BG/NBD (purchases) and Gamma-Gamma (spend) are fitted on the report's per-customer
summary in weeks, and every customer is valued over the next 52 weeks at a 10 % yearly
discount rate (:func:`fidelite.clv.valuation.value_customers`). When the data cannot
support a fit (too few repeat customers, a likelihood that cannot be evaluated) the
section says why and the rest of the report is still written. A fit that ran but did not
converge (``converged`` false: e.g. a flat likelihood, the data do not identify the
parameters) is treated as failed in the HTML, because its figures are not estimates of
anything (every customer may get the same CLV): a purchase model that did not converge
hides both charts (CLV and P(alive) both come from it), a spend model that did not
converge hides the CLV chart only. ``report.json`` keeps the numbers, each fit flagged
``converged: false``, with a ``warning`` that the report lifts to its top-level
``warnings``. When the spend fit leaves some customers without a finite CLV
(Gamma-Gamma q <= 1: a heavy-tailed spend with an infinite mean), the CLV chart gives
way to the reason and the P(alive) chart is still shown.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from typing import Any

import numpy as np
from numpy.typing import NDArray

from fidelite.analytics.engine import Dataset
from fidelite.analytics.summary import customer_summary
from fidelite.clv import gammagamma
from fidelite.clv.convergence import not_converged, unconverged_reasons
from fidelite.clv.fitting import FitError, FitResult
from fidelite.clv.triples import FloatArray, SummaryError
from fidelite.clv.valuation import column, value_customers
from fidelite.report import svg, tables
from fidelite.report.numbers import money, number, rate

HORIZON_WEEKS = 52.0
DISCOUNT_RATE = 0.10
MIN_REPEAT_CUSTOMERS = 10
# Repeat purchases per P(alive) table row; one-time buyers (0) are counted, not shown.
FREQUENCY_GROUPS = ((1, 1, "1"), (2, 2, "2"), (3, 4, "3-4"), (5, 9, "5-9"))
Section = Callable[[str, str, str, str, str], str]
# The models in plain words, for a reader who will not open docs/clv.md.
CLV_DEFINITION = (
    "A customer's lifetime value (CLV) = the amount they are expected to spend per "
    "purchase x the number of purchases they are expected to make over the next 52 weeks, "
    f"each future purchase discounted at {DISCOUNT_RATE:.0%} a year (money later is worth "
    "a little less than money now). The number of purchases comes from a model (BG/NBD) "
    "that learns, from how often and how recently every customer bought, how often each "
    "one buys and how likely they are to have stopped for good. The spend per purchase "
    "comes from a second model (Gamma-Gamma) that starts from the customer's own average "
    "order and pulls it toward the average of all customers, the more so the fewer "
    "purchases it rests on. Both are fitted on this file's purchase history in weeks."
)
ALIVE_DEFINITION = (
    "P(alive) = the purchase model's (BG/NBD) probability that the customer has not "
    "stopped buying for good. It stays high while the time since their last purchase is "
    "short compared with their usual gap between purchases, and falls as the silence grows "
    "longer than that gap: a customer who bought every week and has not for two months "
    "scores lower than one who buys twice a year and has not for two months."
)


def compute(ds: Dataset) -> dict[str, Any]:
    """CLV and P(alive) figures, or ``{"error": reason}`` when no fit is possible."""
    summary = customer_summary(ds, time_unit="week")
    repeaters = int((column(summary, "frequency") > 0).sum())
    if repeaters < MIN_REPEAT_CUSTOMERS:
        # the summary counts purchase days: two orders on one day are one purchase
        who = f"{repeaters:,} customer{'s' if repeaters != 1 else ''}"
        return {"error": f"only {who} bought on more than one day (the models count a "
                         "day's purchases as one); the models need at least "
                         f"{MIN_REPEAT_CUSTOMERS}"}  # fmt: skip
    try:
        valued = value_customers(summary, horizon=HORIZON_WEEKS, discount_rate=DISCOUNT_RATE)
    except (FitError, SummaryError, ValueError) as exc:
        return {"error": f"the models could not be fitted: {exc}"}
    # BG/NBD gives P(alive) = 1 to every customer without a repeat purchase, however long
    # ago they bought: the model cannot tell, so they are counted but not shown.
    frequency = column(summary, "frequency")
    repeat = frequency > 0
    alive = valued.predictions.probability_alive[repeat]
    result: dict[str, Any] = {
        "horizon_weeks": HORIZON_WEEKS,
        "discount_rate": DISCOUNT_RATE,
        "purchase_model": valued.fit.as_dict(),
        "spend_model": valued.spend_fit.as_dict(),
        "clv": _clv_figures(valued.clv, valued.spend_fit.param_array(), valued.spend_left_out),
        "probability_alive": {
            "customers": repeaters,
            "one_time_buyers_not_shown": int(frequency.size - repeaters),
            "mean": _round(alive.mean()),
            "histogram": _histogram(alive, np.linspace(0.0, 1.0, 11), open_top=False),
            "by_frequency": _by_frequency(frequency[repeat], alive),
        },
    }
    reasons = _not_converged(valued.fit, valued.spend_fit)
    if reasons:
        result["warning"] = (
            f"{'; '.join(reasons)}; its figures in clv_models are kept (flagged converged "
            "false) but are not reliable, and the report does not chart them"
        )
    return result


def _not_converged(purchase: FitResult, spend: FitResult) -> list[str]:
    """Why each fit that did not converge is unreliable (empty when both converged), in
    the words ``fidelite clv`` uses too."""
    return unconverged_reasons([purchase, spend])


def warnings(data: dict[str, Any]) -> list[str]:
    """The report-level warnings of the CLV section (a fit that did not converge)."""
    return [f"Customer lifetime value: {data['warning']}"] if "warning" in data else []


def _clv_figures(
    clv: FloatArray, spend_theta: FloatArray, left_out: NDArray[np.bool_] | None = None
) -> dict[str, Any]:
    """The CLV distribution, or ``{"error": reason}`` when a customer's CLV is no number.

    Repeat customers whose repeat purchases are worth 0 (``left_out``, from
    :class:`~fidelite.clv.valuation.Valuation`) have no CLV: the spend model describes
    positive spends. They are left out of the distribution and counted apart
    (``customers_left_out``, with a ``note``), as ``fidelite clv predict`` leaves them
    out of the base's value, rather than hiding the chart of everyone else."""
    kept = clv if left_out is None else clv[~left_out]
    without = 0 if left_out is None else int(left_out.sum())
    figures = _distribution(kept, spend_theta)
    if without and "error" not in figures:
        who = f"{without:,} customer{'s' if without != 1 else ''}"
        figures["customers_left_out"] = without
        figures["note"] = (
            f"{who} whose repeat purchases are worth 0 {'is' if without == 1 else 'are'} "
            "left out: the spend model "
            "describes positive spends, so it gives them no value"
        )
    return figures


def _distribution(clv: FloatArray, spend_theta: FloatArray) -> dict[str, Any]:
    """The distribution of ``clv``, or ``{"error": reason}`` when one is no number."""
    missing = int((~np.isfinite(clv)).sum())
    if missing:
        heavy_tail = gammagamma.infinite_mean_note(spend_theta)
        who = f"{missing:,} customer{'s' if missing != 1 else ''}"
        return {
            "error": f"{heavy_tail}; the expected spend, and so the CLV, of {who} with few "
            "repeat purchases (p x + q - 1 <= 0) is infinite, so no distribution is shown"
            if heavy_tail
            else f"the CLV of {who} is not a finite number at the fitted parameters, so no "
            "distribution is shown"
        }
    ranked = np.sort(clv)[::-1]
    top = int(np.ceil(0.2 * ranked.size))
    total = float(ranked.sum())
    top_edge = float(np.quantile(clv, 0.99)) or float(clv.max()) or 1.0
    return {
        "customers": int(clv.size),
        "total": _round(total, 2),
        "mean": _round(clv.mean(), 2),
        "median": _round(np.median(clv), 2),
        "top_20_percent_share": _round(100.0 * ranked[:top].sum() / total if total else 0.0),
        "histogram": _histogram(clv, np.linspace(0.0, top_edge, 11), open_top=True),
    }


def _histogram(values: FloatArray, edges: FloatArray, *, open_top: bool) -> list[dict[str, Any]]:
    """Counts per bin [edge_i, edge_i+1); the last bin is closed, or open-ended when
    ``open_top`` (it then takes every value above the last edge too)."""
    clipped = np.minimum(values, edges[-1]) if open_top else values
    counts, _ = np.histogram(clipped, bins=edges)
    return [
        {"from": _round(lo, 4), "to": None if open_top and i == len(counts) - 1 else _round(hi, 4),
         "customers": int(n)}
        for i, (lo, hi, n) in enumerate(zip(edges[:-1], edges[1:], counts, strict=True))
    ]  # fmt: skip


def _by_frequency(frequency: FloatArray, alive: FloatArray) -> list[dict[str, Any]]:
    groups = [*FREQUENCY_GROUPS, (10, np.inf, "10+")]
    out = []
    for low, high, name in groups:
        mask = (frequency >= low) & (frequency <= high)
        count = int(mask.sum())
        mean = _round(alive[mask].mean()) if count else None
        out.append({"repeat_purchases": name, "customers": count, "mean_probability_alive": mean})
    return out


def _blank(value: Any) -> str:
    """A probability with two decimals, blank for a group without customers."""
    return "" if value is None else number(value, 2)


def _round(value: Any, digits: int = 4) -> float:
    return round(float(value), digits)


def section(data: dict[str, Any], make: Section) -> str:
    """The HTML section: the reason in words instead of a chart whose model could not be
    fitted or did not converge (a chart from such a fit would mislead)."""
    if "error" in data:
        return _not_shown("Customer lifetime value", data["error"], make)
    reasons = []  # every one that applies: fixing one alone would not bring the chart
    if not data["purchase_model"]["converged"]:
        reasons.append(_unconverged("purchase", data["purchase_model"]))
    if not data["spend_model"]["converged"]:
        reasons.append(_unconverged("spend", data["spend_model"]))
    elif "error" in data["clv"]:
        reasons.append(data["clv"]["error"])
    if not reasons:
        return _clv_chart(data, make) + _alive_chart(data, make)
    if not data["purchase_model"]["converged"]:
        # P(alive) and expected purchases both come from the purchase model.
        return _not_shown("Customer lifetime value", "; and ".join(reasons), make)
    title = "Customer lifetime value (next 12 months)"
    return _not_shown(title, "; and ".join(reasons), make) + _alive_chart(data, make)


def _unconverged(role: str, fit: dict[str, Any]) -> str:
    return (
        f"{not_converged(role, fit['message'])}, so its figures (in "
        "report.json, flagged converged false) are not reliable enough to chart"
    )


def _not_shown(title: str, reason: str, make: Section) -> str:
    """A section that says why the figures are not charted (``reason``, in words)."""
    return make(
        title,
        "Predicted value of each customer over the next year (BG/NBD and Gamma-Gamma).",
        "Not shown for this data.",
        f"<p><b>Why:</b> {escape(reason)}.</p>",
        CLV_DEFINITION,
    )


def _label(bin_: dict[str, Any], money: bool) -> str:
    fmt = "{:,.0f}" if money else "{:.1f}"
    low = fmt.format(bin_["from"])
    return f"{low}+" if bin_["to"] is None else f"{low}-{fmt.format(bin_['to'])}"


def _clv_chart(data: dict[str, Any], make: Section) -> str:
    clv = data["clv"]
    chart = svg.bar_chart(
        [(_label(b, True), float(b["customers"])) for b in clv["histogram"]],
        x_label="customers",
        title="Customers per band of lifetime value (next 12 months)",
        y_label="expected value",
    )
    return make(
        "Customer lifetime value (next 12 months)",
        f"How much each customer is expected to spend over the next 52 weeks, discounted at "
        f"{DISCOUNT_RATE:.0%} a year: customers per value band. Mean {money(clv['mean'])}, "
        f"median {money(clv['median'])}; the top 20 % of customers hold "
        f"{rate(clv['top_20_percent_share'])} of the expected value.",
        "Each bar counts the customers whose expected value falls in that band (in the "
        "currency of the amounts). Most customers sit in the first bands; the few in the "
        "lower bars, worth more each, are where the value is. The last band holds everyone "
        "above it. Per-customer values: fidelite clv predict."
        + (f" Not counted: {clv['note']}." if "note" in clv else ""),
        chart,
        CLV_DEFINITION,
    )


def _alive_chart(data: dict[str, Any], make: Section) -> str:
    alive = data["probability_alive"]
    chart = svg.bar_chart(
        [(_label(b, False), float(b["customers"])) for b in alive["histogram"]],
        x_label="customers",
        title="Customers per band of probability of being still active",
        y_label="P(alive), 0 to 1",
    )
    table = tables.table(
        "Mean probability of being still active by number of repeat purchases",
        ["repeat purchases", "customers", "mean P(alive)"],
        [[g["repeat_purchases"], f"{g['customers']:,}", _blank(g["mean_probability_alive"])]
         for g in alive["by_frequency"]],
    )  # fmt: skip
    return make(
        "Probability that a customer is still active",
        f"For each customer, the model's probability that they have not quietly left "
        f"(P(alive)), from how often and how recently they bought; mean "
        f"{number(alive['mean'], 2)} over "
        f"the {alive['customers']:,} customers who bought on more than one day. The model "
        "cannot tell whether the others (one purchase day) are still active (it gives them "
        f"all 1): {alive['one_time_buyers_not_shown']:,} customers not shown.",
        "Customers near 0 have probably gone: win-back campaigns, not thank-you offers. "
        "Frequent buyers who have been silent for long drop fastest; the table shows P(alive) "
        "by number of repeat purchases.",
        chart + table,
        ALIVE_DEFINITION,
    )
