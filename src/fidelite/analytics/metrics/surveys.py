"""Survey metrics: NPS, CSAT, CES, the customer loyalty index and share of wallet.

All count answers (not customers): a customer who answers twice in a period counts
twice, as in the usual NPS practice. Per period (day/week/month/quarter/year, local
calendar days) or over the whole file; every period between the first and the last
answer is listed, empty ones with null scores. Definitions (SPEC §4):

* **NPS** = % promoters (9-10) - % detractors (0-6) of the ``nps`` answers, -100..100.
* **CSAT** = % of ``csat`` answers that are 4 or 5 (satisfied), with the mean score.
* **CES** = mean ``ces`` score (1-7, 7 = very easy), with the % of easy answers (5-7).
* **Customer loyalty index** = mean of the NPS-style scores (% 9-10 - % 0-6) of the
  recommend (``nps``), ``repurchase`` and ``upsell`` questions, over those of the three
  that have answers in the period (each is also reported). The mean is taken of the
  exact scores, rounded once: the rounded scores 0, 66.6667 and 66.6667 averaged to
  44.4445, where the index is 400 / 9 = 44.4444.
* **Share of wallet** = mean of the stated shares (``share_of_wallet``, 0-100 %).
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from typing import Any

import ibis

from fidelite.analytics.answers import LoadedAnswers
from fidelite.analytics.engine import BoundTable, EngineName, bind_table
from fidelite.analytics.metrics.period import Period, bounds, index_expr, index_of, label
from fidelite.analytics.metrics.result import MetricResult, percent

LOYALTY_QUESTIONS = ("nps", "repurchase", "upsell")


class Answers:
    """Validated answers bound to one engine."""

    def __init__(
        self,
        loaded: LoadedAnswers,
        engine: EngineName = "duckdb",
        whole: LoadedAnswers | None = None,
    ) -> None:
        """``whole``: the whole file's answers, for answers that are one segment's
        (:func:`fidelite.analytics.segments.by_table_segment`), so that every segment
        lists the periods the whole file's result lists (from the first to the last
        answer to the metric's questions), empty ones included."""
        self.loaded = loaded
        self.bound: BoundTable = bind_table(loaded.connection, loaded.table, engine)
        self.engine = engine
        self.whole = whole

    def describe(self) -> dict[str, Any]:
        return {**self.loaded.describe(), "engine": self.engine}


def nps(answers: Answers, period: Period | None = None) -> MetricResult:
    """Net Promoter Score per period."""
    counts = _nps_counts(answers, period, ("nps",))

    def row(c: dict[str, dict[str, int]]) -> dict[str, Any]:
        n = c.get("nps", {})
        total = n.get("answers", 0)
        return {"answers": total, "promoters": n.get("promoters", 0),
                "passives": n.get("passives", 0), "detractors": n.get("detractors", 0),
                "nps": _nps(n)}  # fmt: skip

    definition = (
        "NPS = % promoters (score 9-10) - % detractors (score 0-6) of the answers to the "
        "'how likely are you to recommend us' question (nps or recommend), from -100 to 100; "
        f"{_scope(period)}; answers are counted, not customers; "
        f"time zone {answers.loaded.timezone}."
    )
    return _result("nps", definition, answers, period, counts, row, ("nps",))


def loyalty_index(answers: Answers, period: Period | None = None) -> MetricResult:
    """Customer loyalty index per period: the mean of three NPS-style scores."""
    counts = _nps_counts(answers, period, LOYALTY_QUESTIONS)

    def row(c: dict[str, dict[str, int]]) -> dict[str, Any]:
        scores = {f"{q}_score": _nps(c.get(q, {})) for q in LOYALTY_QUESTIONS}
        exact = [_exact_nps(c[q]) for q in LOYALTY_QUESTIONS if c.get(q, {}).get("answers")]
        index = _rounded(sum(exact, Fraction(0)) / len(exact)) if exact else None
        answered = sum(c.get(q, {}).get("answers", 0) for q in LOYALTY_QUESTIONS)
        return {"answers": answered, **scores, "loyalty_index": index}

    definition = (
        "Customer loyalty index = the mean of the NPS-style scores (% answers 9-10 - % "
        "answers 0-6) of the recommend (nps), repurchase and upsell questions, over those "
        f"with answers; from -100 to 100; {_scope(period)}; "
        f"time zone {answers.loaded.timezone}."
    )
    return _result("loyalty-index", definition, answers, period, counts, row, LOYALTY_QUESTIONS)


