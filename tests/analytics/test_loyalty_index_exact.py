"""The customer loyalty index averages the exact question scores, rounded once.

nps {7} scores 0, repurchase {9, 10, 8} and upsell {9, 9, 7} 200 / 3 each: the index
is 400 / 9 = 44.4444. Averaging the scores already rounded (66.6667) gave 44.4445.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fidelite.analytics.answers import load_answers
from fidelite.analytics.metrics.surveys import Answers, loyalty_index

ANSWERS = """
customer_id,timestamp,question,score
a,2024-01-03 09:00,nps,7
a,2024-01-03 09:00,repurchase,9
b,2024-01-04 09:00,repurchase,10
c,2024-01-05 09:00,repurchase,8
a,2024-01-03 09:00,upsell,9
b,2024-01-04 09:00,upsell,9
c,2024-01-05 09:00,upsell,7
"""


def test_loyalty_index_is_the_mean_of_the_unrounded_scores(
    write_csv: Callable[..., Path],
) -> None:
    answers = Answers(load_answers(write_csv(ANSWERS, "answers.csv")))
    (row,) = loyalty_index(answers).rows
    assert row == {
        "answers": 7,
        "nps_score": 0.0,
        "repurchase_score": 66.6667,
        "upsell_score": 66.6667,
        "loyalty_index": 44.4444,
    }
