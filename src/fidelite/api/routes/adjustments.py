"""Manual adjustments: a goodwill credit or a correction for one member, or a credit for
every member of a list or segment (e.g. after an outage, admin keys only). Each is a
ledger adjustment with a reason and the API key as the actor; a support key is limited
per adjustment.
"""

from __future__ import annotations

import asyncio
import functools
from collections import Counter
from datetime import datetime
from typing import Annotated, Any

import anyio
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from fidelite.api.access import Caller
from fidelite.api.app import Services
from fidelite.api.idempotency import said_again
from fidelite.api.problems import Problem, from_exception
from fidelite.api.routes.common import (
    CallerDep,
    IdemKey,
    ProblemDetails,
    ServicesDep,
    once,
    require_member,
)
from fidelite.engine.event import Instant, WholeNumber
from fidelite.ledger.credits import Credit, credit_all
from fidelite.ledger.validation import MAX_TEXT, derived_key
from fidelite.program.model import Identifier

router = APIRouter(prefix="/v1", tags=["adjustments"])
MAX_POINTS = 10**12


def _not_blank(text: str) -> str:
    """A reason of spaces says nothing: refused with the request, as the ledger refuses it
    (checked here too so that a bulk call is refused whole instead of member by member)."""
    if not text.strip():
        raise ValueError("must not be blank")
    return text


# As long as the ledger keeps (ledger_transactions.reason): a longer one is refused with
# the request, naming it, before any member is looked at (a bulk call whole).
Reason = Annotated[
    str, Field(min_length=1, max_length=MAX_TEXT, examples=["goodwill: late delivery"]),
    AfterValidator(_not_blank),
]  # fmt: skip


class AdjustmentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    points: WholeNumber = Field(
        ge=-MAX_POINTS, le=MAX_POINTS, description="Credit (> 0) or debit (< 0).", examples=[500]
    )
    reason: Reason
    currency: str | None = None
    expires_at: Instant | None = None


class BulkAdjustment(BaseModel):
    """A credit for every listed member or every member of a segment. Everything here is
    checked before anything is done: a request that is not valid is refused whole (422
    ``invalid_request`` naming the field), credits nobody and is not stored under its
    Idempotency-Key, so the corrected request may use the key."""

    model_config = ConfigDict(extra="forbid")
    points: WholeNumber = Field(gt=0, le=MAX_POINTS, description="Credit given to each member.")
    reason: Reason
    currency: str | None = None
    members: list[str] | None = Field(
        default=None, min_length=1, max_length=10_000,
        description="The members to credit, each once.",
    )  # fmt: skip
    segment: Identifier | None = Field(
        default=None,
        description="Every member in this segment; a segment name as members are given "
        "it (vip, not VIP). A segment no member is in credits nobody.",
    )
    expires_at: Instant | None = Field(
        default=None,
        description="When the credited points expire (ISO 8601 with offset, later than "
        "now). Without it they get the date the program's expiry policy gives points "
        "earned now (after_earning), or none.",
    )

    @model_validator(mode="after")
    def _one_target(self) -> BulkAdjustment:
        if (self.members is None) == (self.segment is None):
            raise ValueError("give either 'members' or 'segment'")
        return self

    @field_validator("members")
    @classmethod
    def _each_once(cls, members: list[str] | None) -> list[str] | None:
        """A member listed twice would be credited once but counted twice in the answer."""
        twice = sorted(m for m, n in Counter(members or []).items() if n > 1)
        if twice:
            raise ValueError(f"listed more than once: {', '.join(twice)}")
        return members


RECEIPT_EXAMPLE: dict[str, Any] = {
    "member": "CARD-0001", "transaction_id": 412, "points": 500, "currency": "points",
    "replayed": False,
}  # fmt: skip
BULK_EXAMPLE: dict[str, Any] = {
    "credited": 1, "refused": 1,
    "results": [
        RECEIPT_EXAMPLE,
        {"member": "CARD-0404", "problem": {
            "type": "https://fidelite.dev/problems/unknown_member", "title": "unknown member",
            "status": 404, "detail": "no member 'CARD-0404' in program 'cafe_club'",
            "code": "unknown_member", "field": "member_ref"}},
    ],
}  # fmt: skip