def csat(answers: Answers, period: Period | None = None) -> MetricResult:
    """Customer satisfaction per period: % satisfied (4-5) and the mean score."""
    stats = _score_stats(answers, period, "csat", good_from=4)

    def row(s: dict[str, Any]) -> dict[str, Any]:
        return {"answers": s["answers"], "satisfied": s["good"],
                "csat": percent(s["good"], s["answers"]), "mean_score": s["mean"]}  # fmt: skip

    definition = (
        "CSAT = answers 4 or 5 on the 1-5 satisfaction scale / all csat answers x 100; "
        f"mean_score is the mean answer; {_scope(period)}; time zone {answers.loaded.timezone}."
    )
    return _result("csat", definition, answers, period, stats, row, ("csat",))


def ces(answers: Answers, period: Period | None = None) -> MetricResult:
    """Customer effort score per period: the mean (1-7) and % easy (5-7)."""
    stats = _score_stats(answers, period, "ces", good_from=5)

    def row(s: dict[str, Any]) -> dict[str, Any]:
        return {"answers": s["answers"], "ces": s["mean"], "easy": s["good"],
                "easy_rate": percent(s["good"], s["answers"])}  # fmt: skip

    definition = (
        "CES = mean answer on the 1-7 effort scale (7 = very easy); easy_rate = answers 5-7 "
        f"/ all ces answers x 100; {_scope(period)}; time zone {answers.loaded.timezone}."
    )
    return _result("ces", definition, answers, period, stats, row, ("ces",))


def share_of_wallet(answers: Answers, period: Period | None = None) -> MetricResult:
    """Share of wallet per period: the mean stated share, and how many answered."""
    stats = _score_stats(answers, period, "share_of_wallet", good_from=50)

    def row(s: dict[str, Any]) -> dict[str, Any]:
        return {"answers": s["answers"], "share_of_wallet": s["mean"],
                "majority_share_answers": s["good"]}  # fmt: skip

    definition = (
        "Share of wallet = mean of the stated shares (%) of the customer's spending in the "
        "category that goes to the business (share_of_wallet answers, 0-100); "
        f"majority_share_answers = answers of 50 % or more; {_scope(period)}; "
        f"time zone {answers.loaded.timezone}."
    )
    return _result("share-of-wallet", definition, answers, period, stats, row, ("share_of_wallet",))


