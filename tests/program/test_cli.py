"""`fidelite program init|check|simulate` end to end through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fidelite.cli.main import _register, app
from fidelite.engine.coupon import make_code

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
        "rules": 22,
        "tiers": 3,
        "rewards": 8,
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
    # Saturday: floor(42.90) = 42, no happy hour; gold before 11:00: gold_early_bird 20;
    # gold x1.5 adds floor(0.5 x 62) = 31.
    assert decision["earnings"][0]["points"] == 93
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


def _files(tmp_path: Path, event: dict[str, object], member: object | None = None) -> list[str]:
    """Writes the example program, the event and the member; returns simulate's args."""
    program = tmp_path / "program.yaml"
    runner.invoke(app, ["program", "init", str(program)])
    (tmp_path / "event.json").write_text(json.dumps(event), encoding="utf-8")
    args = ["program", "simulate", str(program), str(tmp_path / "event.json")]
    if member is not None:
        (tmp_path / "member.json").write_text(json.dumps(member), encoding="utf-8")
        args += ["--member", str(tmp_path / "member.json")]
    return [*args, "--format", "json"]


PURCHASE = {
    "id": "e1",
    "type": "purchase",
    "member": "m1",
    "at": "2026-11-28T10:00:00+01:00",
    "amount": "42.90",
}


def test_check_rejects_type_error_with_line_and_field(tmp_path: Path) -> None:
    file = tmp_path / "bad.yaml"
    file.write_text(
        "id: shop\nname: Shop\ncurrencies:\n  - {id: points, name: P, value: 1}\n"
        "rules:\n  - {id: r, on: [purchase], formula: 'event.amount * 3'}\n",
        encoding="utf-8",
    )
    result = runner.invoke(app, ["program", "check", str(file), "--format", "json"])
    assert result.exit_code == 1
    (problem,) = json.loads(result.stdout)["error"]["problems"]
    assert (problem["line"], problem["column"], problem["field"]) == (6, 38, "rules[0].formula")
    assert problem["message"].startswith(
        "type error: Unsupported operation: double * int (event.amount is a double)"
    )


def test_simulate_rejects_unknown_tier_naming_the_known_ones(tmp_path: Path) -> None:
    args = _files(tmp_path, PURCHASE, {"tier": "platinum"})
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "invalid_member"
    assert error["message"] == (
        f"{tmp_path / 'member.json'}: tier: unknown tier 'platinum'"
        " (tiers of this program: bronze, silver, gold)"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "event.json",
        "member.json",
        "program.yaml",
    ]


ANY_KIND = (
    " (or as a day, ISO week, month or year, or ever, for points given while the cap had"
    " another period)"
)


def test_simulate_rejects_segment_and_rule_points_the_program_would_ignore(
    tmp_path: Path,
) -> None:
    member = {
        "segments": ["VIP", "regulars"],
        "rule_points": {"big_basket@26-11": 50, "base_purchase@2026-11": 3, "review": 1},
    }
    result = runner.invoke(app, _files(tmp_path, PURCHASE, member))
    assert result.exit_code == 1
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "invalid_member"
    assert error["message"].split("; ") == [
        f"{tmp_path / 'member.json'}: segments: 'VIP' is not a segment name (lower-case letters,"
        " digits and _, starting with a letter, as rules name segments)",
        "rule_points: 'base_purchase@2026-11' names no rule with cap_per_member (those are:"
        " big_basket, birthday, flyer_code, gold_early_bird, profile_completed, review,"
        " signup_bonus, social_share)",
        "rule_points: 'big_basket@26-11': rule big_basket is capped per month,"
        " write the period as in 'big_basket@2026-11'" + ANY_KIND,
        "rule_points: 'review@': rule review is capped per month,"
        " write the period as in 'review@2026-11'" + ANY_KIND,
    ]


@pytest.mark.parametrize(
    ("points", "message"),
    [
        (-100, "Input should be greater than or equal to 0"),
        ("5", "Input should be a valid integer"),
        (5.5, "Input should be a valid integer"),
        (True, "Input should be a valid integer"),
    ],
)
def test_simulate_refuses_rule_points_that_are_not_a_whole_number_of_points(
    tmp_path: Path, points: object, message: str
) -> None:
    # -100 points used would have let big_basket give 150 with its cap at 100 a month.
    event = {**PURCHASE, "amount": "120.00", "channel": "web"}
    member = {"rule_points": {"big_basket@2026-11": points}}
    result = runner.invoke(app, _files(tmp_path, event, member))
    assert result.exit_code == 1
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "invalid_member"
    assert error["message"] == (
        f"{tmp_path / 'member.json'}: rule_points.big_basket@2026-11: {message}"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "event.json",
        "member.json",
        "program.yaml",
    ]


