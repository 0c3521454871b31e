"""Survey metrics on small hand-written answer files: exact values and clear errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from fidelite.analytics.answers import load_answers
from fidelite.analytics.errors import InputError
from fidelite.analytics.metrics.surveys import (
    Answers,
    ces,
    csat,
    loyalty_index,
    nps,
    share_of_wallet,
)
from tests.cli.support import fidelite

# January: nps 10, 9, 8, 6, 0  -> 2 promoters, 1 passive, 2 detractors: NPS 0.
# February: none at all (an empty month).  March: nps 9, 10 and "recommend" 10 -> NPS 100.
ANSWERS = """
customer_id,timestamp,question,score
a,2024-01-03 09:00,nps,10
b,2024-01-04 09:00,nps,9
c,2024-01-05 09:00,nps,8
d,2024-01-06 09:00,NPS,6
e,2024-01-31T23:30:00Z,nps,0
a,2024-03-01 10:00,nps,9
b,2024-03-02 10:00,nps,10
c,2024-03-03 10:00,Recommend,10
a,2024-01-03 09:00,repurchase,10
b,2024-01-04 09:00,repurchase,3
a,2024-01-03 09:00,upsell,7
a,2024-01-03 09:00,csat,5
b,2024-01-04 09:00,csat,4
c,2024-01-05 09:00,csat,2
a,2024-01-03 09:00,ces,7
b,2024-01-04 09:00,ces,4
a,2024-01-03 09:00,share_of_wallet,80
b,2024-01-04 09:00,share_of_wallet,25.5
a,2024-01-03 09:00,favourite_colour,3
"""


@pytest.fixture
def answers(write_csv: Callable[..., Path]) -> Answers:
    return Answers(load_answers(write_csv(ANSWERS, "answers.csv")))


def test_nps_per_month_lists_empty_month(answers: Answers) -> None:
    rows = nps(answers, "month").rows
    assert [r["period"] for r in rows] == ["2024-01", "2024-02", "2024-03"]
    jan, feb, mar = rows
    assert (jan["answers"], jan["promoters"], jan["passives"], jan["detractors"]) == (5, 2, 1, 2)
    assert jan["nps"] == 0.0
    assert (feb["answers"], feb["nps"]) == (0, None)
    assert (mar["answers"], mar["nps"]) == (3, 100.0)  # 'Recommend' is the same question


def test_nps_time_zone_moves_an_answer_across_midnight(write_csv: Callable[..., Path]) -> None:
    path = write_csv(ANSWERS, "answers.csv")
    paris = nps(Answers(load_answers(path, timezone="Europe/Paris")), "month").rows
    # e's 0 at 23:30 UTC on Jan 31 is Feb 1 in Paris: January loses a detractor.
    assert (paris[0]["answers"], paris[0]["nps"]) == (4, 25.0)
    assert (paris[1]["answers"], paris[1]["nps"]) == (1, -100.0)


def test_nps_whole_file(answers: Answers) -> None:
    (row,) = nps(answers).rows
    # 8 answers: promoters 10, 9, 9, 10, 10 = 5; detractors 6, 0 = 2 -> (5 - 2) / 8
    assert (row["answers"], row["nps"]) == (8, 37.5)


def test_nps_all_promoters_and_all_detractors(write_csv: Callable[..., Path]) -> None:
    high = "customer_id,timestamp,question,score\na,2024-01-01,nps,9\nb,2024-01-02,nps,10"
    low = "customer_id,timestamp,question,score\na,2024-01-01,nps,0\nb,2024-01-02,nps,6"
    assert nps(Answers(load_answers(write_csv(high, "h.csv")))).rows[0]["nps"] == 100.0
    assert nps(Answers(load_answers(write_csv(low, "l.csv")))).rows[0]["nps"] == -100.0


def test_loyalty_index_is_mean_of_three_nps_style_scores(answers: Answers) -> None:
    jan = loyalty_index(answers, "month").rows[0]
    # recommend 0.0; repurchase: 10 promoter, 3 detractor -> 0.0; upsell: 7 passive -> 0.0
    assert (jan["nps_score"], jan["repurchase_score"], jan["upsell_score"]) == (0.0, 0.0, 0.0)
    assert jan["loyalty_index"] == 0.0
    mar = loyalty_index(answers, "month").rows[2]
    # only the recommend question was asked in March
    assert (mar["nps_score"], mar["repurchase_score"], mar["loyalty_index"]) == (100.0, None, 100.0)
    (whole,) = loyalty_index(answers).rows
    assert whole["loyalty_index"] == round((37.5 + 0.0 + 0.0) / 3, 4)


def test_csat_ces_share_of_wallet(answers: Answers) -> None:
    (c,) = csat(answers).rows
    assert (c["answers"], c["satisfied"], c["csat"], c["mean_score"]) == (3, 2, 66.6667, 3.6667)
    (e,) = ces(answers).rows
    assert (e["answers"], e["ces"], e["easy"], e["easy_rate"]) == (2, 5.5, 1, 50.0)
    (w,) = share_of_wallet(answers).rows
    assert (w["answers"], w["share_of_wallet"], w["majority_share_answers"]) == (2, 52.75, 1)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            "f,2024-01-01,nps,11",
            "score: nps score must be between 0 and 10: '11'",
        ),
        ("f,2024-01-01,csat,0", "score: csat score must be between 1 and 5: '0'"),
        (
            "f,2024-01-01,nps,7.5",
            "score: nps score must be a whole number: '7.5'",
        ),
        ("f,2024-01-01,nps,", "score: missing or unparsable score: empty value"),
        ("f,someday,nps,5", "timestamp: unparsable date"),
        (",2024-01-01,nps,5", "customer_id: missing customer"),
    ],
)
def test_bad_answer_is_one_clear_error(
    write_csv: Callable[..., Path], line: str, message: str
) -> None:
    path = write_csv(ANSWERS.strip() + "\n" + line, "answers.csv")
    with pytest.raises(InputError) as err:
        load_answers(path)
    column, _, reason = message.partition(": ")
    assert (err.value.row, err.value.column) == (21, column)
    assert err.value.reason.startswith(reason)


def test_missing_column_and_empty_file(write_csv: Callable[..., Path]) -> None:
    with pytest.raises(InputError, match="missing required column 'score'"):
        load_answers(write_csv("customer_id,timestamp,question\na,2024-01-01,nps"))
    with pytest.raises(InputError, match="no survey answers"):
        load_answers(write_csv("customer_id,timestamp,question,score", "empty.csv"))


def test_nps_cli_json(write_csv: Callable[..., Path]) -> None:
    path = write_csv(ANSWERS, "answers.csv")
    proc = fidelite("metrics", "nps", "--surveys", path, "--period", "month", "-f", "json")
    out = json.loads(proc.stdout)
    assert out["metric"] == "nps" and out["parameters"]["period"] == "month"
    assert [r["nps"] for r in out["rows"]] == [0.0, None, 100.0]
    bad = write_csv(ANSWERS.strip() + "\nf,2024-01-01,nps,11", "bad.csv")
    proc = fidelite("metrics", "nps", "--surveys", bad, "-f", "json", ok=False)
    assert proc.returncode == 1
    error = json.loads(proc.stdout)["error"]
    assert (error["code"], error["row"], error["column"]) == ("bad_input", 21, "score")
