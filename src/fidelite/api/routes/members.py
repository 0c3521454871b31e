"""Members: enrol, read, change the profile, list, balances, ledger, timeline; GDPR
export and erasure."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from fidelite.api.problems import Problem
from fidelite.api.routes.common import MAX_ID, CallerDep, IdemKey, ServicesDep, once, require_member
from fidelite.privacy import erase_member, export_member
from fidelite.processing import MemberProfile

router = APIRouter(prefix="/v1", tags=["members"])
Attr = str | int | float | bool


class MemberCreate(BaseModel):
    """A new member. Tier, balances and counters are the program's to set, not the client's."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1, max_length=200, description="Card number or customer id.",
                    examples=["CARD-0001"])  # fmt: skip
    joined_at: AwareDatetime | None = None
    segments: list[Annotated[str, Field(max_length=64)]] | None = Field(default=None, max_length=50)
    attributes: dict[str, Attr] | None = None
    birth_date: date | None = None


class MemberUpdate(BaseModel):
    """Profile fields a client may change (others are refused)."""

    model_config = ConfigDict(extra="forbid")
    segments: list[Annotated[str, Field(max_length=64)]] | None = Field(default=None, max_length=50)
    attributes: dict[str, Attr] | None = None
    birth_date: date | None = None


class Member(BaseModel):
    id: str
    tier: str | None
    tier_since: datetime | None
    segments: list[str]
    attributes: dict[str, Any]
    purchases: int
    joined_at: datetime | None
    birth_date: date | None


class MemberPage(BaseModel):
    members: list[Member]
    next_cursor: str | None


class PointsBalance(BaseModel):
    """One currency's points as of a moment: ``expiring_soon`` is part of ``available``."""

    member_ref: str
    currency: str
    as_of: datetime
    available: int
    pending: int
    expiring_soon: int
    expiring_window_days: int
    debt: int
    next_expiry: datetime | None


class Balances(BaseModel):
    member: str
    balances: list[PointsBalance]


class LedgerEntry(BaseModel):
    """One ledger transaction seen from the member's accounts (changes are signed)."""

    transaction_id: int
    kind: str
    occurred_at: datetime
    currency: str
    available_change: int
    pending_change: int
    debt_change: int
    reason: str
    source: str | None
    actor: str | None
    reverses_id: int | None
    reversed_points: int
    detail: dict[str, Any] | None


class LedgerPage(BaseModel):
    member: str
    entries: list[LedgerEntry]
    next_cursor: int | None = Field(description="pass as ?before= for the next page")


def _member(profile: dict[str, Any]) -> Member:
    return Member(id=profile["member_ref"], **{k: v for k, v in profile.items()
                                              if k != "member_ref"})  # fmt: skip


@router.post("/members", status_code=201, response_model=Member,
             responses={200: {"model": Member, "description": "Already enrolled"}})  # fmt: skip
def create_member(
    body: MemberCreate, svc: ServicesDep, who: CallerDep, key: IdemKey = None
) -> JSONResponse:
    """Enrol a member (201), or return the member already enrolled under this id (200)."""

    def run() -> tuple[int, Any]:
        profile = MemberProfile(body.segments, body.attributes, body.birth_date)
        created = svc.processor.enrol(body.id, at=body.joined_at or datetime.now(UTC),
                                      profile=profile)  # fmt: skip
        return (201 if created else 200), _member(require_member(svc, body.id))

    return once(svc, key, "POST /v1/members", body.model_dump(mode="json"), run)


@router.get("/members", response_model=MemberPage)
def list_members(
    svc: ServicesDep,
    who: CallerDep,
    cursor: str | None = Query(None, description="next_cursor of the previous page"),
    limit: int = Query(50, ge=1, le=MAX_ID, description="page size (capped at 200 by default)"),
) -> MemberPage:
    """Members in id order, a page at a time."""
    size = min(limit, svc.settings.max_page)
    found = svc.processor.list_members(after=cursor, limit=size + 1)
    page = [_member(p) for p in found[:size]]
    return MemberPage(members=page, next_cursor=page[-1].id if len(found) > size else None)