def latest_scores(answers: Answers, questions: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """customer -> question -> score of the customer's latest answer to that question.

    Latest = the latest instant (not local time, which repeats an hour when the clocks
    go back); when several answers share it, the highest score, so
    the result never depends on the order of the rows (the same on every engine). The
    kinds of loyal customers and the health score both take answers by this rule.
    """
    a = answers.bound.table
    a = a.filter(a.question.isin(list(questions)))
    latest = a.group_by(["customer_id", "question"]).aggregate(last=a.instant.max())
    joined = a.inner_join(latest, ["customer_id", "question"])
    joined = joined.filter(joined.instant == joined.last)
    scores = joined.group_by(["customer_id", "question"]).aggregate(score=joined.score.max())
    out: dict[str, dict[str, float]] = {}
    for r in answers.bound.execute(scores).to_pylist():
        out.setdefault(str(r["customer_id"]), {})[str(r["question"])] = float(r["score"])
    return out


# --------------------------------------------------------------------------- helpers


def _indexed(answers: Answers, period: Period | None, questions: tuple[str, ...]) -> ibis.Table:
    t = answers.bound.table
    t = t.filter(t.question.isin(list(questions)))
    return t.mutate(idx=index_expr(t.day, period) if period else ibis.literal(0))


def _nps_counts(
    answers: Answers, period: Period | None, questions: tuple[str, ...]
) -> dict[int, dict[str, dict[str, int]]]:
    """Per period index and question: answers, promoters, passives, detractors."""
    t = _indexed(answers, period, questions)
    agg = t.group_by(["idx", "question"]).aggregate(
        answers=t.count(),
        promoters=(t.score >= 9).sum(),
        detractors=(t.score <= 6).sum(),
    )
    out: dict[int, dict[str, dict[str, int]]] = {}
    for r in answers.bound.execute(agg).to_pylist():
        total, pro, det = int(r["answers"]), int(r["promoters"] or 0), int(r["detractors"] or 0)
        out.setdefault(int(r["idx"]), {})[str(r["question"])] = {
            "answers": total, "promoters": pro, "detractors": det,
            "passives": total - pro - det,
        }  # fmt: skip
    return out


def _score_stats(
    answers: Answers, period: Period | None, question: str, *, good_from: float
) -> dict[int, dict[str, Any]]:
    t = _indexed(answers, period, (question,))
    agg = t.group_by("idx").aggregate(
        answers=t.count(), good=(t.score >= good_from).sum(), mean=t.score.mean()
    )
    out: dict[int, dict[str, Any]] = {}
    for r in answers.bound.execute(agg).to_pylist():
        mean = round(float(r["mean"]), 4)
        out[int(r["idx"])] = {
            "answers": int(r["answers"]),
            "good": int(r["good"] or 0),
            "mean": mean,
        }
    return out


def _rounded(value: Fraction) -> float:
    """``value`` rounded to 4 decimals (exactly, half to even, as :func:`round` does)."""
    rounded: Fraction = round(value, 4)
    return float(rounded)


def _exact_nps(c: dict[str, int]) -> Fraction:
    """The NPS-style score of answered counts, exactly (for a mean rounded once)."""
    return Fraction(100 * (c["promoters"] - c["detractors"]), c["answers"])


def _nps(c: dict[str, int]) -> float | None:
    total = c.get("answers", 0)
    if not total:
        return None
    return round(100.0 * (c["promoters"] - c["detractors"]) / total, 4)


EMPTY: dict[str, Any] = {"answers": 0, "good": 0, "mean": None}


def _result(
    metric: str,
    definition: str,
    answers: Answers,
    period: Period | None,
    per_idx: dict[int, Any],
    make_row: Callable[[Any], dict[str, Any]],
    questions: tuple[str, ...],
) -> MetricResult:
    """One row per period (empty periods included), or one row for the whole file."""
    empty: Any = {} if metric in ("nps", "loyalty-index") else EMPTY
    if period is None:
        rows = [make_row(per_idx.get(0, empty))]
    else:
        rows = []
        span = range(min(per_idx), max(per_idx) + 1) if per_idx else range(0)
        days = answers.whole.days(questions) if answers.whole is not None else None
        if days is not None:  # a segment's: the whole file's periods
            span = range(index_of(days[0], period), index_of(days[1], period) + 1)
        for idx in span:
            start, end = bounds(idx, period)
            head = {"period": label(idx, period), "start": start.isoformat(),
                    "end": end.isoformat()}  # fmt: skip
            rows.append({**head, **make_row(per_idx.get(idx, empty))})
    # the fields of a row (an empty period's are the same): the CSV header without rows
    head_fields = ("period", "start", "end") if period is not None else ()
    columns = (*head_fields, *make_row(empty))
    params = {"period": period, **answers.describe()}
    return MetricResult(metric, definition, params, rows, columns=columns)


def _scope(period: Period | None) -> str:
    return f"per {period}" if period else "over the whole file"
