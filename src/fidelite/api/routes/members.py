"""Members: enrol, read, change the profile, list, balances, ledger, timeline; GDPR
export and erasure."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from fidelite.api.app import Services
from fidelite.api.idempotency import said_again
from fidelite.api.problems import Problem, invalid
from fidelite.api.routes.common import MAX_ID, CallerDep, IdemKey, ServicesDep, once, require_member
from fidelite.engine.event import Attributes, Day, Instant
from fidelite.engine.member import EARLIEST_BIRTH, MAX_SEGMENTS, profile_problems, segment_set
from fidelite.engine.member_id import MEMBER_ID_RULE, MemberId
from fidelite.ledger import HistoryEntry
from fidelite.privacy import erase_member, export_member
from fidelite.processing import MemberProfile
from fidelite.program.model import Identifier

router = APIRouter(prefix="/v1", tags=["members"])
Segments = Annotated[list[Identifier], Field(max_length=MAX_SEGMENTS)]
"""Segments as sent: kept once each, sorted, when applied (:func:`_kept`), not in the
body, whose Idempotency-Key fingerprint stays the one stored before (a call sent
again after an upgrade finds its answer instead of ``idempotency_key_reused``)."""
SEGMENTS_DOC = (
    f"Segment names as rules write them (vip), at most {MAX_SEGMENTS}; kept once each, "
    "sorted, as the members import keeps them."
)


def _kept(segments: list[str] | None) -> list[str] | None:
    """The segments a member keeps: each name once, sorted, as the members import keeps
    them (:func:`~fidelite.engine.member.segment_set`); ``None``: left as they are."""
    return None if segments is None else segment_set(segments)


class MemberCreate(BaseModel):
    """A new member. Tier, balances and counters are the program's to set, not the client's."""

    model_config = ConfigDict(extra="forbid")
    id: MemberId = Field(description=f"Card number or customer id: {MEMBER_ID_RULE}.",
                         examples=["CARD-0001"])  # fmt: skip
    joined_at: Instant | None = None
    segments: Segments | None = Field(default=None, description=SEGMENTS_DOC)
    attributes: Attributes | None = None
    birth_date: Day | None = None


class MemberUpdate(BaseModel):
    """Profile fields a client may change (others are refused)."""

    model_config = ConfigDict(extra="forbid")
    segments: Segments | None = Field(default=None, description=SEGMENTS_DOC)
    attributes: Attributes | None = None
    birth_date: Day | None = None


def _check_profile(
    svc: Any,
    birth_date: date | None,
    joined_at: datetime | None = None,
    *,
    joins: bool = False,
    member: str | None = None,
) -> None:
    """422 naming the field if ``joined_at`` is in the future (later than the time of
    processing, as events are checked, plus the program's tolerance) for a member who
    ``joins`` with it (an existing member keeps its join date: the value is ignored, as
    in the members import), or ``birth_date`` before 1900-01-01 or after today in the
    program's zone (shared with the members import:
    :func:`~fidelite.engine.member.profile_problems`); a date before 1900-01-01 that is
    the one stored for ``member`` (stored before that limit) is no change, accepted."""
    program = svc.program
    stored = None
    if member is not None and birth_date is not None and birth_date < EARLIEST_BIRTH:
        found = svc.processor.member_profile(member)
        stored = found["birth_date"] if found else None
    problems = profile_problems(
        joined_at=joined_at, birth_date=birth_date, now=svc.processor.clock(),
        zone=program.zone, tolerance=program.future_tolerance, joins=joins,
        stored_birth=stored,
    )  # fmt: skip
    if problems:
        raise invalid([{"loc": where, "msg": message} for where, message in problems], ("body",))


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


class PointsMovement(BaseModel):
    """A ledger transaction on the timeline: its own points (``transaction_points``) and
    how it moved the member's accounts (the ``*_change`` fields, as the ledger history
    gives them). A full refund of a purchase that earned 800 points, after 500 of them
    were spent, reads ``transaction_points`` -800: ``available_change`` -300 and
    ``debt_change`` -500 (the 500 owed that GET /v1/members/{id}/balance reports as
    ``debt``); ``points`` is -300."""

    at: datetime = Field(description="when it happened (the transaction's occurred_at)")
    kind: str = Field(pattern=r"^points\.", description="points.<ledger kind>",
                      examples=["points.earn", "points.spend", "points.adjust"])  # fmt: skip
    currency: str
    points: int = Field(
        description="available plus pending change, signed: what the member can spend, "
        "now or once held points are released, gained or lost; debt is not in it (see "
        "debt_change), so it is not the transaction's points when debt was added or "
        "repaid (see transaction_points)"
    )
    reason: str
    source: str | None = Field(description="what caused it: an event id, a reward id")
    transaction_id: int = Field(description="the ledger transaction (as in the ledger history)")
    transaction_points: int = Field(
        description="the transaction's own points, signed: > 0 it gave the member points "
        "(earn, credit adjustment, a reversal of a spend, expiry or debit, e.g. a cancelled "
        "redemption) or released held ones (points.release), < 0 it took them (spend, "
        "expiry, debit adjustment, a reversal of a credit, e.g. a refund's reversal). "
        "Except for a release, it is available_change + pending_change + debt_change, plus "
        "for a reversal the points written off or already expired, which left no account "
        "of the member (the refund's event trace has them)",
        examples=[-800],
    )
    available_change: int = Field(description="change of the member's available points")
    pending_change: int = Field(description="change of the member's pending points")
    debt_change: int = Field(
        description="change of the member's debt account, signed as the ledger signs it "
        "(debt <= 0, as in the ledger history): -500 is 500 more points owed (the debt "
        "GET /v1/members/{id}/balance reports rises by 500), +500 is 500 owed points repaid",
        examples=[-500],
    )


class TierMovement(BaseModel):
    """A tier change on the timeline."""

    model_config = ConfigDict(validate_by_name=True)
    at: datetime
    kind: str = Field(pattern=r"^tier\.", description="tier.<change kind>",
                      examples=["tier.upgrade", "tier.downgrade"])  # fmt: skip
    from_: str = Field(alias="from", description="tier before the change")
    to: str = Field(description="tier after the change")
    value: Decimal = Field(description="the qualifying value (spend, points or purchases) "
                           "that justified it, four decimals (an assignment: the member's "
                           "at that moment), as in GET /v1/members/{id}/tier",
                           examples=["350.0000"])  # fmt: skip
    reason: str
    event_id: str | None = Field(default=None, description="the event that caused it "
                                 "(none: the daily review, or a step it had not applied "
                                 "yet when the member's next event or redemption came, "
                                 "or an assignment)")  # fmt: skip
    until: datetime | None = Field(default=None, description="an assignment's end "
                                   "(tier.assigned; none on other tier changes)")  # fmt: skip


TIMELINE_EXAMPLE: dict[str, Any] = {
    "member": {"id": "CARD-0001", "tier": "silver", "tier_since": "2026-11-20T09:00:00Z",
               "segments": ["vip"], "attributes": {"city": "Lyon"}, "purchases": 1,
               "joined_at": "2026-11-01T08:00:00Z", "birth_date": None},
    "timeline": [
        {"at": "2026-11-20T09:00:00Z", "kind": "tier.upgrade", "from": "bronze",
         "to": "silver", "value": "350.0000", "reason": "spend 350 reached 300",
         "event_id": "till-7-000123", "until": None},
        {"at": "2026-11-20T09:00:00Z", "kind": "points.earn", "currency": "points",
         "points": 350, "reason": "purchase", "source": "till-7-000123",
         "transaction_id": 381, "transaction_points": 350, "available_change": 350,
         "pending_change": 0, "debt_change": 0},
    ],
}  # fmt: skip


class Timeline(BaseModel):
    """The 360° view: the member's profile and what happened to them, by when it
    happened (``at``), newest first."""

    model_config = ConfigDict(json_schema_extra={"examples": [TIMELINE_EXAMPLE]})
    member: Member
    timeline: list[PointsMovement | TierMovement] = Field(
        description="the 200 most recently recorded ledger transactions (redemptions "
        "and their cancellations are among them, as points.spend and points.reverse) and "
        "every tier change, by their time `at`, newest first, whatever the order they "
        "were recorded in; at equal times the most recently recorded first, a tier "
        "change before the points movements (the ledger history, by contrast, lists "
        "transactions most recently recorded first)"
    )


class ExportedMember(BaseModel):
    """The member row: the ledger's numeric id and the client's reference."""

    id: int = Field(description="internal member id (kept after erasure)")
    ref: str = Field(description="the client's reference (the tombstone once erased)")
    status: str = Field(description="active, or erased", examples=["active"])
    created_at: datetime


class ExportedBalance(BaseModel):
    """One account of the member: available, pending or debt points of a currency, as
    stored in the ledger (the sum of its postings under ``ledger``)."""

    currency: str
    kind: str = Field(examples=["available", "pending", "debt"])
    account_balance: int = Field(
        description="the account's balance, signed as the ledger's accounts are: "
        "available and pending >= 0, debt <= 0 (-275 on the debt account: 275 points "
        "owed, which GET /v1/members/{id}/balance reports as debt 275)",
        examples=[-275],
    )


class ExportedPosting(BaseModel):
    """One posting of a transaction on the member's own accounts."""

    account: str = Field(description="the account's kind", examples=["available"])
    lot_id: int | None = Field(description="the lot the points came from or went to")
    points: int = Field(description="signed")