class AdjustmentReceipt(BaseModel):
    """A member credited or debited: the ledger transaction that records it."""

    model_config = ConfigDict(json_schema_extra={"examples": [RECEIPT_EXAMPLE]})
    member: str
    transaction_id: int
    points: int = Field(description="as asked: > 0 a credit, < 0 a debit")
    currency: str = Field(description="the currency adjusted (the program's default if none given)")
    replayed: bool = Field(
        description="true: done before under this key, nothing done now (e.g. the request "
        "sent again with its Idempotency-Key, as the header Idempotent-Replayed: true says)"
    )


class BulkRefusal(BaseModel):
    """A member of a bulk adjustment who was not credited."""

    member: str
    problem: ProblemDetails


class BulkAdjustmentResult(BaseModel):
    """One result per member, in the order of the list (or of member ids for a segment)."""

    model_config = ConfigDict(json_schema_extra={"examples": [BULK_EXAMPLE]})
    credited: int = Field(description="members credited")
    refused: int = Field(description="members refused (each with its problem)")
    results: list[AdjustmentReceipt | BulkRefusal]


def _check(svc: Services, who: Caller, points: int, currency: str | None) -> None:
    """Refuse an adjustment whatever the member: 0 points, over a support key's limit (a
    setting), a currency the program does not have. Refusals of the request itself, so
    not stored under its Idempotency-Key (:data:`~fidelite.api.idempotency.NOT_STORED`):
    a bulk call checks them once, up front, instead of refusing every member with them
    in an answer that would be replayed even after the program gains the currency."""
    if points == 0:
        raise Problem("invalid_request", "points: must not be 0", field="points")
    limit = svc.settings.support_adjustment_limit
    if who.role == "support" and abs(points) > limit:
        raise Problem("adjustment_over_limit", f"a support key may adjust at most {limit} "
                      "points at a time")  # fmt: skip
    if currency is not None and currency not in {c.id for c in svc.program.currencies}:
        raise Problem("unknown_currency", f"program {svc.program.id!r} has no currency "
                      f"{currency!r}", field="currency")  # fmt: skip


def _adjust(svc: Services, who: Caller, member: str, points: int, reason: str,
            currency: str | None, key: str,
            expires_at: Any = None) -> AdjustmentReceipt:  # fmt: skip
    _check(svc, who, points, currency)
    receipt = svc.ledger.adjust(
        svc.program.id, member, svc.program.currency_of(currency), points, key=key,
        reason=reason, actor=who.actor, expires_at=expires_at, policy=svc.program.expiry,
        zone=svc.program.zone,
    )  # fmt: skip
    return AdjustmentReceipt(member=member, transaction_id=receipt.transaction_id, points=points,
                             currency=receipt.currency, replayed=receipt.replayed)  # fmt: skip


@router.post("/members/{member_id}/adjustments", status_code=201, response_model=AdjustmentReceipt)
def adjust_member(
    member_id: str, body: AdjustmentCreate, svc: ServicesDep, who: CallerDep, key: IdemKey = None
) -> JSONResponse:
    """Credit or debit one member, with a reason (Idempotency-Key required)."""
    if not key:
        raise Problem("invalid_request", "Idempotency-Key: required for adjustments")
    require_member(svc, member_id)

    def run() -> tuple[int, Any]:
        return 201, _adjust(svc, who, member_id, body.points, body.reason, body.currency,
                            derived_key("api-adjust:", key), body.expires_at)  # fmt: skip

    return once(svc, key, f"POST /v1/members/{member_id}/adjustments",
                body.model_dump(mode="json"), run, replayed=said_again)  # fmt: skip


