"""Kinds of loyal customers on a hand-written file: every kind, its reason, the edges."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fidelite.analytics.answers import load_answers
from fidelite.analytics.engine import open_dataset
from fidelite.analytics.metrics.loyalty import KINDS, Thresholds, loyalty_kinds
from fidelite.analytics.metrics.surveys import Answers
from fidelite.cli.main import _register, app

# The observation end is the last day in the file: 2024-06-30 (e's last order).
TX = """
customer_id,timestamp,amount,order_id,coupon_code
a,2024-04-01,10,a1,
a,2024-05-01,10,a2,
a,2024-06-20,10,a3,
b,2024-04-01,10,b1,SAVE5
b,2024-05-01,10,b2,
b,2024-06-01,10,b3,SAVE5
b,2024-06-02,10,b4,
c,2024-04-01,10,c1,SAVE5
c,2024-05-01,10,c2,
c,2024-06-01,10,c3,
d,2024-04-01,10,d1,
d,2024-05-01,10,d2,
d,2024-06-01,10,d3,
e,2024-04-01,10,e1,
e,2024-05-01,10,e2,
e,2024-06-30,10,e3,
f,2024-06-01,25,f1,
g,2023-11-01,10,g1,
g,2023-12-01,10,g2,
g,2024-01-01,10,g3,
g,2024-01-15,10,g4,
g,2024-02-01,10,g5,
h,2024-05-01,10,h1,
h,2024-05-02,10,h2,
h,2024-05-03,-10,h2r,
i,2024-06-01,10,i1,
i,2024-06-02,10,i2,
i,2024-06-03,10,i3,
"""
# d said 9 in January but 4 in June (the latest counts); i gave 3 and 9 at the same
# moment (the highest counts); f is satisfied but bought once; c is driven by rewards.
ANSWERS = """
customer_id,timestamp,question,score
a,2024-06-01 10:00,nps,10
b,2024-06-01 10:00,recommend,8
c,2024-06-01 10:00,nps,6
c,2024-06-01 10:00,program,8
d,2024-01-01 10:00,nps,9
d,2024-06-01 10:00,nps,4
f,2024-06-02 10:00,csat,5
g,2024-02-01 10:00,nps,2
i,2024-06-03 10:00,nps,3
i,2024-06-03 10:00,nps,9
"""
EXPECTED = {
    "a": ("truly loyal", "3 orders, last 10 days ago; would recommend us (10/10)"),
    "b": ("low-price-loyal", "4 orders, last 28 days ago; 50% of orders with a coupon"),
    "c": ("program-loyal", "3 orders, last 29 days ago; the rewards decide where they shop (8/10)"),
    "d": ("convenience-loyal", "3 orders, last 29 days ago; would not recommend us (4/10)"),
    "e": ("repeat, attitude unknown", "3 orders, last 0 days ago; no recommend answer"),
    "f": ("satisfied", "1 order(s), fewer than 3; satisfied (5/5)"),
    "g": ("not loyal", "last order 150 days ago, more than 90"),
    "h": ("not loyal", "2 order(s), fewer than 3"),
    "i": ("truly loyal", "3 orders, last 27 days ago; would recommend us (9/10)"),
}


@pytest.fixture
def files(write_csv: Callable[..., Path]) -> tuple[Path, Path]:
    return write_csv(TX, "tx.csv"), write_csv(ANSWERS, "answers.csv")


def test_every_kind_with_its_reason(files: tuple[Path, Path]) -> None:
    tx, answers = files
    result = loyalty_kinds(open_dataset(tx), Answers(load_answers(answers)))
    got = {r["customer_id"]: (r["kind"], r["reason"]) for r in result.rows}
    assert got == EXPECTED
    rows = {r["customer_id"]: r for r in result.rows}
    assert (rows["b"]["coupon_share"], rows["c"]["coupon_share"]) == (50.0, 33.3333)
    assert (rows["c"]["recommend"], rows["c"]["program"], rows["c"]["csat"]) == (6.0, 8.0, None)
    assert (rows["h"]["orders"], rows["g"]["days_since_last"]) == (2, 150)
    counts = {k["kind"]: k["customers"] for k in result.summary["kinds"]}
    assert counts == {
        "truly loyal": 2, "low-price-loyal": 1, "program-loyal": 1, "convenience-loyal": 1,
        "repeat, attitude unknown": 1, "satisfied": 1, "not loyal": 2,
    }  # fmt: skip
    assert [k["kind"] for k in result.summary["kinds"]] == list(KINDS)
    assert result.parameters["observation_end"] == "2024-06-30"


@pytest.mark.parametrize(
    ("score", "reason"),
    [
        (8, "a passive, not a promoter (8/10)"),
        (7, "a passive, not a promoter (7/10)"),
        (6, "would not recommend us (6/10)"),
        (0, "would not recommend us (0/10)"),
    ],
)
def test_convenience_loyal_reason_names_passives_and_detractors(
    write_csv: Callable[..., Path], score: int, reason: str
) -> None:
    """7-8 are passives: the reason does not say they would not recommend us."""
    tx = write_csv(TX, "tx.csv")
    answers = write_csv(f"customer_id,timestamp,question,score\nd,2024-06-01,nps,{score}\n",
                        "answers.csv")  # fmt: skip
    result = loyalty_kinds(open_dataset(tx), Answers(load_answers(answers)))
    rows = {r["customer_id"]: r for r in result.rows}
    assert (rows["d"]["kind"], rows["d"]["reason"]) == (
        "convenience-loyal", f"3 orders, last 29 days ago; {reason}")  # fmt: skip


def test_without_answers_only_behaviour_decides(files: tuple[Path, Path]) -> None:
    tx, _ = files
    kinds = {r["customer_id"]: r["kind"] for r in loyalty_kinds(open_dataset(tx)).rows}
    assert kinds == {
        "a": "repeat, attitude unknown", "b": "low-price-loyal", "c": "repeat, attitude unknown",
        "d": "repeat, attitude unknown", "e": "repeat, attitude unknown", "f": "not loyal",
        "g": "not loyal", "h": "not loyal", "i": "repeat, attitude unknown",
    }  # fmt: skip


def test_thresholds_move_the_lines(files: tuple[Path, Path]) -> None:
    tx, answers = files
    rules = Thresholds(min_orders=2, active_days=200, price_share=30.0)
    rows = loyalty_kinds(open_dataset(tx), Answers(load_answers(answers)), rules).rows
    kinds = {r["customer_id"]: r["kind"] for r in rows}
    # c's one coupon in three orders now counts as price-driven; g is recent enough; h's
    # two orders are enough for a repeat buyer.
    assert (kinds["c"], kinds["g"], kinds["h"]) == (
        "low-price-loyal",
        "convenience-loyal",
        "repeat, attitude unknown",
    )


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        (Thresholds(min_orders=1), "--min-orders must be at least 2"),
        (Thresholds(active_days=-1), "--active-days must not be negative"),
        (Thresholds(price_share=0), "--price-share must be above 0"),
    ],
)
def test_bad_thresholds_are_refused(
    files: tuple[Path, Path], rules: Thresholds, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        loyalty_kinds(open_dataset(files[0]), None, rules)


def test_cli_json_and_bad_answer(files: tuple[Path, Path], tmp_path: Path) -> None:
    _register()
    tx, answers = files
    args = [
        "metrics",
        "loyalty-kinds",
        "-i",
        str(tx),
        "--surveys",
        str(answers),
        "--format",
        "json",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["metric"] == "loyalty-kinds"
    assert {r["customer_id"]: (r["kind"], r["reason"]) for r in data["rows"]} == EXPECTED
    assert "first matching kind" in data["definition"].lower()
    bad = tmp_path / "bad.csv"
    bad.write_text("customer_id,timestamp,question,score\na,2024-06-01,program,11\n")
    args[args.index(str(answers))] = str(bad)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    error = json.loads(result.stdout)["error"]
    assert (error["row"], error["column"]) == (2, "score")
    assert "program score must be between 0 and 10" in error["message"]
