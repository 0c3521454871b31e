"""``member.days_since_joined`` counts local calendar days in the program's time zone,
from the join day to the event's day, as every other day count of a program: not
elapsed 24-hour periods. Negative before the join day; -1000000 when the join date is
unknown, which no real count gives."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from fidelite.engine import Evaluator, Event, MemberState
from fidelite.engine.context import MEMBER_FIELDS, ContextFactory
from fidelite.program import load_program

EXAMPLE = Path(__file__).parents[2] / "src" / "fidelite" / "program" / "example.yaml"
PARIS = ZoneInfo("Europe/Paris")


def days(joined: str | None, at: str, zone: ZoneInfo = PARIS) -> int:
    factory = ContextFactory({"event": frozenset(), "member": frozenset(MEMBER_FIELDS)}, zone)
    event = Event.model_validate(
        {"id": "e", "type": "purchase", "member": "m", "at": at, "amount": "10"}
    )
    member = MemberState("m", joined_at=None if joined is None else datetime.fromisoformat(joined))
    value: int = factory.values(event, member)["member"]["days_since_joined"]
    return value


@pytest.mark.parametrize(
    ("joined", "at", "expected"),
    [
        # 1 March to 1 April is 31 days, although summer time made it 30 x 24 h + 23.5 h
        ("2026-03-01T10:00:00+01:00", "2026-04-01T09:30:00+02:00", 31),
        # joined at 23:00, bought at 01:00: the next day, 2 hours later
        ("2026-03-01T23:00:00+01:00", "2026-03-02T01:00:00+01:00", 1),
        # the join day itself, before or after joining
        ("2026-03-01T10:00:00+01:00", "2026-03-01T23:59:00+01:00", 0),
        ("2026-03-01T10:00:00+01:00", "2026-03-01T00:30:00+01:00", 0),
        # the evening before joining: -1, which no longer means unknown
        ("2026-03-01T10:00:00+01:00", "2026-02-28T22:00:00+01:00", -1),
        ("2026-03-01T10:00:00+01:00", "2026-02-19T12:00:00+01:00", -10),
        # the days are the program's: 23:30 UTC is already the next day in Paris
        ("2026-03-01T09:00:00+00:00", "2026-03-01T23:30:00+00:00", 1),
    ],
)
def test_days_since_joined_counts_local_calendar_days(joined: str, at: str, expected: int) -> None:
    assert days(joined, at) == expected


def test_the_days_are_those_of_the_programs_time_zone() -> None:
    joined, at = "2026-03-01T09:00:00+00:00", "2026-03-01T23:30:00+00:00"
    assert days(joined, at, ZoneInfo("UTC")) == 0
    assert days(joined, at, ZoneInfo("America/New_York")) == 0
    assert days(joined, at, ZoneInfo("Asia/Tokyo")) == 1


def test_an_unknown_join_date_is_told_apart_from_every_real_count() -> None:
    assert days(None, "2026-03-01T10:00:00+01:00") == -1_000_000
    # the earliest join date accepted is 1970: no real count comes near it
    assert days("2099-12-31T23:00:00+00:00", "1970-01-01T00:00:00+00:00") > -1_000_000


def first_purchase(joined: str | None, at: str) -> tuple[str, int]:
    engine = Evaluator(load_program(EXAMPLE))
    event = Event.model_validate(
        {"id": "p", "type": "purchase", "member": "m", "at": at, "amount": "10.00"}
    )
    member = MemberState("m", joined_at=None if joined is None else datetime.fromisoformat(joined))
    (found,) = [t for t in engine.evaluate(event, member).trace if t.rule == "first_purchase"]
    return found.outcome.value, found.points


def test_the_example_first_purchase_bonus_is_within_30_local_days_of_joining() -> None:
    joined = "2026-03-01T10:00:00+01:00"
    # 31 local days later (30 x 24 hours and 23.5 more): no longer within 30 days
    assert first_purchase(joined, "2026-04-01T09:30:00+02:00") == ("condition_false", 0)
    assert first_purchase(joined, "2026-03-31T23:30:00+02:00") == ("matched", 100)
    assert first_purchase(joined, "2026-03-01T09:00:00+01:00") == ("matched", 100)
    # before the join day, or the join date unknown: no bonus
    assert first_purchase(joined, "2026-02-28T23:30:00+01:00") == ("condition_false", 0)
    assert first_purchase(None, "2026-03-10T12:00:00+01:00") == ("condition_false", 0)


def test_program_checks_know_the_unknown_join_value() -> None:
    """`program check` probes days_since_joined down to the engine's unknown value."""
    from fidelite.engine import context
    from fidelite.program import probe

    assert probe.UNKNOWN_DAYS == context.UNKNOWN_DAYS
