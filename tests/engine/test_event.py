"""Event validation: money and quantities bounded to what the program stores and sums."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from fidelite.engine import Event
from fidelite.engine.event import MAX_AMOUNT, MAX_QUANTITY


def purchase(**fields: Any) -> Event:
    at = "2026-11-02T10:00:00+01:00"
    return Event.model_validate(
        {"id": "e1", "type": "purchase", "member": "ann", "at": at, "amount": "1", **fields}
    )


def test_event_accepts_amounts_and_lines_up_to_the_bound() -> None:
    event = purchase(amount="10000000000.0000",
                     items=[{"sku": "A", "quantity": 4, "price": "2500000000"},
                            {"sku": "B", "quantity": 10**15, "price": "0.00001"}])  # fmt: skip
    assert event.amount == Decimal("10000000000") == MAX_AMOUNT
    assert MAX_QUANTITY == 10**15
    assert [item.total for item in event.items] == [MAX_AMOUNT, MAX_AMOUNT]


@pytest.mark.parametrize(
    ("fields", "where", "message"),
    [
        ({"amount": "10000000000.0001"}, ("amount",),
         "Input should be less than or equal to 10000000000"),
        ({"amount": "1e30"}, ("amount",), "Input should be less than or equal to 10000000000"),
        ({"items": [{"sku": "A", "price": "1e11"}]}, ("items", 0, "price"),
         "Input should be less than or equal to 10000000000"),
        ({"items": [{"sku": "A", "quantity": 10**15 + 1, "price": "0"}]},
         ("items", 0, "quantity"), "Input should be less than or equal to 1000000000000000"),
        ({"items": [{"sku": "A", "quantity": 3, "price": "4000000000"}]}, ("items", 0),
         "Value error, line total (price x quantity) 12000000000 is above 10000000000"),
    ],
)  # fmt: skip
def test_event_refuses_money_beyond_the_bound_naming_the_field(
    fields: dict[str, Any], where: tuple[Any, ...], message: str
) -> None:
    with pytest.raises(ValidationError) as error:
        purchase(**fields)
    [problem] = error.value.errors()
    assert (problem["loc"], problem["msg"]) == (where, message)


@pytest.mark.parametrize("at", ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00"])
def test_event_refuses_a_time_outside_the_calendar_once_in_utc(at: str) -> None:
    with pytest.raises(ValidationError) as error:
        purchase(at=at)
    [problem] = error.value.errors()
    assert (problem["loc"], problem["msg"]) == (
        ("at",),
        f"Value error, {at} is outside the calendar once in UTC",
    )


def test_event_accepts_the_earliest_time_and_the_calendars_last_second() -> None:
    for at in (
        "1970-01-01T00:00:00+00:00",
        "1970-01-01T01:00:00+01:00",  # the same instant
        "9999-12-31T23:59:59+00:00",
    ):
        assert purchase(at=at).at.isoformat() == at


@pytest.mark.parametrize(
    "at", ["0001-01-01T00:00:00+00:00", "0001-01-01T00:00:00-05:00", "1969-12-31T23:59:59+00:00"]
)
def test_event_refuses_a_time_before_1970(at: str) -> None:
    with pytest.raises(ValidationError) as error:
        purchase(at=at)
    [problem] = error.value.errors()
    assert (problem["loc"], problem["msg"]) == (
        ("at",),
        f"{at} is before 1970-01-01T00:00:00Z, the earliest time accepted",
    )
