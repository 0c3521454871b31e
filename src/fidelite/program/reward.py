"""The rewards catalogue: what members can spend points on."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum

from pydantic import AwareDatetime, Field, model_validator

from fidelite.program.model import Identifier, ProgramModel


class RewardKind(StrEnum):
    """Kinds of reward."""

    discount_amount = "discount_amount"
    discount_percent = "discount_percent"
    free_product = "free_product"
    voucher = "voucher"
    partner = "partner"
    experience = "experience"


class Reward(ProgramModel):
    """A catalogue entry. ``stock`` and ``per_member_limit`` omitted mean unlimited."""

    id: Identifier
    name: str
    kind: RewardKind
    cost: int = Field(gt=0, description="points spent to redeem")
    currency: Identifier | None = None
    value: Decimal | None = Field(default=None, gt=0, description="amount or percent")
    sku: str | None = Field(default=None, description="product given (free_product)")
    partner: str | None = None
    stock: int | None = Field(default=None, ge=0)
    per_member_limit: int | None = Field(default=None, gt=0)
    tiers: list[Identifier] = Field(default_factory=list, description="empty: every tier")
    valid_from: AwareDatetime | None = None
    valid_until: AwareDatetime | None = None

    @model_validator(mode="after")
    def _kind_fields(self) -> Reward:
        needs_value = self.kind in (RewardKind.discount_amount, RewardKind.discount_percent)
        if needs_value and self.value is None:
            raise ValueError(f"a {self.kind.value} reward needs 'value'")
        if self.kind is RewardKind.discount_percent and self.value and self.value > 100:
            raise ValueError("a percent discount is at most 100")
        if self.kind is RewardKind.free_product and not self.sku:
            raise ValueError("a free_product reward needs 'sku'")
        if self.kind is RewardKind.partner and not self.partner:
            raise ValueError("a partner reward needs 'partner'")
        if self.valid_from and self.valid_until and self.valid_until <= self.valid_from:
            raise ValueError("valid_until must be after valid_from")
        return self
