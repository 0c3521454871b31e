"""Coupon campaigns: batches of unique single-use codes that unlock offers.

A code is ``PREFIX-XXXX-XXXX-XXXX-C``: the campaign's prefix, random symbols and a
check symbol (see :mod:`fidelite.engine.coupon`). Rules with ``coupon_campaign`` apply
only to events that carry a valid, unused code of that campaign.
"""

from __future__ import annotations

from pydantic import Field

from fidelite.program.model import Identifier, ProgramModel
from fidelite.program.rule import Window


class CouponCampaign(ProgramModel):
    """A coupon campaign: who may use its codes and when."""

    id: Identifier
    name: str
    prefix: str = Field(pattern=r"^[A-Z0-9]{2,8}$", description="code prefix, unique")
    window: Window | None = None
    segments: list[Identifier] = Field(default_factory=list, description="empty: anyone")
