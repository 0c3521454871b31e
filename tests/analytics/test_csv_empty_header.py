"""`--format csv` with no rows still prints the header line (docs/metrics.md: "a header
line and the rows"), so `rfm -f csv > rfm.csv` then `--segments rfm.csv` or any CSV
reader takes it; and every metric's declared columns are its rows' fields, in order."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fidelite.analytics.answers import load_answers
from fidelite.analytics.engine import Dataset, open_dataset
from fidelite.analytics.io import LoadOptions, load_transactions
from fidelite.analytics.metrics import surveys
from fidelite.analytics.metrics.cohorts import cohorts
from fidelite.analytics.metrics.loyalty import loyalty_kinds
from fidelite.analytics.metrics.pareto import pareto
from fidelite.analytics.metrics.period import Period
from fidelite.analytics.metrics.products import basket_affinity
from fidelite.analytics.metrics.repeat import repeat_rate
from fidelite.analytics.metrics.repurchase import repurchase
from fidelite.analytics.metrics.result import MetricResult
from fidelite.analytics.metrics.retention import churn, new_vs_returning, retention
from fidelite.analytics.metrics.rfm import rfm
from fidelite.analytics.metrics.surveys import Answers
from fidelite.analytics.segments import by_segment
from fidelite.cli.main import _register, app

_register()

ALL_REFUNDS = """
customer_id,timestamp,amount,order_id,product_id,refund
a,2024-01-01,-5,1,p1,true
b,2024-01-02,-7,1,p2,true
"""
RETENTION = (
    "period,start,end,customers_start,new,first_time,reactivated,customers_end,retained,"
    "lost,retention_rate,churn_rate"
)


@pytest.mark.parametrize(
    ("args", "header"),
    [
        (["rfm"], "customer_id,recency,frequency,monetary,T,r_score,f_score,m_score,segment"),
        (["retention"], RETENTION),
        (["churn"], RETENTION),
        (["new-vs-returning"],
         "period,start,end,customers,new,returning,new_share,returning_share"),
        (["repeat-rate", "--period", "month"],
         "period,start,end,customers,repeat_customers,repeat_purchase_rate"),
        (["cohorts"], "cohort,cohort_start,size,month_0"),
        (["cohorts", "--kind", "bracket", "--brackets", "1-7,8-30"],
         "cohort,cohort_start,size,days_1_7,days_8_30"),
        (["repurchase", "--days", "30"],
         "cohort,cohort_start,cohort_end,customers,repurchased_30d,repurchase_rate_30d,"
         "complete_30d"),
        (["repurchase", "--days", "7", "--per-product"],
         "cohort,product_id,cohort_start,cohort_end,customers,repurchased_7d,"
         "repurchase_rate_7d,complete_7d"),
        (["pareto"], "rank,customer_id,revenue,revenue_share,cumulative_share"),
        (["basket"], "a,b,baskets_with_both,baskets_with_a,baskets_with_b,support,"
                     "confidence_a_to_b,confidence_b_to_a,lift"),
    ],
)  # fmt: skip
def test_csv_without_rows_has_its_header_line(
    write_csv: Callable[..., Path], args: list[str], header: str
) -> None:
    path = str(write_csv(ALL_REFUNDS))
    result = CliRunner().invoke(app, ["metrics", *args, "-i", path, "-f", "csv"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [header]


MIXED = """
customer_id,timestamp,amount,order_id,product_id
a,2024-01-01,5,1,p1
a,2024-01-01,5,1,p2
a,2024-02-10,7,2,p1
b,2024-01-20,3,1,p2
"""
METRICS: dict[str, Callable[[Dataset], MetricResult]] = {
    "rfm": rfm,
    "retention": retention,
    "churn": churn,
    "new-vs-returning": new_vs_returning,
    "repeat-rate": lambda ds: repeat_rate(ds, None),
    "repeat-rate-month": lambda ds: repeat_rate(ds, "month"),
    "cohorts": cohorts,
    "cohorts-bracket": lambda ds: cohorts(ds, "month", "bracket"),
    "repurchase": repurchase,
    "repurchase-product": lambda ds: repurchase(ds, [7, 30], per_product=True),
    "pareto": pareto,
    "basket": lambda ds: basket_affinity(ds, min_support=0),
}


@pytest.mark.parametrize("name", sorted(METRICS))
def test_declared_columns_are_the_rows_fields(write_csv: Callable[..., Path], name: str) -> None:
    result = METRICS[name](open_dataset(write_csv(MIXED)))
    assert result.rows
    assert all(list(row) == list(result.columns) for row in result.rows)


# Loyalty kinds, the survey metrics per period and every metric per segment: the same.
ANSWERS_CSAT = """
customer_id,timestamp,question,score
c1,2024-01-01,csat,4
"""
ANSWERS_NPS = """
customer_id,timestamp,question,score
c1,2024-01-01,nps,9
"""
LOYALTY_KINDS = "customer_id,orders,days_since_last,coupon_share,recommend,csat,program,kind,reason"


@pytest.mark.parametrize(
    ("args", "answers", "header"),
    [
        (["loyalty-kinds", "-i", "{tx}"], None, LOYALTY_KINDS),
        (["loyalty-kinds", "-i", "{tx}", "-s", "{answers}"], ANSWERS_NPS, LOYALTY_KINDS),
        (["nps", "-s", "{answers}", "--period", "month"], ANSWERS_CSAT,
         "period,start,end,answers,promoters,passives,detractors,nps"),
        (["ces", "-s", "{answers}", "--period", "month"], ANSWERS_CSAT,
         "period,start,end,answers,ces,easy,easy_rate"),
        (["loyalty-index", "-s", "{answers}", "--period", "month"], ANSWERS_CSAT,
         "period,start,end,answers,nps_score,repurchase_score,upsell_score,loyalty_index"),
        (["csat", "-s", "{answers}", "--period", "month"], ANSWERS_NPS,
         "period,start,end,answers,satisfied,csat,mean_score"),
        (["rfm", "-i", "{tx}", "--segment-col", "product_id"], None,
         "segment,customer_id,recency,frequency,monetary,T,r_score,f_score,m_score,rfm_segment"),
        (["pareto", "-i", "{tx}", "--segment-col", "product_id"], None,
         "segment,rank,customer_id,revenue,revenue_share,cumulative_share"),
        (["retention", "-i", "{tx}", "--segment-col", "product_id"], None, f"segment,{RETENTION}"),
        (["loyalty-kinds", "-i", "{tx}", "--segment-col", "product_id"], None,
         f"segment,{LOYALTY_KINDS}"),
    ],
)  # fmt: skip
def test_other_outputs_without_rows_have_their_header_line(
    write_csv: Callable[..., Path], args: list[str], answers: str | None, header: str
) -> None:
    tx = str(write_csv(ALL_REFUNDS))
    survey = str(write_csv(answers, "answers.csv")) if answers else ""
    argv = [arg.format(tx=tx, answers=survey) for arg in args]
    result = CliRunner().invoke(app, ["metrics", *argv, "-f", "csv"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [header]


SURVEY = """
customer_id,timestamp,question,score
a,2024-01-01,nps,9
a,2024-01-02,csat,4
b,2024-03-05,ces,6
b,2024-03-05,repurchase,3
b,2024-03-06,share_of_wallet,60
"""


@pytest.mark.parametrize("name", ["nps", "csat", "ces", "loyalty_index", "share_of_wallet"])
@pytest.mark.parametrize("period", [None, "month"])
def test_survey_columns_are_the_rows_fields(
    write_csv: Callable[..., Path], name: str, period: Period | None
) -> None:
    answers = Answers(load_answers(write_csv(SURVEY, "answers.csv")))
    result = getattr(surveys, name)(answers, period)
    assert result.rows
    assert all(list(row) == list(result.columns) for row in result.rows)


def test_loyalty_kinds_and_segmented_columns_are_the_rows_fields(
    write_csv: Callable[..., Path],
) -> None:
    result = loyalty_kinds(open_dataset(write_csv(MIXED)))
    assert result.rows and all(list(row) == list(result.columns) for row in result.rows)
    options = LoadOptions(segment_column="product_id")
    for compute in (rfm, pareto, retention, loyalty_kinds):
        ds = open_dataset(load_transactions(write_csv(MIXED), options))
        result = by_segment(ds, compute)
        assert result.rows and all(list(row) == list(result.columns) for row in result.rows)
