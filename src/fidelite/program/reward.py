"""The rewards catalogue: what members can spend points on."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, Field, model_validator

from fidelite.program.model import (
    Identifier,
    Problems,
    ProgramModel,
    ProgramTime,
    as_aware_datetime,
    as_decimal,
    raise_first,
    unused_fields,
)


class RewardKind(StrEnum):
    """Kinds of reward."""

    discount_amount = "discount_amount"
    discount_percent = "discount_percent"
    free_product = "free_product"
    voucher = "voucher"
    partner = "partner"
    experience = "experience"


MAX_COST = 10**15
"""The largest cost a reward may have: the most points the ledger spends at once
(``fidelite.ledger.validation.MAX_POINTS``, as :data:`fidelite.program.rule.MAX_AWARD`
is the most it credits). A cost above it is an error when the program loads: no
redemption could ever pay it (the ledger refuses the spend)."""


def _spendable(cost: int) -> int:
    if cost > MAX_COST:
        raise ValueError(
            f"{cost} is more than the largest cost ({MAX_COST} points): the ledger could "
            "never spend it, so no redemption could pay it"
        )
    return cost


class Reward(ProgramModel):
    """A catalogue entry. ``stock`` and ``per_member_limit`` omitted mean unlimited."""

    id: Identifier
    name: str
    kind: RewardKind
    cost: Annotated[int, AfterValidator(_spendable)] = Field(
        gt=0, description="points spent to redeem"
    )
    currency: Identifier | None = None
    value: Decimal | None = Field(default=None, gt=0, description="amount or percent")
    sku: str | None = Field(default=None, description="product given (free_product)")
    partner: str | None = None
    stock: int | None = Field(default=None, ge=0)
    per_member_limit: int | None = Field(default=None, gt=0)
    tiers: list[Identifier] = Field(default_factory=list, description="empty: every tier")
    valid_from: ProgramTime | None = None
    valid_until: ProgramTime | None = None

    @model_validator(mode="after")
    def _kind_fields(self) -> Reward:
        raise_first(reward_problems(self.model_dump()))
        return self


_OWN_FIELDS = {"sku": RewardKind.free_product, "partner": RewardKind.partner}
"""The fields only one kind of reward uses: the product a ``free_product`` gives, the
partner of a ``partner`` reward."""


def reward_problems(reward: Mapping[str, Any]) -> Problems:
    """The fields a reward's kind needs, no field its kind makes do nothing (``sku`` but
    on a ``free_product``, ``partner`` but on a ``partner`` reward), no tier listed twice,
    and a validity period that is not empty.

    ``reward`` is a reward's fields, validated or as written (see
    :mod:`fidelite.program.model`); each problem points at the field to fix.
    """
    kind = reward.get("kind")
    value = reward.get("value")
    if kind in (RewardKind.discount_amount, RewardKind.discount_percent) and value is None:
        yield ("value",), f"a {kind} reward needs 'value'"
    percent = as_decimal(value)
    if kind == RewardKind.discount_percent and percent is not None and percent > 100:
        yield ("value",), "a percent discount is at most 100"
    if kind == RewardKind.free_product and not reward.get("sku"):
        yield ("sku",), "a free_product reward needs 'sku'"
    if kind == RewardKind.partner and not reward.get("partner"):
        yield ("partner",), "a partner reward needs 'partner'"
    for name, own in _OWN_FIELDS.items():
        if kind in set(RewardKind) and kind != own:
            why = f"with kind: {kind} (only a {own} reward uses it); remove it"
            yield from unused_fields(reward, (name,), why)
    yield from _repeated_tiers(reward.get("tiers"))
    start = as_aware_datetime(reward.get("valid_from"))
    end = as_aware_datetime(reward.get("valid_until"))
    if start is not None and end is not None and end <= start:
        yield ("valid_until",), "valid_until must be after valid_from"


def _repeated_tiers(tiers: object) -> Problems:
    """Each tier listed again in a reward's ``tiers`` (the second listing does nothing)."""
    if not isinstance(tiers, list):
        return
    seen: set[str] = set()
    for j, tier in enumerate(tiers):
        if isinstance(tier, str) and tier in seen:
            yield ("tiers", j), f"tier {tier!r} is listed twice; remove one"
        if isinstance(tier, str):
            seen.add(tier)
