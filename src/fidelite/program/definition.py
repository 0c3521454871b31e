"""The whole program definition: the root of a program file.

Field-level checks live on each model; checks that span sections (a rule naming a
currency, a reward naming a tier, unique ids, pending event types) are in
:mod:`fidelite.program.consistency`, so the loader can run them on a file that fails
elsewhere, and each problem points at the exact field that is wrong.
"""

from __future__ import annotations

from datetime import timedelta
from functools import cached_property
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from fidelite.program.campaign import CouponCampaign
from fidelite.program.consistency import cross_section_problems
from fidelite.program.currency import Currency
from fidelite.program.model import Identifier, Location, ProgramModel, raise_first
from fidelite.program.policy import ExpiryPolicy, PendingPolicy, RefundPolicy
from fidelite.program.reward import Reward
from fidelite.program.rule import MEMBER_ACTIONS, PURCHASE, REFUND, Rule
from fidelite.program.tier import TierPolicy

__all__ = ["Location", "ProgramDefinition"]


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
    events: list[Identifier] = Field(
        default_factory=list,
        description="other event types the program records without a rule (no points)",
    )
    future_tolerance_minutes: int = Field(
        default=5,
        ge=0,
        le=1440,
        description="how far after the time of processing an event may be dated (a till's "
        "clock a little ahead); an event dated later is refused (event_in_future)",
    )

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name)") from None
        return value

    @model_validator(mode="after")
    def _cross_section(self) -> ProgramDefinition:
        fields = self.model_dump()
        # As written: the default event types are no typo, whatever the rules, and the
        # default reevaluate_tier and tier_multiplier are no settings to refuse without tiers.
        fields["rules"] = [rule.model_dump(exclude_unset=True) for rule in self.rules]
        fields["pending"] = self.pending.model_dump(exclude_unset=True)
        fields["refunds"] = self.refunds.model_dump(exclude_unset=True)
        raise_first(cross_section_problems(fields))
        return self

    @cached_property
    def zone(self) -> ZoneInfo:
        """The program's time zone: local days, weeks and months are computed in it."""
        return ZoneInfo(self.time_zone)

    @cached_property
    def event_types(self) -> frozenset[str]:
        """The event types this program handles: ``purchase``, ``refund``, the standard
        member actions (:data:`~fidelite.program.rule.MEMBER_ACTIONS`), every type a
        rule lists in ``on``, the pending policy's types and those the file declares in
        ``events`` (recorded without points). An event of any other type is refused
        before anything is written: it is most likely a typo (``purchse``), which would
        otherwise be recorded with 0 points and keep its event id from the real event."""
        on = (event_type for rule in self.rules for event_type in rule.on)
        declared = (*on, *self.pending.event_types, *self.events)
        return frozenset((PURCHASE, REFUND, *MEMBER_ACTIONS, *declared))

    @property
    def future_tolerance(self) -> timedelta:
        """How far after the time of processing an event may be dated
        (:mod:`fidelite.processing.future`). Five minutes by default: tills and web shops
        stamp an event before sending it, so only a clock set ahead dates it after its
        arrival, and a few minutes covers a clock that drifts without NTP, while a date
        mistyped by a day, a month or a year is refused. At most a day: a wider window
        would let such typos through."""
        return timedelta(minutes=self.future_tolerance_minutes)

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