class ExportedTransaction(BaseModel):
    """One ledger transaction of the member, with its postings on their accounts."""

    id: int
    kind: str = Field(examples=["earn", "spend", "adjust", "reverse", "expire"])
    currency: str
    points: int
    reversed_points: int
    reverses_id: int | None
    reason: str
    source: str | None
    actor: str | None
    detail: dict[str, Any] | None = Field(description="as the transaction recorded it")
    occurred_at: datetime
    recorded_at: datetime
    postings: list[ExportedPosting]


class ExportedWebhookEvent(BaseModel):
    """A webhook event about the member (its payload depends on its type)."""

    id: int
    event_type: str = Field(examples=["points.earned"])
    created_at: datetime
    payload: dict[str, Any] = Field(description="the event's payload, as sent to subscribers")
    deliveries: list[dict[str, Any]] = Field(
        description="its deliveries, one per subscription: rows of the webhook_deliveries "
        "table, column for column (program_id and outbox_id left out): state, attempts, "
        "last_status, last_error, delivered_at..., and attempt_log: its attempts (rows of "
        "webhook_attempts: number, at, status, error...)"
    )


class ExportedErasure(BaseModel):
    """The erasure record, if the member was erased."""

    tombstone: str
    reason: str
    erased_at: datetime


def _table_rows(table: str) -> Any:
    return Field(description=f"rows of the {table} table about the member, column for column "
                 "(program_id left out); times ISO 8601, amounts strings")  # fmt: skip


