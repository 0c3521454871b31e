"""RFM monetary scores and Pareto ranks compare money summed exactly.

A double sum made 1.10 + 2.20 (3.3000000000000003) worth more than one purchase of
3.30, and 0.1 + 0.2 + 0.3 another value than 0.3 + 0.2 + 0.1: equal spenders got
different M scores, Pareto's tie by id picked the wrong customer, and reordering the
file's rows changed both. Hand-computed; DuckDB and Spark alike.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fidelite.analytics.engine import EngineName, open_dataset
from fidelite.analytics.metrics.pareto import curve, pareto
from fidelite.analytics.metrics.rfm import rfm, segment_sizes

HEADER = "customer_id,timestamp,amount"
# ann spends 1.10 + 2.20, bob one 3.30: the same 3.30.
TIE = [
    "ann,2024-05-01,1.10",
    "ann,2024-05-02,2.20",
    "bob,2024-05-02,3.30",
    "cat,2024-05-03,1.00",
    "dan,2024-05-03,2.00",
    "eve,2024-05-04,5.00",
]
# b buys 0.1 + 0.2, a one 0.3: tied at 0.30, so by id a comes first.
PARETO = [
    "b,2024-01-01,0.1",
    "b,2024-01-01,0.2",
    "a,2024-01-01,0.3",
    "c,2024-01-01,0.05",
    "d,2024-01-01,0.05",
    "e,2024-01-01,0.06",
]
# a: 0.1, 0.2, 0.3 (0.6); b one 0.6; c 0.05; d 0.06.
ORDER = ["a,2024-01-01,0.1", "a,2024-01-01,0.2", "a,2024-01-01,0.3", "b,2024-01-01,0.6",
         "c,2024-01-01,0.05", "d,2024-01-01,0.06"]  # fmt: skip

ENGINES: list[Any] = ["duckdb", pytest.param("spark", marks=pytest.mark.slow)]


def _write(write_csv: Callable[..., Path], rows: list[str], name: str = "tx.csv") -> Path:
    return write_csv(HEADER + "\n" + "\n".join(rows), name)


def _m_scores(path: Path, engine: EngineName = "duckdb") -> dict[str, tuple[float, int]]:
    rows = rfm(open_dataset(path, engine=engine)).rows
    return {r["customer_id"]: (r["monetary"], r["m_score"]) for r in rows}


@pytest.mark.parametrize("engine", ENGINES)
def test_rfm_equal_spend_split_differently_gets_equal_m_scores(
    write_csv: Callable[..., Path], engine: EngineName
) -> None:
    scores = _m_scores(_write(write_csv, TIE), engine)
    # 1.00, 2.00, 3.30, 3.30, 5.00: ann and bob have 2 worse -> floor(5 x 2 / 5) + 1 = 3.
    assert scores == {
        "ann": (3.3, 3),
        "bob": (3.3, 3),
        "cat": (1.0, 1),
        "dan": (2.0, 2),
        "eve": (5.0, 5),
    }


@pytest.mark.parametrize("engine", ENGINES)
def test_rfm_does_not_depend_on_the_row_order(
    write_csv: Callable[..., Path], engine: EngineName
) -> None:
    forward = _m_scores(_write(write_csv, ORDER, "f.csv"), engine)
    backward = _m_scores(_write(write_csv, ORDER[::-1], "b.csv"), engine)
    # 0.05, 0.06, 0.6, 0.6: a and b have 2 worse -> floor(5 x 2 / 4) + 1 = 3.
    assert forward == backward == {"a": (0.6, 3), "b": (0.6, 3), "c": (0.05, 1), "d": (0.06, 2)}


def test_rfm_segment_revenue_is_the_exact_sum(write_csv: Callable[..., Path]) -> None:
    sizes = segment_sizes(open_dataset(_write(write_csv, ORDER)))
    assert sizes == [
        {"segment": "lost", "customers": 3, "revenue": 0.71},
        {"segment": "at risk", "customers": 1, "revenue": 0.6},
    ]


@pytest.mark.parametrize("engine", ENGINES)
def test_pareto_ties_by_id_on_exact_revenue(
    write_csv: Callable[..., Path], engine: EngineName
) -> None:
    result = pareto(open_dataset(_write(write_csv, PARETO), engine=engine), 40.0)
    # Ranked: a 0.30, b 0.30 (tie: by id), e 0.06, c 0.05, d 0.05; total 0.76.
    # Top ceil(40 % x 5) = 2.
    assert result.rows == [
        {"rank": 1, "customer_id": "a", "revenue": 0.3, "revenue_share": 39.4737,
         "cumulative_share": 39.4737},
        {"rank": 2, "customer_id": "b", "revenue": 0.3, "revenue_share": 39.4737,
         "cumulative_share": 78.9474},
    ]  # fmt: skip
    assert result.summary["revenue"] == 0.76
    assert result.summary["top_revenue"] == 0.6
    assert result.summary["top_revenue_share"] == 78.9474
    everyone = pareto(open_dataset(_write(write_csv, PARETO), engine=engine), 100.0)
    assert [r["customer_id"] for r in everyone.rows] == ["a", "b", "e", "c", "d"]
    assert everyone.rows[-1]["cumulative_share"] == 100.0


def test_pareto_and_its_curve_do_not_depend_on_the_row_order(
    write_csv: Callable[..., Path],
) -> None:
    rows = PARETO * 3 + ORDER
    outputs = []
    for i in range(4):
        shuffled = rows[:]
        random.Random(i).shuffle(shuffled)
        ds = open_dataset(_write(write_csv, shuffled, f"s{i}.csv"))
        outputs.append((pareto(ds, 50.0).to_dict()["rows"], pareto(ds).summary, curve(ds, 4)))
    assert all(o == outputs[0] for o in outputs[1:])
    # a 0.9 + 0.6 = 1.5, b 0.9 + 0.6 = 1.5, e 0.18, c 0.2, d 0.21: ties by id.
    assert [r["customer_id"] for r in outputs[0][0]] == ["a", "b", "d"]


def test_pareto_top_share_counts_customers_exactly(write_csv: Callable[..., Path]) -> None:
    # 250 customers: the top 64.4 % is ceil(161.0) = 161 customers (the double product
    # 250 x 64.4 / 100 is 161.00000000000003, which made it 162).
    rows = [f"c{i:03d},2024-01-01,{i + 1}" for i in range(250)]
    result = pareto(open_dataset(_write(write_csv, rows)), 64.4, None)
    assert result.summary["top_customers"] == 161
    assert len(result.rows) == 161
    assert result.rows[-1]["customer_id"] == "c089"  # 250 - 161 = 89: c089 spent 90
