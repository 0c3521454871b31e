"""RFM scores on ties, tiny files and scales other than 5, hand-computed.

Rule (fidelite.analytics.metrics.rfm): floor(q x customers worse / customers) + 1, so
a tie group shares the lowest score it reaches and a value everyone shares scores 1.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fidelite.analytics.engine import open_dataset
from fidelite.analytics.metrics.rfm import on_five_scale, rfm, segment_sizes

Rows = dict[str, dict[str, Any]]


def _rfm(path: Path, quantiles: int = 5) -> Rows:
    return {r["customer_id"]: r for r in rfm(open_dataset(path), quantiles).rows}


def _scores(rows: Rows, customer: str) -> tuple[int, int, int, str]:
    r = rows[customer]
    return (r["r_score"], r["f_score"], r["m_score"], r["segment"])


def test_rfm_a_tie_group_shares_the_lowest_score_it_reaches(
    write_csv: Callable[..., Path],
) -> None:
    # a, b, c bought on the last day (recency 0); d 214 days earlier; e twice before.
    path = write_csv(
        """
        customer_id,timestamp,amount
        a,2024-01-01,5
        b,2024-01-01,50
        c,2024-01-01,500
        d,2023-06-01,5
        e,2023-09-01,20
        e,2023-10-01,20
        """
    )
    rows = _rfm(path)
    assert [rows[c]["recency"] for c in "abcde"] == [0, 0, 0, 214, 92]
    # R: a, b, c share the best value but are 3 of 5: 2 worse -> floor(5 x 2 / 5) + 1
    # = 3, the lowest score their group reaches; d the worst -> 1; e 1 worse -> 2.
    assert [rows[c]["r_score"] for c in "abcde"] == [3, 3, 3, 1, 2]
    # F: the four one-order customers tie at the worst value -> 1; e (2 orders, 4
    # worse) -> 5.
    assert [rows[c]["f_score"] for c in "abcde"] == [1, 1, 1, 1, 5]
    # M: 5, 50, 500, 5, 40: a and d tie at the worst -> 1; e 2 worse -> 3; b 3 -> 4;
    # c 4 -> 5.
    assert [rows[c]["m_score"] for c in "abcde"] == [1, 4, 5, 1, 3]
    assert [rows[c]["segment"] for c in "abcde"] == [
        "about to sleep",  # R3 F1
        "about to sleep",
        "about to sleep",
        "lost",
        "cannot lose them",  # R2 F5
    ]


def test_rfm_one_order_customers_are_never_champions(
    write_csv: Callable[..., Path],
) -> None:
    """When everyone has one order, nobody is more frequent: F = 1 for all, and the
    recent buyers are new customers (R5 F1), not champions (R5 F5)."""
    # c0..c9 buy once, c_i on day i + 1 of January; c8 and c9 both on the last day.
    days = [1, 2, 3, 4, 5, 6, 7, 8, 10, 10]
    lines = [f"c{i},2024-01-{d:02d},10" for i, d in enumerate(days)]
    rows = _rfm(write_csv("customer_id,timestamp,amount\n" + "\n".join(lines)))
    assert [rows[f"c{i}"]["f_score"] for i in range(10)] == [1] * 10
    assert [rows[f"c{i}"]["m_score"] for i in range(10)] == [1] * 10
    # R: c_i has i customers worse (c8, c9 tie with 8 worse) -> floor(5 x i / 10) + 1
    assert [rows[f"c{i}"]["r_score"] for i in range(10)] == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert [rows[f"c{i}"]["segment"] for i in range(10)] == [
        "lost",
        "lost",
        "hibernating",
        "hibernating",
        "about to sleep",
        "about to sleep",
        "promising",
        "promising",
        "new customers",
        "new customers",
    ]


def test_rfm_equal_values_get_equal_scores_whatever_the_row_order(
    write_csv: Callable[..., Path],
) -> None:
    lines = ["a,2024-01-01,10", "b,2024-01-01,10", "c,2024-01-02,10", "d,2024-01-02,10"]
    forward = _rfm(write_csv("customer_id,timestamp,amount\n" + "\n".join(lines), "f.csv"))
    backward = _rfm(write_csv("customer_id,timestamp,amount\n" + "\n".join(lines[::-1]), "b.csv"))
    assert forward == backward
    # c, d: best recency, 2 worse -> floor(5 x 2 / 4) + 1 = 3; a, b: worst -> 1.
    # Everyone has 1 order and spent 10: nobody is worse, so 1 (a tie that cannot
    # separate anyone is no reason for a top score).
    assert [_scores(forward, c) for c in "abcd"] == [
        (1, 1, 1, "lost"),
        (1, 1, 1, "lost"),
        (3, 1, 1, "about to sleep"),
        (3, 1, 1, "about to sleep"),
    ]


def test_rfm_one_customer_is_compared_with_nobody(write_csv: Callable[..., Path]) -> None:
    # Nobody is worse: 1 on every dimension, whatever the customer did.
    rows = _rfm(write_csv("customer_id,timestamp,amount\na,2024-05-01,9\na,2024-05-03,4"))
    assert _scores(rows, "a") == (1, 1, 1, "lost")
    assert _scores(_rfm(write_csv("customer_id,timestamp,amount\na,2024-05-01,9"), 3), "a") == (
        1,
        1,
        1,
        "lost",
    )


def test_rfm_fewer_customers_than_levels(
    write_csv: Callable[..., Path],
) -> None:
    # Three customers, quintiles: 0 worse -> 1, 1 worse -> floor(5 / 3) + 1 = 2,
    # 2 worse -> floor(10 / 3) + 1 = 4.
    path = write_csv(
        """
        customer_id,timestamp,amount
        a,2024-03-01,10
        b,2024-02-01,20
        b,2024-03-10,20
        c,2024-01-01,5
        c,2024-02-01,5
        c,2024-03-20,5
        """
    )
    rows = _rfm(path)
    # recency a 19, b 10, c 0; orders a 1, b 2, c 3; spend a 10, b 40, c 15.
    assert [_scores(rows, c) for c in "abc"] == [
        (1, 1, 1, "lost"),
        (2, 2, 4, "hibernating"),
        (4, 4, 2, "champions"),
    ]
    # Two customers: the worse 1, the better floor(5 x 1 / 2) + 1 = 3.
    two = _rfm(write_csv("customer_id,timestamp,amount\na,2024-01-01,1\nb,2024-01-02,2", "2.csv"))
    assert [two[c]["r_score"] for c in "ab"] == [1, 3]


def test_rfm_quintiles_are_equal_with_distinct_values(write_csv: Callable[..., Path]) -> None:
    # Ten customers c0..c9, c_i spends 10 x (i + 1) on day i: two customers per quintile.
    lines = [f"c{i},2024-01-{i + 1:02d},{10 * (i + 1)}" for i in range(10)]
    rows = _rfm(write_csv("customer_id,timestamp,amount\n" + "\n".join(lines)))
    expected = [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert [rows[f"c{i}"]["m_score"] for i in range(10)] == expected
    assert [rows[f"c{i}"]["r_score"] for i in range(10)] == expected


def test_rfm_three_levels_sit_on_the_segment_grid(write_csv: Callable[..., Path]) -> None:
    # Six customers, --quantiles 3. Recency: a, b 0; c, d 30; e, f 60 days.
    # Orders: a 1, b 3, c 2, d 3, e 1, f 3.
    path = write_csv(
        """
        customer_id,timestamp,amount,order_id
        a,2024-03-31,10,a1
        b,2024-03-29,10,b1
        b,2024-03-30,10,b2
        b,2024-03-31,10,b3
        c,2024-02-20,10,c1
        c,2024-03-01,10,c2
        d,2024-02-01,10,d1
        d,2024-02-15,10,d2
        d,2024-03-01,10,d3
        e,2024-01-31,10,e1
        f,2024-01-01,10,f1
        f,2024-01-15,10,f2
        f,2024-01-31,10,f3
        """
    )
    rows = _rfm(path, 3)
    # R: a, b best, 4 worse -> floor(3 x 4 / 6) + 1 = 3; c, d 2 worse -> 2; e, f -> 1.
    assert [rows[c]["r_score"] for c in "abcdef"] == [3, 3, 2, 2, 1, 1]
    # F: a, e worst -> 1; c 2 worse -> floor(3 x 2 / 6) + 1 = 2; b, d, f best, but half
    # of the customers: 3 worse -> floor(3 x 3 / 6) + 1 = 2, their group's lowest.
    assert [rows[c]["f_score"] for c in "abcdef"] == [1, 2, 2, 2, 1, 2]
    # On the 1-5 grid 1, 2, 3 sit at 1, 3, 5: R5 F1 is "new customers", the middle
    # third is R3 / F3.
    assert [rows[c]["segment"] for c in "abcdef"] == [
        "new customers",  # R3 F1 -> R5 F1
        "potential loyalists",  # R3 F2 -> R5 F3
        "need attention",  # R2 F2 -> R3 F3 on the grid
        "need attention",  # R2 F2 -> R3 F3
        "lost",  # R1 F1 -> R1 F1
        "at risk",  # R1 F2 -> R1 F3
    ]


@pytest.mark.parametrize(
    ("q", "placed"),
    [
        (2, [1, 5]),
        (3, [1, 3, 5]),
        (4, [1, 2, 4, 5]),
        (5, [1, 2, 3, 4, 5]),
        (9, [1, 2, 2, 3, 3, 4, 4, 5, 5]),
        (10, [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]),
    ],
)
def test_rfm_scores_sit_on_the_five_grid_keeping_both_ends_and_the_middle(
    q: int, placed: list[int]
) -> None:
    assert [on_five_scale(s, q) for s in range(1, q + 1)] == placed


def test_rfm_segment_sizes_count_each_customer_once(write_csv: Callable[..., Path]) -> None:
    path = write_csv(
        """
        customer_id,timestamp,amount
        a,2024-01-01,5
        b,2024-01-01,50
        c,2024-01-01,500
        d,2023-06-01,5
        e,2023-09-01,20
        e,2023-10-01,20
        """
    )
    sizes = segment_sizes(open_dataset(path))
    assert sizes == [
        {"segment": "about to sleep", "customers": 3, "revenue": 555.0},
        {"segment": "cannot lose them", "customers": 1, "revenue": 40.0},
        {"segment": "lost", "customers": 1, "revenue": 5.0},
    ]