@router.get("/members/{member_id}", response_model=Member)
def get_member(member_id: str, svc: ServicesDep, who: CallerDep) -> Member:
    """One member's profile and tier."""
    return _member(require_member(svc, member_id))


@router.patch("/members/{member_id}", response_model=Member)
def update_member(
    member_id: str, body: MemberUpdate, svc: ServicesDep, who: CallerDep, key: IdemKey = None
) -> JSONResponse:
    """Change segments, attributes or birth date."""

    def run() -> tuple[int, Any]:
        profile = MemberProfile(body.segments, body.attributes, body.birth_date)
        return 200, _member(svc.processor.update_profile(member_id, profile))

    return once(svc, key, f"PATCH /v1/members/{member_id}", body.model_dump(mode="json"), run)


# Documented, not re-validated: the bodies are built from the ledger's own dataclasses.
@router.get("/members/{member_id}/balance", responses={200: {"model": Balances}})
def get_balance(
    member_id: str, svc: ServicesDep, who: CallerDep,
    currency: str | None = Query(None, description="default: every currency of the program"),
) -> dict[str, Any]:  # fmt: skip
    """Available, pending, expiring-soon points and debt, per currency."""
    require_member(svc, member_id)
    ids = [c.id for c in svc.program.currencies]
    if currency is not None and currency not in ids:
        raise Problem("unknown_currency", f"no currency {currency!r} in this program")
    balances = [
        svc.ledger.balance(svc.program.id, member_id, c) for c in ([currency] if currency else ids)
    ]
    return {"member": member_id, "balances": [vars(b) for b in balances]}


@router.get("/members/{member_id}/ledger", responses={200: {"model": LedgerPage}})
def get_ledger(
    member_id: str, svc: ServicesDep, who: CallerDep,
    before: int | None = Query(None, ge=1, le=MAX_ID, description="next_cursor of the last page"),
    limit: int = Query(50, ge=1, le=MAX_ID), currency: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """The member's point movements, newest first, with reason and source."""
    require_member(svc, member_id)
    size = min(limit, svc.settings.max_page)
    rows = svc.ledger.history(svc.program.id, member_id, currency=currency, limit=size + 1,
                              before_id=before)  # fmt: skip
    entries = [vars(r) for r in rows[:size]]
    nxt = entries[-1]["transaction_id"] if len(rows) > size else None
    return {"member": member_id, "entries": entries, "next_cursor": nxt}


@router.get("/members/{member_id}/timeline")
def get_timeline(member_id: str, svc: ServicesDep, who: CallerDep) -> dict[str, Any]:
    """The 360° view: profile, points movements, tier changes and redemptions, newest first."""
    profile = require_member(svc, member_id)
    history = svc.ledger.history(svc.program.id, member_id, limit=200)
    items: list[dict[str, Any]] = [
        {"at": h.occurred_at, "kind": f"points.{h.kind}", "currency": h.currency,
         "points": h.available_change + h.pending_change, "reason": h.reason,
         "source": h.source} for h in history
    ]  # fmt: skip
    items += [{"at": t["at"], "kind": f"tier.{t['kind']}", "from": t["from_tier"],
               "to": t["to_tier"], "reason": t["reason"]}
              for t in svc.processor.tier_timeline(member_id)]  # fmt: skip
    items.sort(key=lambda i: i["at"], reverse=True)
    return {"member": _member(profile), "timeline": items}


@router.get("/members/{member_id}/export")
def export(member_id: str, svc: ServicesDep, who: CallerDep) -> dict[str, Any]:
    """Everything fidelite holds about the member (GDPR access request)."""
    with svc.db.read() as conn:
        return export_member(conn, svc.program.id, member_id)


@router.delete("/members/{member_id}")
def erase(member_id: str, svc: ServicesDep, who: CallerDep, key: IdemKey = None) -> JSONResponse:
    """Erase the member's personal data; balances and the books stay intact."""

    def run() -> tuple[int, Any]:
        with svc.db.write() as conn:
            erasure = erase_member(conn, svc.program.id, member_id,
                                   reason=f"erasure request via {who.actor}")  # fmt: skip
        return 200, erasure.as_dict()

    return once(svc, key, f"DELETE /v1/members/{member_id}", {}, run)
