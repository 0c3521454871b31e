"""`fidelite program init|check|simulate` end to end through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from fidelite.cli.main import _register, app

_register()
runner = CliRunner()


def test_init_then_check_accepts_the_example(tmp_path: Path) -> None:
    file = tmp_path / "program.yaml"
    assert runner.invoke(app, ["program", "init", str(file)]).exit_code == 0
    result = runner.invoke(app, ["program", "check", str(file), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "valid": True,
        "program": "cafe_club",
        "currencies": 2,
        "rules": 14,
        "tiers": 3,
        "rewards": 6,
        "coupon_campaigns": 1,
    }


def test_init_refuses_to_overwrite(tmp_path: Path) -> None:
    file = tmp_path / "program.yaml"
    file.write_text("mine", encoding="utf-8")
    result = runner.invoke(app, ["program", "init", str(file)])
    assert result.exit_code == 1
    assert file.read_text(encoding="utf-8") == "mine"


def test_check_lists_problems_with_lines(tmp_path: Path) -> None:
    file = tmp_path / "bad.yaml"
    file.write_text(
        "id: shop\nname: Shop\ncurrencies:\n  - {id: points, name: P, value: 1}\n"
        "rules:\n  - {id: r, on: [purchase], fixed: 1, when: 'event.amount >'}\n",
        encoding="utf-8",
    )
    result = runner.invoke(app, ["program", "check", str(file), "--format", "json"])
    assert result.exit_code == 1
    (problem,) = json.loads(result.stdout)["error"]["problems"]
    assert (problem["line"], problem["field"]) == (6, "rules[0].when")


def test_simulate_prints_decision_without_writing(tmp_path: Path) -> None:
    program = tmp_path / "program.yaml"
    runner.invoke(app, ["program", "init", str(program)])
    event = tmp_path / "event.json"
    event.write_text(
        json.dumps(
            {
                "id": "e1",
                "type": "purchase",
                "member": "m1",
                "at": "2026-11-28T10:00:00+01:00",
                "amount": "42.90",
            }
        ),
        encoding="utf-8",
    )
    member = tmp_path / "member.json"
    member.write_text(json.dumps({"tier": "gold"}), encoding="utf-8")
    args = ["program", "simulate", str(program), str(event), "--member", str(member)]
    result = runner.invoke(app, [*args, "--format", "json"])
    assert result.exit_code == 0, result.output
    decision = json.loads(result.stdout)
    # Saturday: floor(42.90) = 42, no happy hour; gold x1.5 adds floor(0.5 x 42) = 21.
    assert decision["earnings"][0]["points"] == 63
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "event.json",
        "member.json",
        "program.yaml",
    ]


def test_simulate_reports_bad_event_field(tmp_path: Path) -> None:
    program = tmp_path / "program.yaml"
    runner.invoke(app, ["program", "init", str(program)])
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"id": "e1", "type": "purchase", "member": "m1"}), "utf-8")
    result = runner.invoke(app, ["program", "simulate", str(program), str(event), "-f", "json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout)["error"]["code"] == "invalid_event"
    assert "at: Field required" in json.loads(result.stdout)["error"]["message"]