def test_simulate_uses_rule_points_of_the_current_period(tmp_path: Path) -> None:
    # big_basket gives 50 on web baskets of 100 EUR or more, at most 100 a month: with 70
    # already given in November 2026, 30 are left.
    event = {**PURCHASE, "amount": "120.00", "channel": "web"}
    result = runner.invoke(
        app, _files(tmp_path, event, {"rule_points": {"big_basket@2026-11": 70}})
    )
    assert result.exit_code == 0, result.output
    decision = json.loads(result.stdout)
    big = next(t for t in decision["trace"] if t["rule"] == "big_basket")
    assert (big["outcome"], big["points"]) == ("cap_per_member", 30)
    assert decision["earnings"][0]["points"] == 120 + 30
    assert decision["usage"] == [{"rule": "big_basket", "period": "2026-11", "points": 30}]


@pytest.mark.parametrize("label", ["2026-11-02", "2026-W48", "2026"])
def test_simulate_counts_points_recorded_under_another_period_kind(
    tmp_path: Path, label: str
) -> None:
    # Given while big_basket was capped per day, week or year, 70 points overlapping
    # November 2026 count against its monthly cap of 100 there, as the engine counts them.
    event = {**PURCHASE, "amount": "120.00", "channel": "web"}
    member = {"rule_points": {f"big_basket@{label}": 70}}
    result = runner.invoke(app, _files(tmp_path, event, member))
    assert result.exit_code == 0, result.output
    big = next(t for t in json.loads(result.stdout)["trace"] if t["rule"] == "big_basket")
    assert (big["outcome"], big["points"]) == ("cap_per_member", 30)


def test_simulate_refuses_refund_saying_it_reverses_its_purchase(tmp_path: Path) -> None:
    refund = {**PURCHASE, "id": "r1", "type": "refund", "refund_of": "e1", "amount": "10.00"}
    result = runner.invoke(app, _files(tmp_path, refund))
    assert result.exit_code == 1
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "refund_not_simulated"
    assert error["message"] == (
        f"{tmp_path / 'event.json'}: event r1 is a refund, which no rule evaluates: it reverses"
        " what its purchase (e1) earned, in proportion to the amount refunded"
        " (policy 'refunds:'); simulate the purchase to see what it earned"
    )


def test_simulate_refuses_a_type_the_program_does_not_handle(tmp_path: Path) -> None:
    """A typo'd type would earn nothing in the dry run and be refused by the API and the
    import: simulate refuses it the same way, naming the type and the closest one."""
    result = runner.invoke(app, _files(tmp_path, {**PURCHASE, "type": "purchse"}))
    assert result.exit_code == 1
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "unknown_event_type"
    assert error["message"].startswith(
        f"{tmp_path / 'event.json'}: unknown event type 'purchse' (did you mean 'purchase'?):"
        " this program handles purchase, refund, "
    )


@pytest.mark.parametrize(
    ("status", "coupon_line", "points"),
    [
        ("issued", {"rule": "vip_welcome_coupon", "outcome": "matched", "points": 200}, 242),
        (
            "used",
            {
                "rule": "vip_welcome_coupon",
                "outcome": "coupon",
                "points": 0,
                "note": "coupon_already_used",
            },
            42,
        ),
    ],
)
def test_simulate_assumes_the_coupon_status_given(
    tmp_path: Path, status: str, coupon_line: dict[str, object], points: int
) -> None:
    event = {**PURCHASE, "coupon": make_code("VIPWELC", "7KQ2M9XD4HRT")}
    args = _files(tmp_path, event, {"segments": ["vip"]})
    result = runner.invoke(app, [*args, "--coupon-status", status])
    assert result.exit_code == 0, result.output
    decision = json.loads(result.stdout)
    (line,) = [t for t in decision["trace"] if t["rule"] == "vip_welcome_coupon"]
    if "currency" in line:
        del line["currency"]
    assert line == coupon_line
    assert decision["earnings"][0]["points"] == points


@pytest.mark.parametrize("command", ["init", "check", "simulate"])
def test_program_commands_help_shows_examples(command: str) -> None:
    result = runner.invoke(app, ["program", command, "--help"])
    assert result.exit_code == 0
    assert f"Example: fidelite program {command}" in result.stdout


