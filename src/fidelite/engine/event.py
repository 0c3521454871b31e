"""Events the engine evaluates: purchases, refunds and any named member action.

An event is immutable input. Money is ``Decimal``; ``at`` is timezone-aware (the
engine derives local hour, weekday and date in the program's zone from it).
``id`` is the client's event id: the store uses it to make processing idempotent.

Bounds: an amount, an item's unit price and a line total (price x quantity) are at
most :data:`MAX_AMOUNT` (10^10 money units), a quantity at most :data:`MAX_QUANTITY`.
The events table keeps money as ``NUMERIC(18, 4)`` (below 10^14), and a member's tier
window sums their purchases (in ten-thousandths, as a 64-bit integer on SQLite, below
9.2 x 10^18, and as ``NUMERIC(18, 4)`` on the timeline): 10^10 per event leaves room for
10,000 purchases at the bound in one window, and keeps every product the engine forms
(amount x rate, with 4 decimal places) far inside ``Decimal``'s 28 digits. 10^10 is
still above any real purchase, even in currencies of small units (a car in Indonesian
rupiah). An amount beyond the bound is refused here, at validation, naming its field,
rather than failing a whole import chunk or corrupting a member's tier window.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from fidelite.engine.calendar import in_utc

PURCHASE = "purchase"
REFUND = "refund"

AttributeValue = str | int | float | bool

MAX_AMOUNT = Decimal(10**10)
"""Largest amount, unit price or line total an event may carry (see the module doc)."""
MAX_QUANTITY = 10**15
"""Largest quantity of a basket line: the most points the ledger takes in one entry,
and far inside the 64-bit integers rule expressions compute with."""


def _in_calendar(at: datetime) -> datetime:
    in_utc(at)  # ValueError naming it if its UTC time is before year 1 or after 9999
    return at


Instant = Annotated[AwareDatetime, AfterValidator(_in_calendar)]
"""A time with its UTC offset whose UTC time is in the calendar, as the store keeps it
(0001-01-01T00:00:00+05:00 is refused: in UTC it falls in year 0)."""


class Item(BaseModel):
    """One basket line: ``price`` is the unit price, so the line total is price x quantity."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sku: str = Field(min_length=1)
    category: str = ""
    quantity: int = Field(default=1, gt=0, le=MAX_QUANTITY)
    price: Decimal = Field(ge=0, le=MAX_AMOUNT)

    @model_validator(mode="after")
    def _bounded(self) -> Item:
        if self.total > MAX_AMOUNT:
            raise ValueError(f"line total (price x quantity) {self.total} is above {MAX_AMOUNT}")
        return self

    @property
    def total(self) -> Decimal:
        """Line total in money."""
        return self.price * self.quantity


class Event(BaseModel):
    """Something a member did. ``type`` is ``purchase``, ``refund`` or any action name."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=200)
    type: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    member: str = Field(min_length=1, max_length=200)
    at: Instant
    amount: Decimal | None = Field(default=None, ge=0, le=MAX_AMOUNT)
    channel: str = ""
    store: str = ""
    items: list[Item] = Field(default_factory=list)
    coupon: str | None = None
    refund_of: str | None = Field(default=None, description="purchase event id (refunds)")
    attributes: dict[str, AttributeValue] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _shape(self) -> Event:
        if self.type in (PURCHASE, REFUND) and self.amount is None:
            raise ValueError(f"a {self.type} event needs 'amount'")
        if self.type == REFUND and not self.refund_of:
            raise ValueError("a refund event needs 'refund_of' (the purchase event id)")
        if self.type != REFUND and self.refund_of:
            raise ValueError("'refund_of' is only for refund events")
        return self

    @property
    def money(self) -> Decimal:
        """The event amount, zero for events without one."""
        return self.amount if self.amount is not None else Decimal(0)
