"""Survey and MRR metrics give the same results on DuckDB and on Spark (local mode).

Slow: it shares the Spark session of the transaction-metric parity test.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from fidelite.analytics.answers import load_answers
from fidelite.analytics.engine import open_dataset
from fidelite.analytics.metrics import surveys
from fidelite.analytics.metrics.loyalty import loyalty_kinds
from fidelite.analytics.metrics.mrr import Subscriptions, mrr
from fidelite.analytics.metrics.result import MetricResult
from fidelite.analytics.subscriptions import load_subscriptions

pytestmark = pytest.mark.slow

SURVEY_METRICS: dict[str, Callable[[surveys.Answers], MetricResult]] = {
    "nps-month": lambda a: surveys.nps(a, "month"),
    "nps-all": lambda a: surveys.nps(a),
    "csat-quarter": lambda a: surveys.csat(a, "quarter"),
    "ces-week": lambda a: surveys.ces(a, "week"),
    "loyalty-index-month": lambda a: surveys.loyalty_index(a, "month"),
    "share-of-wallet": lambda a: surveys.share_of_wallet(a, "month"),
}
SCALES = {"nps": 10, "repurchase": 10, "upsell": 10, "csat": 5, "ces": 7, "share_of_wallet": 100,
          "program": 10}  # fmt: skip


def _comparable(result: MetricResult) -> dict[str, Any]:
    out = result.to_dict()
    out["parameters"] = {k: v for k, v in out["parameters"].items() if k != "engine"}
    return out


@pytest.fixture(scope="module")
def answers(tmp_path_factory: pytest.TempPathFactory) -> tuple[surveys.Answers, surveys.Answers]:
    rng = random.Random(7)
    lines = ["customer_id,timestamp,question,score"]
    start = datetime(2024, 1, 1)
    for _ in range(2000):
        question = rng.choice(sorted(SCALES))
        low = 1 if question in ("csat", "ces") else 0
        ts = start + timedelta(minutes=rng.randrange(300 * 24 * 60))
        lines.append(f"c{rng.randrange(200)},{ts.isoformat()}Z,{question},"
                     f"{rng.randint(low, SCALES[question])}")  # fmt: skip
    path: Path = tmp_path_factory.mktemp("surveys") / "answers.csv"
    path.write_text("\n".join(lines) + "\n")
    loaded = load_answers(path, timezone="Asia/Tokyo")
    return surveys.Answers(loaded, "duckdb"), surveys.Answers(loaded, "spark")


@pytest.mark.parametrize("name", sorted(SURVEY_METRICS))
def test_survey_metric_is_identical_on_duckdb_and_spark(
    name: str, answers: tuple[surveys.Answers, surveys.Answers]
) -> None:
    duck, spark = answers
    left, right = SURVEY_METRICS[name](duck), SURVEY_METRICS[name](spark)
    assert left.rows
    assert _comparable(left) == _comparable(right)


@pytest.mark.parametrize("period", ["month", "quarter"])
def test_mrr_is_identical_on_duckdb_and_spark(
    period: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    rng = random.Random(11)
    lines = ["customer_id,mrr,start,end"]
    for c in range(150):
        day = date(2023, 1, 1) + timedelta(days=rng.randrange(400))
        for _ in range(rng.randint(1, 3)):  # consecutive price periods, some with gaps
            length = rng.randrange(20, 300)
            end = day + timedelta(days=length)
            open_ended = rng.random() < 0.3
            lines.append(f"c{c},{rng.choice([9, 19, 49, 99])},{day},{'' if open_ended else end}")
            if open_ended:
                break
            day = end + timedelta(days=rng.choice([0, 0, 0, 40]))
    for c in range(150, 180):  # free ($0) trials, most converting to a paid plan
        day = date(2023, 1, 1) + timedelta(days=rng.randrange(400))
        paid = day + timedelta(days=rng.randrange(10, 60))
        lines.append(f"c{c},0,{day},{paid}")
        if rng.random() < 0.8:
            lines.append(f"c{c},{rng.choice([9, 19])},{paid},")
    path: Path = tmp_path_factory.mktemp("subs") / "subs.csv"
    path.write_text("\n".join(lines) + "\n")
    loaded = load_subscriptions(path)
    left = mrr(Subscriptions(loaded, "duckdb"), period)  # type: ignore[arg-type]  # str period
    right = mrr(Subscriptions(loaded, "spark"), period)  # type: ignore[arg-type]
    assert any(r["churned_mrr"] for r in left.rows) and any(r["expansion_mrr"] for r in left.rows)
    assert _comparable(left) == _comparable(right)
    for row in left.rows:  # the movements add up
        moves = (row["starting_mrr"] + row["new_mrr"] + row["reactivation_mrr"]
                 + row["expansion_mrr"] - row["contraction_mrr"] - row["churned_mrr"])  # fmt: skip
        assert moves == pytest.approx(row["ending_mrr"], abs=1e-6)


def test_loyalty_kinds_are_identical_on_duckdb_and_spark(
    answers: tuple[surveys.Answers, surveys.Answers], tmp_path_factory: pytest.TempPathFactory
) -> None:
    rng = random.Random(5)
    lines = ["customer_id,timestamp,amount,order_id,coupon_code"]
    for c in range(220):  # c200-c219 never answered a survey
        day = date(2024, 1, 1) + timedelta(days=rng.randrange(200))
        for n in range(rng.randint(1, 6)):
            coupon = "SAVE" if rng.random() < 0.3 else ""
            lines.append(f"c{c},{day},{rng.randint(5, 80)},c{c}-{n},{coupon}")
            day += timedelta(days=rng.randrange(1, 40))
    path: Path = tmp_path_factory.mktemp("kinds") / "tx.csv"
    path.write_text("\n".join(lines) + "\n")
    duck_answers, spark_answers = answers
    duck = loyalty_kinds(open_dataset(path), duck_answers)
    spark = loyalty_kinds(open_dataset(path, engine="spark"), spark_answers)
    assert sum(1 for k in duck.summary["kinds"] if k["customers"]) >= 5
    assert _comparable(duck) == _comparable(spark)


def test_latest_answers_ignore_row_order_on_duckdb_and_spark(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Many answers share a timestamp: health and loyalty-kinds take the highest score,
    identical for shuffled copies of the file and on both engines."""
    from fidelite.analytics.health import customer_health

    rng = random.Random(3)
    tx = ["customer_id,timestamp,amount,order_id"]
    answers = []
    for c in range(60):
        day = date(2024, 1, 1) + timedelta(days=rng.randrange(60))
        for n in range(rng.randint(1, 5)):
            tx.append(f"c{c},{day},{rng.randint(5, 80)},c{c}-{n}")
            day += timedelta(days=rng.randrange(1, 30))
        ts = datetime(2024, 3, 1) + timedelta(hours=rng.randrange(3))  # few distinct times
        for _ in range(rng.randint(1, 4)):
            answers.append(f"c{c},{ts.isoformat()},nps,{rng.randint(0, 10)}")
    folder = tmp_path_factory.mktemp("ties")
    (folder / "tx.csv").write_text("\n".join(tx) + "\n")
    expected = {}  # the highest score at each customer's latest time, by hand
    for line in answers:
        cid, ts_text, _, score = line.split(",")
        best = expected.get(cid, ("", -1))
        expected[cid] = max(best, (ts_text, int(score)))
    outputs = []
    for copy in range(2):
        rng.shuffle(answers)
        path = folder / f"answers{copy}.csv"
        path.write_text("customer_id,timestamp,question,score\n" + "\n".join(answers) + "\n")
        loaded = load_answers(path)
        for engine in ("duckdb", "spark"):
            ds = open_dataset(folder / "tx.csv", engine=engine)  # type: ignore[arg-type]
            health = customer_health(ds, answers=loaded)
            kinds = loyalty_kinds(ds, surveys.Answers(loaded, engine))  # type: ignore[arg-type]
            assert {r["customer_id"]: r["nps_answer"] for r in health.rows} == {
                r["customer_id"]: r["recommend"] for r in kinds.rows
            }
            outputs.append((health.rows, kinds.rows))
    assert {r["customer_id"]: r["nps_answer"] for r in outputs[0][0]} == {
        cid: score for cid, (_, score) in expected.items()
    }
    assert all(out == outputs[0] for out in outputs)
