"""A reward field its kind makes do nothing (``sku`` but on a free product, ``partner``
but on a partner reward) and a tier listed twice in a reward's ``tiers`` are errors at
their line, like the program's other settings that do nothing (docs/program.md)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from fidelite.cli.main import _register, app
from fidelite.program import ProgramError, parse_program
from fidelite.program.reward import Reward

_register()
runner = CliRunner()

HEAD = """\
id: shop
name: Shop
currencies:
  - {id: points, name: Points, value: 0.01}
tiers:
  levels:
    - {id: bronze, name: Bronze, threshold: 0}
    - {id: silver, name: Silver, threshold: 300}
rewards:
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ProgramError) as info:
        parse_program(text, name="p.yaml")
    return [str(p) for p in info.value.problems]


def test_check_rejects_sku_and_partner_on_an_experience() -> None:
    text = HEAD + "  - {id: b, name: B, kind: experience, cost: 100, sku: X1, partner: p}\n"
    assert problems(text) == [
        "p.yaml:10:56: rewards[0].sku: 'sku' does nothing with kind: experience (only a"
        " free_product reward uses it); remove it",
        "p.yaml:10:69: rewards[0].partner: 'partner' does nothing with kind: experience"
        " (only a partner reward uses it); remove it",
    ]


@pytest.mark.parametrize(
    ("kind", "field"),
    [
        ("voucher", "sku: X1"),
        ("partner", "sku: X1"),
        ("discount_amount", "partner: p"),
        ("free_product", "partner: p"),
    ],
)
def test_each_kind_uses_only_its_own_of_sku_and_partner(kind: str, field: str) -> None:
    needs = {"partner": "partner: p, ", "free_product": "sku: X1, ",
             "discount_amount": "value: 5, "}.get(kind, "")  # fmt: skip
    text = HEAD + f"  - {{id: b, name: B, kind: {kind}, cost: 100, {needs}{field}}}\n"
    name = field.split(":")[0]
    (found,) = problems(text)
    assert f"rewards[0].{name}: '{name}' does nothing with kind: {kind}" in found


def test_check_rejects_a_tier_listed_twice() -> None:
    text = HEAD + "  - {id: d, name: D, kind: voucher, cost: 100, tiers: [bronze, bronze]}\n"
    assert problems(text) == [
        "p.yaml:10:64: rewards[0].tiers[1]: tier 'bronze' is listed twice; remove one"
    ]


def test_a_reward_with_its_own_fields_loads() -> None:
    text = HEAD + (
        "  - {id: a, name: A, kind: free_product, cost: 100, sku: X1}\n"
        "  - {id: b, name: B, kind: partner, cost: 100, partner: p, tiers: [silver]}\n"
        "  - {id: c, name: C, kind: experience, cost: 100, tiers: [bronze, silver]}\n"
    )
    program = parse_program(text, name="p.yaml")
    assert [(r.id, r.sku, r.partner, r.tiers) for r in program.rewards] == [
        ("a", "X1", None, []), ("b", None, "p", ["silver"]), ("c", None, None, ["bronze", "silver"])
    ]  # fmt: skip


def test_the_model_refuses_them_too() -> None:
    with pytest.raises(ValueError, match="'sku' does nothing with kind: experience"):
        Reward.model_validate({"id": "b", "name": "B", "kind": "experience", "cost": 1,
                               "sku": "X1"})  # fmt: skip
    with pytest.raises(ValueError, match="tier 'gold' is listed twice"):
        Reward.model_validate({"id": "b", "name": "B", "kind": "voucher", "cost": 1,
                               "tiers": ["gold", "gold"]})  # fmt: skip


def test_program_check_names_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(HEAD + "  - {id: b, name: B, kind: experience, cost: 100, sku: X1}\n")
    result = runner.invoke(app, ["program", "check", str(path)])
    assert result.exit_code == 1
    assert f"{path}:10:56: rewards[0].sku: 'sku' does nothing with kind: experience" in (
        result.output
    )
