"""Every metric that measures up to the end of the data states that day.

RFM recency and T, repurchase's complete_Dd, the cohort cells left null, CLV's complete
months and loyalty kinds' days since the last order are all counted to the observation
end (the last day in the data, refunds included): the output names it in
``parameters.observation_end`` so a reader knows "recency 3" is 3 days before what.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from fidelite.analytics.engine import open_dataset
from fidelite.analytics.metrics.rfm import rfm

MetricsJson = Callable[..., dict[str, Any]]


# The last row is a refund on 20 March: it is the last day in the data.
TX = """
customer_id,timestamp,amount
a,2024-01-05,10
b,2024-02-10,20
a,2024-03-01,10
b,2024-03-20,-5
"""


@pytest.fixture
def tx(write_csv: Callable[..., Path]) -> Path:
    return write_csv(TX)


def test_rfm_states_its_observation_end_day(tx: Path, metrics_json: MetricsJson) -> None:
    out = metrics_json("rfm", "-i", str(tx))
    assert out["parameters"]["observation_end"] == "2024-03-20"
    assert "observation end day, 2024-03-20 (the last day in the data)" in out["definition"]
    recency = {r["customer_id"]: (r["recency"], r["T"]) for r in out["rows"]}
    assert recency == {"a": (19, 75), "b": (39, 39)}  # to 20 March


def test_rfm_states_a_given_observation_end(tx: Path) -> None:
    result = rfm(open_dataset(tx), end=date(2024, 3, 1))
    assert result.parameters["observation_end"] == "2024-03-01"
    assert "2024-03-01 (given)" in result.definition
    assert {r["customer_id"]: r["recency"] for r in result.rows} == {"a": 0, "b": 20}


@pytest.mark.parametrize(
    "args",
    [
        ["repurchase", "--days", "30"],
        ["cohorts"],
        ["cohorts", "--kind", "bracket"],
        ["clv"],
        ["loyalty-kinds"],
    ],
)
def test_metrics_measured_to_the_end_of_the_data_state_it(
    tx: Path, args: list[str], metrics_json: MetricsJson
) -> None:
    out = metrics_json(*args, "-i", str(tx))
    assert out["parameters"]["observation_end"] == "2024-03-20"
