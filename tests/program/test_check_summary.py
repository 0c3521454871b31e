"""`fidelite program check`'s one-line summary counts each section in correct English."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from fidelite.cli.main import _register, app

_register()
runner = CliRunner()

ONE_OF_EACH = """\
id: tiny
name: Tiny
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
tiers:
  levels:
    - {id: bronze, name: Bronze, threshold: 0}
rewards:
  - {id: mug, name: Mug, kind: free_product, sku: MUG, cost: 100}
coupons:
  - {id: gift, name: Gift, prefix: GIFT}
"""


def test_one_of_each_section_is_counted_in_the_singular(tmp_path: Path) -> None:
    file = tmp_path / "tiny.yaml"
    file.write_text(ONE_OF_EACH)
    result = runner.invoke(app, ["program", "check", str(file)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    # compared without white space: the console may wrap inside the long temporary path
    expected = f"OK {file}: program tiny (1 currency, 1 rule, 1 tier, 1 reward, 1 coupon campaign)"
    assert "".join(result.output.split()) == "".join(expected.split())


def test_several_are_counted_in_the_plural(tmp_path: Path) -> None:
    file = tmp_path / "example.yaml"
    assert runner.invoke(app, ["program", "init", str(file)]).exit_code == 0
    counts = json.loads(runner.invoke(app, ["program", "check", str(file), "-f", "json"]).stdout)
    assert counts["currencies"] > 1 and counts["rules"] > 1 and counts["rewards"] > 1
    result = runner.invoke(app, ["program", "check", str(file)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    shown = " ".join(result.output.split())
    assert f"({counts['currencies']} currencies, {counts['rules']} rules," in shown
    assert f"{counts['rewards']} rewards," in shown