@router.post("/adjustments:bulk", response_model=BulkAdjustmentResult)
async def adjust_bulk(
    body: BulkAdjustment, svc: ServicesDep, who: CallerDep, key: IdemKey = None
) -> JSONResponse:
    """Credit every listed member (or every member of a segment); one result each.

    Admin keys only (a support key adjusts one member at a time, within its limit).
    Refused whole, before anything is done and without storing the answer under the
    key, when the body is not valid (``invalid_request`` naming the field: points not
    > 0, a blank reason, a segment name members could not have, a member listed twice)
    or names a currency the program does not have (``unknown_currency``).

    At most 10,000 listed members per call (a segment is not capped); members are
    credited in chunks of a few hundred, one transaction each, every member under its
    own key made from the call's. A server stopping before the credit is done answers
    503 ``bulk_interrupted``: it may be partly applied, and the same request sent again
    with the SAME Idempotency-Key credits the rest, each member exactly once."""
    if not key:
        raise Problem("invalid_request", "Idempotency-Key: required for bulk adjustments")

    def run() -> tuple[int, Any]:
        # Checked inside the claim: a retry of a call that ran gets its stored answer
        # even if the currency has changed since (these refusals are not stored, so a
        # refused call's retry is checked again). The body was checked before the claim.
        _check(svc, who, body.points, body.currency)
        _check_expiry(svc, body.expires_at)
        targets = body.members if body.members is not None else _segment(svc, body.segment or "")
        credits = credit_all(
            svc.ledger, svc.program.id, targets, svc.program.currency_of(body.currency),
            body.points, key=lambda member: derived_key("api-bulk:", key, f":{member}"),
            reason=body.reason, actor=who.actor, expires_at=body.expires_at,
            policy=svc.program.expiry, zone=svc.program.zone,
        )  # fmt: skip
        results = [_bulk_result(c, body.points) for c in credits]
        credited = sum(1 for r in results if isinstance(r, AdjustmentReceipt))
        return 200, BulkAdjustmentResult(credited=credited, refused=len(results) - credited,
                                         results=results)  # fmt: skip

    route = "POST /v1/adjustments:bulk"
    asked = body.model_dump(mode="json")
    if asked["expires_at"] is None:  # as bodies were fingerprinted before the field existed
        del asked["expires_at"]
    try:
        # in a worker thread, as a plain route runs; awaited here so that an answer cut
        # short is one the caller can act on (below)
        return await anyio.to_thread.run_sync(
            functools.partial(once, svc, key, route, asked, run, replayed=_bulk_said_again)
        )
    except asyncio.CancelledError:
        # The server is stopping (Ctrl-C) before the credit is done. The worker thread
        # goes on crediting, chunk by chunk, each member under its own key: the caller
        # must not take this for "nothing done" and start again under a new key, which
        # would credit everyone twice.
        return JSONResponse(Problem("bulk_interrupted", INTERRUPTED, status=503).body(),
                            status_code=503, media_type="application/problem+json",
                            headers={"Retry-After": "30"})  # fmt: skip


INTERRUPTED = (
    "the server is stopping before this bulk credit finished: it may be partly applied "
    "(members are credited in chunks, and the chunk in progress may still be written). "
    "Send the same request again with the SAME Idempotency-Key once the server is back: "
    "members already credited are not credited again, the others are. Do not use a new "
    "key: that would credit the members already credited a second time."
)


def _bulk_result(credit: Credit, points: int) -> AdjustmentReceipt | BulkRefusal:
    """One member's line of a bulk answer: the credit made, or the problem refusing it."""
    if credit.receipt is not None:
        r = credit.receipt
        return AdjustmentReceipt(member=credit.member, transaction_id=r.transaction_id,
                                 points=points, currency=r.currency,
                                 replayed=r.replayed)  # fmt: skip
    assert credit.refusal is not None
    problem = from_exception(credit.refusal)
    assert problem is not None
    return BulkRefusal(member=credit.member, problem=problem.body())


def _check_expiry(svc: Services, expires_at: datetime | None) -> None:
    """Refuse a bulk credit whose ``expires_at`` is not later than now, whole (as the
    ledger would refuse each member): a refusal of the request, not stored."""
    now = svc.ledger.now()
    if expires_at is not None and expires_at <= now:
        raise Problem("invalid_request", f"expires_at: must be later than now "
                      f"({now.astimezone(svc.program.zone).isoformat()}): points expiring at "
                      f"{expires_at.astimezone(svc.program.zone).isoformat()} would already be "
                      "expired", field="expires_at")  # fmt: skip


def _bulk_said_again(body: Any) -> Any:
    """A bulk answer sent again: nothing was done now, for any member (each credit says
    ``"replayed": true``; refusals stay as they were)."""
    if not isinstance(body, dict) or not isinstance(body.get("results"), list):
        return body
    return {**body, "results": [said_again(r) for r in body["results"]]}


def _segment(svc: Services, segment: str) -> list[str]:
    members, cursor = [], None
    while True:
        page = svc.processor.list_members(after=cursor, limit=500)
        members += [p["member_ref"] for p in page if segment in (p["segments"] or [])]
        if len(page) < 500:
            return members
        cursor = page[-1]["member_ref"]
