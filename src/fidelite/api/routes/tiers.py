"""Tiers: where a member stands (tier, dates, every change) and manual assignment.

Re-qualification, grace periods and downgrades are the daily job's (``fidelite tier
review``); an upgrade happens with the event that earns it. An assignment by hand is
an admin's act, with a reason kept on the member's timeline.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from fidelite.api.idempotency import store_answer
from fidelite.api.problems import Problem
from fidelite.api.routes.common import CallerDep, IdemKey, ServicesDep, once, require_member
from fidelite.engine.event import Instant
from fidelite.engine.tiers import TierChange, next_review

router = APIRouter(prefix="/v1", tags=["tiers"])


class TierAssignment(BaseModel):
    """A tier given by hand until a date (no re-qualification before then)."""

    model_config = ConfigDict(extra="forbid")
    tier: str = Field(min_length=1, max_length=64, examples=["gold"])
    until: Instant = Field(description="end of the assignment; after it the daily "
                                 "review gives the tier the member qualifies for",
                                 examples=["2027-01-01T00:00:00+01:00"])  # fmt: skip
    reason: str = Field(min_length=1, max_length=300, examples=["complaint 2026-118"])


class TierChangeOut(BaseModel):
    """One entry of the member's tier timeline."""

    model_config = ConfigDict(validate_by_name=True, serialize_by_alias=True)
    at: datetime
    kind: str = Field(examples=["upgrade", "downgrade", "grace_started", "requalified",
                                "assigned", "assignment_expired", "upgrade_reversed"])  # fmt: skip
    from_: str = Field(alias="from", description="tier before the change")
    to: str = Field(description="tier after the change")
    value: Decimal = Field(description="the qualifying value (spend, points or purchases) "
                           "that justified it, four decimals (an assignment: the member's "
                           "at that moment)")  # fmt: skip
    reason: str
    event_id: str | None = Field(description="the event that caused it (none: the daily "
                                 "review or an assignment)")  # fmt: skip
    until: datetime | None = Field(default=None, description="an assignment's end (none on "
                                   "other entries, and on an assignment recorded before "
                                   "migration 0007 that an upgrade replaced)")  # fmt: skip


STANDING_EXAMPLE: dict[str, Any] = {
    "member": "CARD-0001", "tier": "gold", "since": "2026-11-20T08:00:00Z",
    "review_at": None, "grace_until": None, "assigned_until": "2026-12-31T23:00:00Z",
    "timeline": [
        {"at": "2026-03-02T09:00:00Z", "kind": "upgrade", "from": "bronze", "to": "silver",
         "value": "350.0000", "reason": "spend 350 reached 300", "event_id": "till-7-12",
         "until": None},
        {"at": "2026-11-20T08:00:00Z", "kind": "assigned", "from": "silver", "to": "gold",
         "value": "350.0000", "reason": "complaint 2026-118", "event_id": None,
         "until": "2026-12-31T23:00:00Z"},
    ],
}  # fmt: skip


class TierStanding(BaseModel):
    """The member's tier, its dates and every tier change, oldest first."""

    model_config = ConfigDict(json_schema_extra={"examples": [STANDING_EXAMPLE]})
    member: str
    tier: str
    since: datetime
    review_at: datetime | None = Field(description="next re-qualification (none on the "
                                       "base tier or during an assignment)")  # fmt: skip
    grace_until: datetime | None = Field(description="end of the grace period, if in one")
    assigned_until: datetime | None = Field(description="end of a manual assignment")
    timeline: list[TierChangeOut]


class TierAssigned(BaseModel):
    """The assignment made: the timeline entry it added and when it ends."""

    model_config = ConfigDict(
        serialize_by_alias=True,
        json_schema_extra={"examples": [{
            "member": "CARD-0001", "change": STANDING_EXAMPLE["timeline"][1],
            "until": "2026-12-31T23:00:00Z"}]},
    )  # fmt: skip
    member: str
    change: TierChangeOut
    until: datetime


def _change(
    change: TierChange, event_id: str | None = None, until: datetime | None = None
) -> TierChangeOut:
    return TierChangeOut(at=change.at, kind=change.kind.value, from_=change.from_tier,
                         to=change.to_tier, value=change.value, reason=change.reason,
                         event_id=event_id, until=until)  # fmt: skip


@router.get("/members/{member_id}/tier", response_model=TierStanding)
def get_tier(member_id: str, svc: ServicesDep, who: CallerDep) -> TierStanding:
    """Where the member stands: tier, since when, the next re-qualification, the end of a
    grace period or of a manual assignment, and every tier change, oldest first."""
    require_member(svc, member_id)
    if svc.program.tiers is None:
        raise Problem("no_tiers", "this program has no tiers")
    standing = svc.processor.tier_standing(member_id)
    if standing is None:  # enrolled before the program had tiers: on the base tier
        raise Problem("no_tiers", f"member {member_id!r} has no tier yet")
    timeline = [
        TierChangeOut(at=t["at"], kind=t["kind"], from_=t["from_tier"], to=t["to_tier"],
                      value=t["value"], reason=t["reason"], event_id=t["event_id"],
                      until=t["assigned_until"])
        for t in svc.processor.tier_timeline(member_id)
    ]  # fmt: skip
    return TierStanding(member=member_id, tier=standing.tier, since=standing.since,
                        review_at=next_review(standing), grace_until=standing.grace_until,
                        assigned_until=standing.assigned_until, timeline=timeline)  # fmt: skip


@router.post("/members/{member_id}/tier:assign", status_code=201, response_model=TierAssigned)
def assign_tier(
    member_id: str, body: TierAssignment, svc: ServicesDep, who: CallerDep, key: IdemKey = None
) -> JSONResponse:
    """Put the member on a tier by hand, from now until ``until`` (Idempotency-Key
    required). Refusals: ``unknown_member`` (404), ``no_tiers``, ``unknown_tier``,
    ``invalid_assignment`` (422)."""
    if not key:
        raise Problem("invalid_request", "Idempotency-Key: required for tier assignments")
    route = f"POST /v1/members/{member_id}/tier:assign"

    def run() -> tuple[int, Any]:
        until = body.until.astimezone(UTC)  # answered in UTC, as the standing reads it
        with svc.db.write() as conn:  # the change and its stored answer commit together
            change = svc.processor.assign_tier(
                member_id, body.tier, at=datetime.now(UTC), until=until,
                reason=body.reason, conn=conn,
            )  # fmt: skip
            answer = TierAssigned(member=member_id, change=_change(change, until=until),
                                  until=until)  # fmt: skip
            store_answer(conn, svc.program.id, key, 201, answer)
        return 201, answer

    return once(svc, key, route, body.model_dump(mode="json"), run)
