"""Dates of a program file at the calendar's ends: one whose UTC time falls outside the
calendar (year 0 or 10000) is refused at load time, at its field, and not on the
first event the engine compares with it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fidelite.cli.main import _register, app
from fidelite.engine import Evaluator, Event, MemberState
from fidelite.program import ProgramError, parse_program
from fidelite.program.reward import Reward
from fidelite.program.rule import Window

_register()
runner = CliRunner()

HEAD = """\
id: shop
name: Shop
time_zone: Europe/Paris
currencies:
  - {id: points, name: Points, value: 0.1}
"""
CALENDAR = (
    " is outside the calendar once in UTC (the calendar runs from 0001-01-01T00:00:00Z"
    " to 9999-12-31T23:59:59Z); write a date inside it, or leave the field out for no"
    " limit on that side"
)
EARLY = "0001-01-01T00:00:00+05:00"  # year 0 in UTC
LATE = "9999-12-31T23:00:00-05:00"  # year 10000 in UTC
PROGRAM = HEAD + (
    "rules:\n"
    "  - id: launch\n"
    "    on: [purchase]\n"
    "    fixed: 10\n"
    f"    window: {{start: {EARLY}, end: {LATE}}}\n"
    "rewards:\n"
    "  - id: mug\n"
    "    name: Mug\n"
    "    kind: voucher\n"
    "    cost: 10\n"
    f"    valid_from: {EARLY}\n"
    f"    valid_until: {LATE}\n"
    "coupons:\n"
    "  - id: gift\n"
    "    name: Gift\n"
    "    prefix: GIFT\n"
    f"    window: {{start: {EARLY}, end: {LATE}}}\n"
)


def problems(text: str) -> list[str]:
    with pytest.raises(ProgramError) as info:
        parse_program(text, name="p.yaml")
    return [str(p) for p in info.value.problems]


def test_check_refuses_every_date_outside_the_calendar_once_in_utc() -> None:
    # They used to load, then the first purchase raised OverflowError in the engine.
    assert problems(PROGRAM) == [
        f"p.yaml:10:21: rules[0].window.start: {EARLY}{CALENDAR}",
        f"p.yaml:10:53: rules[0].window.end: {LATE}{CALENDAR}",
        f"p.yaml:16:17: rewards[0].valid_from: {EARLY}{CALENDAR}",
        f"p.yaml:17:18: rewards[0].valid_until: {LATE}{CALENDAR}",
        f"p.yaml:22:21: coupons[0].window.start: {EARLY}{CALENDAR}",
        f"p.yaml:22:53: coupons[0].window.end: {LATE}{CALENDAR}",
    ]


def test_check_refuses_a_date_a_minute_past_the_end() -> None:
    text = HEAD + (
        "rules:\n  - {id: a, on: [purchase], fixed: 1,"
        " window: {end: '9999-12-31T23:59:00-00:01'}}\n"
    )
    assert problems(text) == [
        f"p.yaml:7:53: rules[0].window.end: 9999-12-31T23:59:00-00:01{CALENDAR}"
    ]


def test_dates_at_the_calendar_ends_inside_it_in_utc_load_and_evaluate() -> None:
    # The ends themselves, even where the program's zone (Paris) would be in year 10000.
    program = parse_program(
        HEAD + "rules:\n"
        "  - id: always\n"
        "    on: [purchase]\n"
        "    fixed: 10\n"
        "    window: {start: 0001-01-01T00:00:00+00:00, end: 9999-12-31T23:59:59+00:00}\n"
        "  - id: never\n"
        "    on: [purchase]\n"
        "    fixed: 5\n"
        "    window: {start: 9999-12-31T23:59:59Z}\n"
        "rewards:\n"
        "  - {id: mug, name: Mug, kind: voucher, cost: 10,"
        " valid_from: '0001-01-01T00:00:00-05:00', valid_until: '9999-12-31T23:59:59Z'}\n"
    )
    event = Event(
        id="e1",
        type="purchase",
        member="m1",
        at=datetime(9999, 12, 31, 23, 0, tzinfo=UTC),
        amount=Decimal("10.00"),
    )
    decision = Evaluator(program).evaluate(event, MemberState(ref="m1"))
    assert [(t.rule, t.outcome.value, t.points) for t in decision.trace] == [
        ("always", "matched", 10),
        ("never", "outside_window", 0),
    ]
    reward = program.rewards[0]
    assert reward.valid_from == datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=-5)))


def test_models_built_in_code_refuse_dates_outside_the_calendar() -> None:
    east = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5)))
    with pytest.raises(ValueError, match="0001-01-01T00:00:00\\+05:00 is outside the calendar"):
        Window(start=east)
    west = datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-5)))
    with pytest.raises(ValueError, match="9999-12-31T23:00:00-05:00 is outside the calendar"):
        Reward(id="mug", name="Mug", kind="voucher", cost=10, valid_until=west)


def test_check_and_simulate_name_the_field_and_write_nothing(tmp_path: Path) -> None:
    program = tmp_path / "program.yaml"
    program.write_text(PROGRAM, encoding="utf-8")
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
    check = runner.invoke(app, ["program", "check", str(program), "--format", "json"])
    assert check.exit_code == 1
    found = json.loads(check.stdout)["error"]["problems"]
    assert [(p["line"], p["column"], p["field"]) for p in found] == [
        (10, 21, "rules[0].window.start"),
        (10, 53, "rules[0].window.end"),
        (16, 17, "rewards[0].valid_from"),
        (17, 18, "rewards[0].valid_until"),
        (22, 21, "coupons[0].window.start"),
        (22, 53, "coupons[0].window.end"),
    ]
    assert found[0]["message"] == f"{EARLY}{CALENDAR}"
    args = ["program", "simulate", str(program), str(event), "--format", "json"]
    simulate = runner.invoke(app, args)
    assert simulate.exit_code == 1, simulate.output  # not an OverflowError traceback
    error = json.loads(simulate.stdout)["error"]
    assert error["code"] == "invalid_program"
    assert error["problems"][0]["message"] == f"{EARLY}{CALENDAR}"
    assert program.read_text(encoding="utf-8") == PROGRAM
    assert sorted(p.name for p in tmp_path.iterdir()) == ["event.json", "program.yaml"]
