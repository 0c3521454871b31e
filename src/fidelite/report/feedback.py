"""The report's optional sections: NPS trend and survey scores (from survey answers) and
recurring revenue (from subscriptions). Each is computed only when its file is given;
each section says what it shows and how to read it, like the others.

The NPS (its trend and its whole-file score), CSAT, CES and share of wallet are kept only
when the answers hold that question: a score from no answers is no score, and
``not_included`` says which question had none (:mod:`fidelite.report.coverage`). The
loyalty index trend is always kept; the NPS chart shows every month of either line
(the index also counts the buy-again and try-other-products questions, so it can have
months the NPS has not), and says there is no data to chart when neither has a value.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from typing import Any

from fidelite.analytics.answers import LoadedAnswers, load_answers
from fidelite.analytics.engine import EngineName
from fidelite.analytics.io import Source
from fidelite.analytics.metrics import surveys
from fidelite.analytics.metrics.mrr import Subscriptions, mrr
from fidelite.analytics.metrics.result import MetricResult
from fidelite.analytics.subscriptions import LoadedSubscriptions, load_subscriptions
from fidelite.report import svg
from fidelite.report.numbers import money, number, rate

Section = Callable[[str, str, str, str, str], str]
# Whole-file survey scores, kept when their question has answers (report.json key).
SCORES: dict[str, Callable[[surveys.Answers], MetricResult]] = {
    "csat": surveys.csat,
    "ces": surveys.ces,
    "share_of_wallet": surveys.share_of_wallet,
}


def loaded_answers(source: Source | LoadedAnswers, timezone: str) -> LoadedAnswers:
    """The survey answers ``source`` names, read in ``timezone`` (as given when loaded)."""
    return source if isinstance(source, LoadedAnswers) else load_answers(source, timezone=timezone)


def loaded_subscriptions(
    source: Source | LoadedSubscriptions, timezone: str = "UTC"
) -> LoadedSubscriptions:
    """The subscriptions ``source`` names, read in ``timezone`` (as given when loaded)."""
    if isinstance(source, LoadedSubscriptions):
        return source
    return load_subscriptions(source, timezone=timezone)


def compute_surveys(
    source: Source | LoadedAnswers, engine: EngineName, timezone: str
) -> dict[str, Any]:
    """NPS and the loyalty index per month, and the whole-file figures (``source``: a
    file, or answers already loaded, e.g. with the caller's column names)."""
    answers = surveys.Answers(loaded_answers(source, timezone), engine)
    out: dict[str, Any] = {}
    overall = surveys.nps(answers)
    if overall.rows[0]["answers"]:
        out["nps_trend"] = surveys.nps(answers, "month").to_dict()
        out["nps"] = overall.to_dict()
    out["loyalty_index_trend"] = surveys.loyalty_index(answers, "month").to_dict()
    for key, score in SCORES.items():
        result = score(answers)
        if result.rows[0]["answers"]:
            out[key] = result.to_dict()
    return out


def compute_revenue(
    source: Source | LoadedSubscriptions, engine: EngineName, timezone: str = "UTC"
) -> dict[str, Any]:
    """MRR movements per month (``source``: a file, read in ``timezone``, or
    subscriptions already loaded)."""
    subs = Subscriptions(loaded_subscriptions(source, timezone), engine)
    return {"mrr": mrr(subs, "month").to_dict()}


def nps_section(data: dict[str, Any], section: Section) -> str:
    """The NPS and loyalty index lines over every month of either, and the NPS table."""
    loyalty = data["loyalty_index_trend"]
    trend = data.get("nps_trend")  # absent: the answers hold no nps question
    rows = trend["rows"] if trend is not None else []
    nps = {r["period"]: r["nps"] for r in rows}
    index = {r["period"]: r["loyalty_index"] for r in loyalty["rows"]}
    months = sorted(nps.keys() | index.keys())
    chart = svg.line_chart(
        months,
        [
            ("NPS", [nps.get(m) for m in months]),
            ("loyalty index", [index.get(m) for m in months]),
        ],
        x_label="month",
        y_label="score (-100 to 100)",
        y_max=100.0,
        y_min=-100.0,
    )
    charted = not all(v is None for v in (*nps.values(), *index.values()))
    if not charted:
        chart = svg.no_data(
            "the survey answers file has no answers to the recommend (nps), buy-again "
            "(repurchase) or try-other-products (upsell) questions"
        )
    table = ""
    if trend is not None:
        table = _table(
            "NPS per month",
            ["month", "answers", "promoters", "passives", "detractors", "NPS"],
            [[r["period"], r["answers"], r["promoters"], r["passives"], r["detractors"],
              number(r["nps"]) if r["nps"] is not None else None] for r in rows],
        )  # fmt: skip
        overall = data["nps"]["rows"][0]
        what = (
            f"Net Promoter Score month by month from {overall['answers']:,} survey "
            f"{'answer' if overall['answers'] == 1 else 'answers'} "
            f"(over the whole period: {number(overall['nps'])}), and the customer loyalty "
            "index (the same score averaged over the recommend, buy-again and "
            "try-other-products questions)."
        )
    else:
        what = (
            "No Net Promoter Score: the survey answers file has no answers to the recommend "
            "(nps) question. The customer loyalty index is the same score averaged over the "
            "recommend, buy-again and try-other-products questions that have answers."
        )
    counts = (
        "check the counts in the table"
        if table
        else "check each month's answers in report.json (loyalty_index_trend)"
    )
    how = (
        "Above 0, more customers recommend you than warn others off; a falling line is an "
        "early sign of churn. Months without answers are gaps, not zeros; a month with few "
        f"answers moves a lot, so {counts}."
        if charted
        else "Ask the recommend question (0 to 10) in your surveys to follow this score."
    )
    return section(
        "NPS trend",
        what,
        how,
        chart + table,
        (trend or loyalty)["definition"],
    )


def scores_section(data: dict[str, Any], section: Section) -> str:
    """CSAT, CES and share of wallet over the whole file, the ones that have answers."""
    lines = []
    if "csat" in data:
        row = data["csat"]["rows"][0]
        lines.append(("Satisfaction (CSAT)", row["answers"], rate(row["csat"]),
                      "share of answers 4 or 5 on the 1-5 satisfaction question"))  # fmt: skip
    if "ces" in data:
        row = data["ces"]["rows"][0]
        lines.append(("Effort (CES)", row["answers"], f"{number(row['ces'])} / 7",
                      f"mean answer, 7 = very easy; {rate(row['easy_rate'])} found it "
                      "easy (5-7)"))  # fmt: skip
    if "share_of_wallet" in data:
        row = data["share_of_wallet"]["rows"][0]
        lines.append(("Share of wallet", row["answers"], rate(row["share_of_wallet"]),
                      "mean share of their spending in the category that customers say "
                      "goes to you"))  # fmt: skip
    if not lines:
        return ""
    table = _table(
        "Satisfaction, effort and share of wallet over the whole file",
        ["measure", "answers", "score", "what the score is"],
        [[name, f"{n:,}", score, meaning] for name, n, score, meaning in lines],
    )
    definitions = " ".join(data[k]["definition"] for k in SCORES if k in data)
    return section(
        "Satisfaction, effort and share of wallet",
        "What customers said in the survey over the whole period: how satisfied they are, "
        "how easy it is to deal with you, and how much of their spending in your category "
        "comes to you.",
        "Higher is better for all three. Low effort (a high CES) keeps customers as much "
        "as delight does; a low share of wallet means customers also buy elsewhere, room to "
        "grow with the customers you already have.",
        table,
        definitions,
    )


def revenue_section(data: dict[str, Any], section: Section) -> str:
    result = data["mrr"]
    rows = result["rows"]
    top = max((max(r["starting_mrr"], r["ending_mrr"]) for r in rows), default=0.0) or 1.0
    chart = svg.line_chart(
        [r["period"] for r in rows],
        [("ending MRR", [r["ending_mrr"] for r in rows])],
        x_label="month",
        y_label="monthly recurring revenue",
        y_max=float(top),
        money=True,
    )
    table = _table(
        "Recurring revenue (MRR) movements per month",
        ["month", "start", "new", "reactivated", "expansion", "contraction", "churned", "end",
         "gross MRR churn", "net MRR churn", "NRR"],
        [[r["period"], money(r["starting_mrr"]), money(r["new_mrr"]),
          money(r["reactivation_mrr"]), money(r["expansion_mrr"]), money(r["contraction_mrr"]),
          money(r["churned_mrr"]), money(r["ending_mrr"]), rate(r["gross_mrr_churn_rate"]),
          rate(r["net_mrr_churn_rate"]), rate(r["net_revenue_retention"])] for r in rows],
    )  # fmt: skip
    return section(
        "Recurring revenue",
        "Monthly recurring revenue (MRR) from subscriptions, and what moved it each month: "
        "new subscribers, returning ones (reactivated), upgrades (expansion), downgrades "
        "(contraction) and cancellations (churned).",
        "Gross MRR churn is the share of the month's starting MRR lost to downgrades and "
        "cancellations; net MRR churn takes the upgrades off it, and below 0 % is negative "
        "churn. Net revenue retention (NRR) above 100 % means the customers you had at the "
        "start of the month pay you more at its end, even after cancellations.",
        chart + table,
        result["definition"],
    )


def _table(caption: str, head: list[str], rows: list[list[Any]]) -> str:
    """A table with its caption, the column headers in ``<thead>``."""
    th = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape('' if v is None else str(v))}</td>" for v in row) + "</tr>"
        for row in rows
    )
    return (
        f"<table><caption>{escape(caption)}</caption><thead><tr>{th}</tr></thead>"
        f"<tbody>{body}</tbody></table>"
    )