EXPORT_EXAMPLE: dict[str, Any] = {
    "program": "cafe_club",
    "member": {"id": 1, "ref": "CARD-0001", "status": "active",
               "created_at": "2026-11-01T08:00:00+00:00"},
    "profile": {"tier": None, "tier_since": None, "review_at": None, "grace_until": None,
                "assigned_until": None, "segments": ["vip"], "attributes": {"city": "Lyon"},
                "purchases": 1, "joined_at": "2026-11-01T08:00:00+00:00", "birth_date": None},
    "balances": [{"currency": "points", "kind": "available", "account_balance": 250}],
    "ledger": [{"id": 1, "kind": "earn", "currency": "points", "points": 250,
                "reversed_points": 0, "reverses_id": None, "reason": "purchase",
                "source": "till-7-000123", "actor": None, "detail": None,
                "occurred_at": "2026-11-20T09:00:00+00:00",
                "recorded_at": "2026-11-20T09:00:00.120000+00:00",
                "postings": [{"account": "available", "lot_id": 1, "points": 250}]}],
    "lots": [], "events": [], "redemptions": [], "tier_changes": [], "coupons": [],
    "coupon_rollbacks": [], "rule_usage": [],
    "webhook_events": [{"id": 3, "event_type": "points.earned",
                        "created_at": "2026-11-20T09:00:00.130000+00:00",
                        "payload": {"member": "CARD-0001", "points": 250},
                        "deliveries": []}],
    "stored_answers": [], "idempotency_records": [],
    "erasure": None,
}  # fmt: skip


