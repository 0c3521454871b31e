"""A reward's cost above what the ledger can spend at once (10^15 points) is an error at
its line when the program loads: no redemption could ever pay it, and redeeming it was
refused with ``invalid_request points: must be at most ...``, naming a field the caller
never sent. A cost of exactly 10^15 loads, and a redemption of it is refused as short of
points."""

from __future__ import annotations

from pathlib import Path

import pytest

from fidelite.ledger.validation import MAX_POINTS
from fidelite.program import ProgramError, parse_program
from tests.cli.support import as_json, fidelite

PROGRAM = """\
id: shop
name: Shop
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
rewards:
  - {id: mug, name: Mug, kind: free_product, sku: MUG, cost: 100}
"""
BIG = (
    "  - {id: big, name: Big, kind: voucher, cost: 99999999999999999999}\n"
    "  - {id: big2, name: Big2, kind: voucher, cost: 9223372036854775807}\n"
    "  - {id: over, name: Over, kind: voucher, cost: 1000000000000001}\n"
)
LARGEST = "  - {id: top, name: Top, kind: voucher, cost: 1000000000000000}\n"


def too_big(line: int, column: int, index: int, cost: str) -> str:
    return (f"p.yaml:{line}:{column}: rewards[{index}].cost: {cost} is more than the largest "
            "cost (1000000000000000 points): the ledger could never spend it, so no "
            "redemption could pay it")  # fmt: skip


def test_the_largest_cost_is_the_ledgers_largest_spend() -> None:
    from fidelite.program.reward import MAX_COST

    assert MAX_COST == MAX_POINTS == 10**15


def test_a_cost_no_redemption_can_pay_is_an_error_at_its_line() -> None:
    with pytest.raises(ProgramError) as info:
        parse_program(PROGRAM + BIG, name="p.yaml")
    assert [str(p) for p in info.value.problems] == [
        too_big(9, 47, 1, "99999999999999999999"),
        too_big(10, 49, 2, "9223372036854775807"),
        too_big(11, 49, 3, "1000000000000001"),
    ]


def test_a_cost_of_the_largest_spend_loads() -> None:
    program = parse_program(PROGRAM + LARGEST, name="p.yaml")
    top = program.reward("top")
    assert top is not None and top.cost == 10**15


def test_check_and_redeem_refuse_the_file_and_change_nothing(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'shop.db'}"
    good = tmp_path / "good.yaml"
    good.write_text(PROGRAM + LARGEST, encoding="utf-8")
    bad = tmp_path / "p.yaml"
    bad.write_text(PROGRAM + BIG, encoding="utf-8")
    fidelite("db", "upgrade", db=db)
    fidelite("member", "add", "ann", "-p", good, db=db)
    checked = fidelite("program", "check", bad, "-f", "json", ok=False)
    assert checked.returncode == 1
    problems = as_json(checked)["error"]["problems"]
    assert [(p["line"], p["column"], p["field"]) for p in problems] == [
        (9, 47, "rewards[1].cost"), (10, 49, "rewards[2].cost"), (11, 49, "rewards[3].cost"),
    ]  # fmt: skip
    before = fidelite("ledger", "history", "ann", "-p", good, "-f", "json", db=db).stdout
    refused = fidelite("rewards", "redeem", "ann", "big", "-k", "k1", "-p", bad, "-f", "json",
                       db=db, ok=False)  # fmt: skip
    assert refused.returncode == 1
    error = as_json(refused)["error"]
    assert error["code"] == "invalid_program"
    assert error["message"].splitlines()[0] == (
        f"{bad}:9:47: rewards[1].cost: 99999999999999999999 is more than the largest cost "
        "(1000000000000000 points): the ledger could never spend it, so no redemption "
        "could pay it"
    )
    assert fidelite("ledger", "history", "ann", "-p", good, "-f", "json", db=db).stdout == before
    # the largest cost is a real reward: short of points, said in the reward's words
    short = fidelite("rewards", "redeem", "ann", "top", "-k", "k2", "-p", good, "-f", "json",
                     db=db, ok=False)  # fmt: skip
    assert (short.returncode, as_json(short)["error"]["code"]) == (1, "insufficient_points")
    assert as_json(short)["error"]["detail"] == {"available": 0, "requested": 10**15}
    assert fidelite("ledger", "history", "ann", "-p", good, "-f", "json", db=db).stdout == before
