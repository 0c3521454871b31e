"""`program simulate --member` refuses rule_points of a period that is not on the
calendar (month 13, 31 April, week 53 of a 52-week year): the engine never counts in
such a period, so the points would be silently ignored."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from fidelite.cli.main import _register, app

_register()
runner = CliRunner()

PURCHASE = {
    "id": "e1",
    "type": "purchase",
    "member": "m1",
    "at": "2026-11-28T10:00:00+01:00",
    "amount": "120.00",
    "channel": "web",
}


def _simulate(tmp_path: Path, rule_points: dict[str, int]) -> tuple[int, dict[str, Any]]:
    program = tmp_path / "program.yaml"
    assert runner.invoke(app, ["program", "init", str(program)]).exit_code == 0
    (tmp_path / "event.json").write_text(json.dumps(PURCHASE), encoding="utf-8")
    member = tmp_path / "member.json"
    member.write_text(json.dumps({"rule_points": rule_points}), encoding="utf-8")
    args = ["program", "simulate", str(program), str(tmp_path / "event.json")]
    result = runner.invoke(app, [*args, "--member", str(member), "--format", "json"])
    return result.exit_code, json.loads(result.stdout)


def test_periods_not_on_the_calendar_are_refused(tmp_path: Path) -> None:
    code, out = _simulate(
        tmp_path,
        {
            "big_basket@2026-13": 50,
            "review@2026-00": 10,
            "gold_early_bird@2026-04-31": 5,
            "social_share@2027-W53": 5,
            "birthday@0000": 5,
        },
    )
    assert code == 1
    assert out["error"] == {
        "code": "invalid_member",
        "message": "; ".join(
            [
                f"{tmp_path / 'member.json'}: rule_points: 'big_basket@2026-13': '2026-13'"
                " is no month of the calendar",
                "rule_points: 'birthday@0000': '0000' is no year of the calendar",
                "rule_points: 'gold_early_bird@2026-04-31': '2026-04-31' is no day of the calendar",
                "rule_points: 'review@2026-00': '2026-00' is no month of the calendar",
                "rule_points: 'social_share@2027-W53': '2027-W53' is no week of the calendar",
            ]
        ),
    }


def test_periods_on_the_calendar_are_taken(tmp_path: Path) -> None:
    # 2026 has 53 ISO weeks; big_basket, capped at 100 a month, has 70 given in November.
    code, out = _simulate(
        tmp_path,
        {
            "big_basket@2026-11": 70,
            "social_share@2026-W53": 5,
            "gold_early_bird@2028-02-29": 5,
            "birthday@9999": 5,
        },
    )
    assert code == 0, out
    big = next(t for t in out["trace"] if t["rule"] == "big_basket")
    assert (big["outcome"], big["points"]) == ("cap_per_member", 30)
