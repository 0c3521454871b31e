"""The whole program definition: the root of a program file.

Field-level checks live on each model; checks that span sections (a rule naming a
currency, a reward naming a tier, unique ids) are in :meth:`ProgramDefinition.problems`
so each problem can point at the exact field that is wrong.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import cached_property
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator

from fidelite.program.campaign import CouponCampaign
from fidelite.program.currency import Currency
from fidelite.program.model import Identifier, ProgramModel
from fidelite.program.policy import ExpiryPolicy, PendingPolicy, RefundPolicy
from fidelite.program.reward import Reward
from fidelite.program.rule import Rule
from fidelite.program.tier import TierPolicy

Location = tuple[str | int, ...]


class ProgramDefinition(ProgramModel):
    """A loyalty program as the business declares it."""

    id: Identifier
    name: str
    time_zone: str = "UTC"
    currencies: list[Currency] = Field(min_length=1)
    rules: list[Rule] = Field(default_factory=list)
    tiers: TierPolicy | None = None
    rewards: list[Reward] = Field(default_factory=list)
    coupons: list[CouponCampaign] = Field(default_factory=list)
    expiry: ExpiryPolicy = Field(default_factory=ExpiryPolicy)
    pending: PendingPolicy = Field(default_factory=PendingPolicy)
    refunds: RefundPolicy = Field(default_factory=RefundPolicy)

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name)") from None
        return value

    @cached_property
    def zone(self) -> ZoneInfo:
        """The program's time zone: local days, weeks and months are computed in it."""
        return ZoneInfo(self.time_zone)

    @property
    def default_currency(self) -> str:
        """The first currency: used by rules and rewards that name none."""
        return self.currencies[0].id

    def currency_of(self, declared: str | None) -> str:
        """The currency a rule or reward uses."""
        return declared or self.default_currency

    def reward(self, reward_id: str) -> Reward | None:
        """The catalogue entry with this id, if any."""
        return next((r for r in self.rewards if r.id == reward_id), None)

    def campaign_for_prefix(self, prefix: str) -> CouponCampaign | None:
        """The coupon campaign whose codes start with ``prefix``."""
        return next((c for c in self.coupons if c.prefix == prefix), None)

    def problems(self) -> list[tuple[Location, str]]:
        """Cross-section problems, each with the location of the offending field."""
        return list(self._iter_problems())

    def _iter_problems(self) -> Iterator[tuple[Location, str]]:
        yield from _duplicates("currencies", [c.id for c in self.currencies])
        yield from _duplicates("rules", [r.id for r in self.rules])
        yield from _duplicates("rewards", [r.id for r in self.rewards])
        yield from _duplicates("coupons", [c.id for c in self.coupons])
        yield from _duplicates("coupons", [c.prefix for c in self.coupons], field="prefix")
        currencies = {c.id for c in self.currencies}
        campaigns = {c.id for c in self.coupons}
        tiers = {t.id for t in self.tiers.levels} if self.tiers else set()
        for i, rule in enumerate(self.rules):
            if rule.currency is not None and rule.currency not in currencies:
                yield ("rules", i, "currency"), f"unknown currency {rule.currency!r}"
            if rule.coupon_campaign is not None and rule.coupon_campaign not in campaigns:
                msg = f"unknown coupon campaign {rule.coupon_campaign!r}"
                yield ("rules", i, "coupon_campaign"), msg
        for i, reward in enumerate(self.rewards):
            if reward.currency is not None and reward.currency not in currencies:
                yield ("rewards", i, "currency"), f"unknown currency {reward.currency!r}"
            for j, tier in enumerate(reward.tiers):
                if tier not in tiers:
                    yield ("rewards", i, "tiers", j), f"unknown tier {tier!r}"


def _duplicates(
    section: str, values: Sequence[str], *, field: str = "id"
) -> Iterator[tuple[Location, str]]:
    seen: set[str] = set()
    for i, value in enumerate(values):
        if value in seen:
            yield (section, i, field), f"duplicate {field} {value!r}"
        seen.add(value)
