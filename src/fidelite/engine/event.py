"""Events the engine evaluates: purchases, refunds and any named member action.

An event is immutable input. Money is ``Decimal``; ``at`` is timezone-aware (the
engine derives local hour, weekday and date in the program's zone from it).
``id`` is the client's event id: the store uses it to make processing idempotent.
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

PURCHASE = "purchase"
REFUND = "refund"

AttributeValue = str | int | float | bool


class Item(BaseModel):
    """One basket line: ``price`` is the unit price, so the line total is price x quantity."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sku: str = Field(min_length=1)
    category: str = ""
    quantity: int = Field(default=1, gt=0)
    price: Decimal = Field(ge=0)

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
    at: AwareDatetime
    amount: Decimal | None = Field(default=None, ge=0)
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