class MemberExport(BaseModel):
    """Everything fidelite holds about one member (GDPR access request).

    Times are ISO 8601 (UTC), amounts strings. Sections copied from a table keep the
    table's columns as they are: the export must never leave a column out.
    """

    model_config = ConfigDict(json_schema_extra={"examples": [EXPORT_EXAMPLE]})
    program: str
    member: ExportedMember
    profile: dict[str, Any] | None = _table_rows("member_states")
    balances: list[ExportedBalance]
    ledger: list[ExportedTransaction] = Field(description="oldest first")
    lots: list[dict[str, Any]] = _table_rows("lots")
    events: list[dict[str, Any]] = _table_rows("processed_events")
    redemptions: list[dict[str, Any]] = _table_rows("redemptions")
    tier_changes: list[dict[str, Any]] = _table_rows("tier_changes")
    coupons: list[dict[str, Any]] = _table_rows("coupons")
    coupon_rollbacks: list[dict[str, Any]] = Field(
        description="rows of the coupon_rollbacks table for the member's purchases (a full "
        "refund gave the single-use code the purchase used back), column for column "
        "(program_id left out): purchase_event_id, code, refund_event_id, rolled_back_at, "
        "recorded_at; oldest first"
    )
    rule_usage: list[dict[str, Any]] = _table_rows("rule_usage")
    webhook_events: list[ExportedWebhookEvent]
    stored_answers: list[dict[str, Any]] = Field(
        description="rows of the api_requests table (the answers kept for retries under an "
        "Idempotency-Key) that name the member, in the route's member step or the answer "
        "(a POST or PATCH /v1/members answer keeps the profile as it was then), column for "
        "column (program_id left out); oldest first"
    )
    idempotency_records: list[dict[str, Any]] = Field(
        description="rows of the idempotency_records table (the command line's stored "
        "answers) naming the member: their enrolment's (key member:<id>) and any whose "
        "answer names them; column for column (program_id left out)"
    )
    erasure: ExportedErasure | None


