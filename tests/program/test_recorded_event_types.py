"""``events``: the event types a program records without a rule. Listing one that is
always handled, that a rule earns on, or twice does nothing: an error at its line."""

from __future__ import annotations

import pytest

from fidelite.program import ProgramError, parse_program

PROGRAM = """\
id: shop
name: Shop
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase, review], fixed: 1}
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ProgramError) as info:
        parse_program(text)
    return [str(p) for p in info.value.problems]


def test_declared_types_are_handled() -> None:
    program = parse_program(PROGRAM + "events: [page_view, store_visit]\n")
    assert program.events == ["page_view", "store_visit"]
    standard = {"purchase", "refund", "signup", "birthday", "profile_completed", "review", "social"}
    assert program.event_types == standard | {"page_view", "store_visit"}
    assert parse_program(PROGRAM).event_types == standard


def test_a_type_that_does_nothing_there_is_an_error() -> None:
    text = PROGRAM + "events: [page_view, review, purchase, refund, page_view, Visit]\n"
    assert problems(text) == [
        "<program>:7:21: events[1]: a rule earns on 'review' already; remove it from 'events'",
        "<program>:7:29: events[2]: 'purchase' is always handled; remove it from 'events'",
        "<program>:7:39: events[3]: 'refund' is always handled; remove it from 'events'",
        "<program>:7:47: events[4]: duplicate event type 'page_view'",
        "<program>:7:58: events[5]: String should match pattern '^[a-z][a-z0-9_]*$'",
    ]
