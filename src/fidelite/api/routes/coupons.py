"""Coupon codes: a campaign's single-use codes issued in bulk, to anyone or to one member,
and one code's status (``GET /v1/coupons/{code}``).

Codes are random, so issuing is not idempotent by itself: the codes and the stored
answer to the request's Idempotency-Key commit in one transaction. A retry gets the
same codes; no crash leaves codes stored that no answer carried.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from fidelite.api.idempotency import store_answer
from fidelite.api.problems import Problem
from fidelite.api.routes.common import CallerDep, IdemKey, ServicesDep, once
from fidelite.engine.coupon import normalise, parse_code, refusal_detail
from fidelite.engine.event import WholeNumber
from fidelite.processing.coupon_codes import find_code

router = APIRouter(prefix="/v1", tags=["coupons"])
MAX_CODES = 10_000  # per request: the answer carries every code


class CouponIssue(BaseModel):
    """How many codes, and for whom (none: anyone may use them)."""

    model_config = ConfigDict(extra="forbid")
    count: WholeNumber = Field(ge=1, le=MAX_CODES, examples=[100])
    member: str | None = Field(default=None, min_length=1, max_length=200,
                               description="only this enrolled member may use the codes",
                               examples=["CARD-0001"])  # fmt: skip


class IssuedCoupons(BaseModel):
    """The codes issued, in no particular order; each is single-use. ``warnings``: why
    the codes may not be usable yet (the member in none of the campaign's segments)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "campaign": "vip_welcome", "member": "CARD-0001",
        "codes": ["VIPWELC-7KQ2-M9XD-4HRT-J"], "warnings": []}]})  # fmt: skip
    campaign: str
    member: str | None
    codes: list[str]
    warnings: list[str] = Field(
        default_factory=list,
        description="e.g. the member is in none of the campaign's segments: the till "
        "refuses the codes until they are in one",
    )


Campaign = Path(min_length=1, max_length=64, description="the campaign's id in the program",
                examples=["vip_welcome"])  # fmt: skip


@router.post("/coupon-campaigns/{campaign_id}/coupons", status_code=201,
             response_model=IssuedCoupons)  # fmt: skip
def issue_coupons(
    body: CouponIssue,
    svc: ServicesDep,
    who: CallerDep,
    campaign_id: str = Campaign,
    key: IdemKey = None,
) -> JSONResponse:
    """Issue new single-use codes of a campaign (Idempotency-Key required). Refusals:
    ``unknown_campaign``, ``unknown_member`` (404), ``campaign_ended`` (422). Codes for
    a member in none of the campaign's segments are issued, with a warning."""
    if not key:
        raise Problem("invalid_request", "Idempotency-Key: required to issue coupons")
    route = f"POST /v1/coupon-campaigns/{campaign_id}/coupons"

    def run() -> tuple[int, Any]:
        with svc.db.write() as conn:  # the codes and their stored answer commit together
            warnings: list[str] = []
            codes = svc.processor.issue_coupons(campaign_id, body.count, at=datetime.now(UTC),
                                                member_ref=body.member, conn=conn,
                                                warnings=warnings)  # fmt: skip
            answer = IssuedCoupons(campaign=campaign_id, member=body.member, codes=codes,
                                   warnings=warnings)  # fmt: skip
            store_answer(conn, svc.program.id, key, 201, answer)
        return 201, answer

    return once(svc, key, route, body.model_dump(mode="json"), run)


class CouponCodeOut(BaseModel):
    """One code as the store knows it, with its campaign's validity."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "code": "VIPWELC-7KQ2-M9XD-4HRT-J", "campaign": "vip_welcome", "status": "used",
        "member": "CARD-0001", "issued_at": "2027-03-01T09:00:00Z", "used_by": "CARD-0001",
        "used_event_id": "till-7-000123", "used_at": "2027-03-04T17:12:00Z",
        "valid_from": None, "valid_until": "2027-06-01T00:00:00Z",
        "segments": ["vip"]}]})  # fmt: skip
    code: str = Field(description="as issued: upper case, with its dashes")
    campaign: str
    status: str = Field(description="issued (unused, or given back by a refund) or used")
    member: str | None = Field(description="the only member who may use it; null: anyone")
    issued_at: datetime
    used_by: str | None = Field(description="the member of the event that used it")
    used_event_id: str | None
    used_at: datetime | None = Field(description="when the event that used it happened")
    valid_from: datetime | None = Field(description="the campaign's window (null: open)")
    valid_until: datetime | None = Field(description="exclusive; null: open")
    segments: list[str] | None = Field(
        description="the campaign's segments (empty: anyone); null: campaign no longer in "
        "the program"
    )


CodePath = Path(min_length=1, max_length=64, description="the code, in any case, with or "
                "without its dashes", examples=["VIPWELC-7KQ2-M9XD-4HRT-J"])  # fmt: skip


@router.get("/coupons/{code}", response_model=CouponCodeOut)
def get_coupon(svc: ServicesDep, who: CallerDep, code: str = CodePath) -> CouponCodeOut:
    """One code: campaign, status, the member it was issued to, who used it (member,
    event, when) and the campaign's window. Refusals: ``coupon_invalid`` (422, a
    mistyped code: its check symbol does not match), ``coupon_unknown`` (404, never
    issued)."""
    canonical = normalise(code)
    if parse_code(canonical) is None:
        raise Problem("coupon_invalid", refusal_detail("coupon_invalid", code), field="code")
    with svc.db.read() as conn:
        found = find_code(conn, svc.program.id, canonical)
    if found is None:
        raise Problem("coupon_unknown", f"no code {canonical}: it was never issued",
                      status=404, field="code")  # fmt: skip
    campaign = next((c for c in svc.program.coupons if c.id == found.campaign), None)
    window = campaign.window if campaign is not None else None
    return CouponCodeOut(
        **found.as_dict(),
        valid_from=window.start if window is not None else None,
        valid_until=window.end if window is not None else None,
        segments=list(campaign.segments) if campaign is not None else None,
    )