def test_simulate_help_budget_example_names_a_budgeted_rule_of_the_example(
    tmp_path: Path,
) -> None:
    """The help's --budget-used example runs on the program init writes: it named
    spring_promo, a rule the example does not have, so the example as written failed
    with invalid_budget_used."""
    program = tmp_path / "program.yaml"
    runner.invoke(app, ["program", "init", str(program)])
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"id": "e1", "type": "purchase", "member": "m1",
                                 "at": "2026-04-10T12:00:00+02:00", "amount": "10"}))  # fmt: skip
    helped = runner.invoke(app, ["program", "simulate", "--help"], env={"COLUMNS": "200"})
    (example,) = [line.strip() for line in helped.stdout.splitlines() if "--budget-used " in line
                  and line.strip().startswith("Example:")]  # fmt: skip
    used = example.split("--budget-used ", 1)[1].split()[0]
    result = runner.invoke(app, ["program", "simulate", str(program), str(event),
                                 f"--budget-used={used}", "-f", "json"])  # fmt: skip
    assert result.exit_code == 0, result.stdout


def test_simulate_gives_pending_end_and_expiry_on_the_programs_clock(tmp_path: Path) -> None:
    """An event written in New York time: its pending end used to keep the event's
    offset (-05:00) while the expiry was in the program's zone (Paris), so the two
    dates of one row read on two clocks. Both are now Paris time, same instants."""
    program = tmp_path / "program.yaml"
    runner.invoke(app, ["program", "init", str(program)])
    event = tmp_path / "event.json"
    event.write_text(
        json.dumps(
            {
                "id": "e1",
                "type": "purchase",
                "member": "m1",
                "at": "2026-03-10T23:30:00-05:00",
                "amount": "42.50",
            }
        ),
        encoding="utf-8",
    )
    result = runner.invoke(app, ["program", "simulate", str(program), str(event), "-f", "json"])
    assert result.exit_code == 0, result.output
    decision = json.loads(result.stdout)
    assert decision["at"] == "2026-03-10T23:30:00-05:00"  # the event as given
    (earning,) = decision["earnings"]
    # 14 days' return window: 2026-03-24 23:30 in New York is 03-25 05:30 in Paris
    # (before Paris's change to summer time on 03-29, +01:00)
    assert earning["pending_until"] == "2026-03-25T05:30:00+01:00"
    assert earning["expires_at"] == "2027-04-01T00:00:00+02:00"
    table = runner.invoke(app, ["program", "simulate", str(program), str(event)])
    assert table.exit_code == 0, table.output
    assert "2026-03-25T05:30:00+01:00" in table.stdout
    assert "-05:00" not in table.stdout.split("Earned")[1]


SPRING = {**PURCHASE, "at": "2027-04-10T10:00:00+02:00", "amount": "20.00"}
"""A purchase inside the example's spring campaign: 3 points per euro, budget 100000."""


@pytest.mark.parametrize(
    ("used", "outcome", "points", "note"),
    [
        ([], "matched", 60, None),  # without --budget-used the budget is taken as unused
        (["spring_campaign=99990"], "matched", 10, "60 trimmed to the 10 left in the budget"),
        (["spring_campaign=100000"], "rule_budget_exhausted", 0, None),
    ],
)
def test_simulate_takes_the_budget_used_given(
    tmp_path: Path, used: list[str], outcome: str, points: int, note: str | None
) -> None:
    args = _files(tmp_path, SPRING)
    result = runner.invoke(app, [*args, *(f"--budget-used={u}" for u in used)])
    assert result.exit_code == 0, result.output
    (line,) = [t for t in json.loads(result.stdout)["trace"] if t["rule"] == "spring_campaign"]
    assert (line["outcome"], line["points"], line.get("note")) == (outcome, points, note)


def test_simulate_refuses_budget_use_it_cannot_take(tmp_path: Path) -> None:
    args = _files(tmp_path, SPRING)
    given = ["spring=3", "spring_campaign", "spring_campaign=-1", "spring_campaign=100001",
             "spring_campaign=5", "spring_campaign=6"]  # fmt: skip
    result = runner.invoke(app, [*args, *(f"--budget-used={g}" for g in given)])
    assert result.exit_code == 1
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "invalid_budget_used"
    assert error["message"].split("; ") == [
        "--budget-used: 'spring=3': spring is no rule with a budget (those are: spring_campaign)",
        "'spring_campaign': write RULE=POINTS, e.g. spring_campaign=800",
        "'spring_campaign=-1': the points used are a whole number, 0 or more",
        "'spring_campaign=100001': more than the rule's budget (100000 points in all)",
        "'spring_campaign=6': spring_campaign is given twice",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["event.json", "program.yaml"]