class MemberErasure(BaseModel):
    """The record of an erasure; asking again answers the same record, ``replayed``."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "member_id": 1, "tombstone": "erased-1", "reason": "erasure request via api-key:3f2a",
        "erased_at": "2026-11-21T10:00:00+00:00", "replayed": False}]})  # fmt: skip
    member_id: int = Field(description="internal member id; the books stay under it")
    tombstone: str = Field(description="the reference that replaces the member's everywhere",
                           examples=["erased-1"])  # fmt: skip
    reason: str
    erased_at: datetime
    replayed: bool = Field(description="true: erased before, nothing done now")


def _member(profile: dict[str, Any]) -> Member:
    return Member(id=profile["member_ref"], **{k: v for k, v in profile.items()
                                              if k != "member_ref"})  # fmt: skip


@router.post("/members", status_code=201, response_model=Member,
             responses={200: {"model": Member, "description": "Already enrolled"}})  # fmt: skip
def create_member(
    body: MemberCreate, svc: ServicesDep, who: CallerDep, key: IdemKey = None
) -> JSONResponse:
    """Enrol a member (201), or return the member already enrolled under this id (200)."""

    joins = svc.processor.member_profile(body.id) is None  # else 200, the member as it is
    _check_profile(svc, body.birth_date, body.joined_at, joins=joins, member=body.id)

    def run() -> tuple[int, Any]:
        profile = MemberProfile(_kept(body.segments), body.attributes, body.birth_date)
        created = svc.processor.enrol(body.id, at=body.joined_at or datetime.now(UTC),
                                      profile=profile)  # fmt: skip
        return (201 if created else 200), _member(require_member(svc, body.id))

    return once(svc, key, "POST /v1/members", body.model_dump(mode="json"), run)


def page_size(svc: Services, limit: int) -> int:
    """``limit`` as asked, or ``422 invalid_request`` at ``query.limit`` over the server's
    page size (``max_page``, 200), worded as the delivery log refuses its own cap."""
    if limit > svc.settings.max_page:
        raise Problem("invalid_request", f"query.limit: Input should be less than or equal "
                      f"to {svc.settings.max_page}")  # fmt: skip
    return limit


@router.get("/members", response_model=MemberPage)
def list_members(
    svc: ServicesDep,
    who: CallerDep,
    cursor: str | None = Query(None, description="next_cursor of the previous page"),
    limit: int = Query(50, ge=1, description="page size, at most 200"),
) -> MemberPage:
    """Members in id order, a page at a time."""
    size = page_size(svc, limit)
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
    _check_profile(svc, body.birth_date, member=member_id)

    def run() -> tuple[int, Any]:
        profile = MemberProfile(_kept(body.segments), body.attributes, body.birth_date)
        return 200, _member(svc.processor.update_profile(member_id, profile))

    return once(svc, key, f"PATCH /v1/members/{member_id}", body.model_dump(mode="json"), run)


# Documented, not re-validated: the bodies are built from the ledger's own dataclasses.
@router.get("/members/{member_id}/balance", responses={200: {"model": Balances}})
def get_balance(
    member_id: str, svc: ServicesDep, who: CallerDep,
    currency: str | None = Query(None, description="default: every currency of the program"),
) -> dict[str, Any]:  # fmt: skip
    """Available, pending, expiring-soon points and debt, per currency.

    Available leaves out points past their expiry date and, under an inactivity policy,
    points that lapsed, even before the expiry job has moved them out."""
    require_member(svc, member_id)
    ids = [c.id for c in svc.program.currencies]
    if currency is not None and currency not in ids:  # worded as the ledger route's
        raise Problem("unknown_currency", f"program {svc.program.id!r} has no currency "
                      f"{currency!r}", field="currency")  # fmt: skip
    policy, zone = svc.program.expiry, svc.program.zone
    balances = [
        svc.ledger.balance(svc.program.id, member_id, c, policy=policy, zone=zone)
        for c in ([currency] if currency else ids)
    ]
    return {"member": member_id, "balances": [vars(b) for b in balances]}


@router.get("/members/{member_id}/ledger", responses={200: {"model": LedgerPage}})
def get_ledger(
    member_id: str, svc: ServicesDep, who: CallerDep,
    before: int | None = Query(None, ge=1, le=MAX_ID, description="next_cursor of the last page"),
    limit: int = Query(50, ge=1, description="page size, at most 200"),
    currency: str | None = Query(None, description="only this currency's movements"),
) -> dict[str, Any]:  # fmt: skip
    """The member's point movements, most recently recorded first (``occurred_at`` is
    the business time, which can be earlier), with reason and source."""
    size = page_size(svc, limit)
    require_member(svc, member_id)
    rows = svc.ledger.history(svc.program.id, member_id, currency=currency, limit=size + 1,
                              before_id=before)  # fmt: skip
    entries = [vars(r) for r in rows[:size]]
    nxt = entries[-1]["transaction_id"] if len(rows) > size else None
    return {"member": member_id, "entries": entries, "next_cursor": nxt}


@router.get("/members/{member_id}/timeline", response_model=Timeline)
def get_timeline(member_id: str, svc: ServicesDep, who: CallerDep) -> Timeline:
    """The 360° view: profile, then points movements (redemptions among them) and tier
    changes by when they happened (``at``), newest first.

    Not by recording order, as the ledger history is: a purchase dated earlier but
    recorded later is listed below the later-dated ones. At equal times the most
    recently recorded comes first: tier changes before ledger transactions (a tier
    change is recorded after the points that caused it), each kind most recently
    recorded first. The ledger part is the 200 most recently recorded transactions."""
    profile = require_member(svc, member_id)
    history = svc.ledger.history(svc.program.id, member_id, limit=200)  # newest recorded first
    tiers = reversed(svc.processor.tier_timeline(member_id))  # oldest first: turned round
    items: list[PointsMovement | TierMovement] = [
        TierMovement(at=t["at"], kind=f"tier.{t['kind']}", from_=t["from_tier"],
                     to=t["to_tier"], value=t["value"], reason=t["reason"],
                     event_id=t["event_id"], until=t["assigned_until"])
        for t in tiers
    ]  # fmt: skip
    signed = svc.ledger.signed_points(svc.program.id, [h.transaction_id for h in history])
    items += [_movement(h, signed[h.transaction_id]) for h in history]
    # a stable sort: equal times keep the order above (most recently recorded first)
    items.sort(key=lambda i: i.at, reverse=True)
    return Timeline(member=_member(profile), timeline=items)


def _movement(entry: HistoryEntry, transaction_points: int) -> PointsMovement:
    """The timeline item of a ledger transaction (``transaction_points``: signed)."""
    return PointsMovement(
        at=entry.occurred_at, kind=f"points.{entry.kind}", currency=entry.currency,
        points=entry.available_change + entry.pending_change, reason=entry.reason,
        source=entry.source, transaction_id=entry.transaction_id,
        transaction_points=transaction_points, available_change=entry.available_change,
        pending_change=entry.pending_change, debt_change=entry.debt_change,
    )  # fmt: skip


# Not re-validated: the export is JSON-ready already and must reach the member whole,
# with every column of every table (the model documents it, it does not filter it).
@router.get("/members/{member_id}/export", response_model=MemberExport)
def export(member_id: str, svc: ServicesDep, who: CallerDep) -> JSONResponse:
    """Everything fidelite holds about the member (GDPR access request)."""
    with svc.db.read() as conn:
        return JSONResponse(export_member(conn, svc.program.id, member_id))


class _NotKept(Exception):
    """The answer to a request that is sent but never stored under its Idempotency-Key
    (a repeated erasure). Raised out of the idempotency layer's ``run``, it is no
    business rejection (those are stored as answers), so that layer frees the key's
    claim as it does when a handler fails: only its own claim, matched on the time it
    was made (:func:`fidelite.api.idempotency.run_once`); the route then sends ``body``
    with status 200."""

    def __init__(self, body: dict[str, Any]) -> None:
        super().__init__("answered, not stored")
        self.body = body


@router.delete("/members/{member_id}", response_model=MemberErasure)
def erase(member_id: str, svc: ServicesDep, who: CallerDep, key: IdemKey = None) -> JSONResponse:
    """Erase the member's personal data; balances and the books stay intact.

    A repeated request (the member erased before: ``replayed``) changes nothing (but
    blanks what an earlier version's erasure kept: see
    :func:`~fidelite.privacy.erase_member`), and its answer is not stored under its
    Idempotency-Key: stored, it would name the reference in its route and the tombstone
    in its body, which the export of a new member enrolled under that reference would
    then list. A retry of it is simply answered again, the same. The answer leaves the
    idempotency layer as :class:`_NotKept`, after the erasure's transaction committed:
    that layer then frees the key's claim as for any request that stored nothing, only
    the row this request claimed (matched on the time of its claim), never a retry's
    that claimed the key since."""

    def run() -> tuple[int, Any]:
        with svc.db.write() as conn:
            erasure = erase_member(conn, svc.program.id, member_id,
                                   reason=f"erasure request via {who.actor}")  # fmt: skip
        if erasure.replayed:
            raise _NotKept(erasure.as_dict())
        return 200, erasure.as_dict()

    try:
        return once(svc, key, f"DELETE /v1/members/{member_id}", {}, run, replayed=said_again)
    except _NotKept as repeated:
        return JSONResponse(jsonable_encoder(repeated.body), 200)
