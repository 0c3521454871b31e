"""Events in: purchases, refunds, sign-ups and any named member action, one or a batch;
and one event as recorded, to explain what it earned.

Each event is processed by the same code as bulk import and de-duplicated by its own
``id``: sending it again posts nothing and answers ``duplicate`` with what the event
got the first time (points, transactions, tier changes, decision trace); sending
another event under a recorded id (another member, amount, time...) answers 409
``event_id_conflict`` (:mod:`fidelite.processing.recorded`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, PlainValidator, ValidationError
from pydantic_core import PydanticCustomError
from sqlalchemy.exc import DBAPIError
from starlette.convertors import Convertor, register_url_convertor

from fidelite.api.access import bearer_token
from fidelite.api.app import Services
from fidelite.api.bodies import body_errors, lone_surrogates, query_errors
from fidelite.api.idempotency import request_hash
from fidelite.api.intake import ROUTE, EventCall, repeated_body, result_body
from fidelite.api.keys import credentials
from fidelite.api.limits import batch_refusal
from fidelite.api.problems import (
    MEDIA_TYPE,
    Problem,
    from_exception,
    invalid,
    unreadable_errors,
    unsupported_media,
    without_bom,
)
from fidelite.api.routes.common import CallerDep, IdemKey, ProblemDetails, ServicesDep, once
from fidelite.api.routes.tiers import TierChangeOut as TimelineEntry
from fidelite.engine import Event
from fidelite.engine.event import encodable
from fidelite.processing import Result
from fidelite.processing.batch import process_events
from fidelite.processing.erased import tombstones
from fidelite.processing.recorded import Repeated, Settled, read_event, settle_duplicates

router = APIRouter(prefix="/v1", tags=["events"])


class _EventIdConvertor(Convertor[str]):
    """An event id as the rest of the path, ``/`` included, never empty: ``/v1/events/``
    is no event (it is redirected to ``/v1/events``, as before, not answered 405)."""

    regex = ".+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("event_id", _EventIdConvertor())
# POST /v1/events authenticates in its group's transaction (fidelite.api.intake), not
# through the `caller` dependency of the other routes: mounted without it.
intake_router = APIRouter(prefix="/v1", tags=["events"])

PURCHASE_EXAMPLE = {
    "id": "till-7-000123", "type": "purchase", "member": "CARD-0001",
    "at": "2026-11-23T10:15:00+01:00", "amount": "23.50", "channel": "store", "store": "paris-1",
    "items": [{"sku": "ESP", "category": "coffee", "quantity": 2, "price": "2.50"}],
}  # fmt: skip


BATCH_EXAMPLE: dict[str, Any] = {"results": [
    {"event_id": "till-7-000123", "outcome": "processed", "points": {"points": 23},
     "transactions": [4411], "tier_changes": [], "trace_id": "till-7-000123", "decision": None},
    {"event_id": "till-7-000124", "outcome": "rejected", "problem": {
        "type": "https://fidelite.dev/problems/unknown_purchase", "title": "unknown purchase",
        "status": 404, "detail": "no purchase 'till-7-000099'", "code": "unknown_purchase"}},
]}  # fmt: skip


NOT_AN_OBJECT = "Input should be a valid dictionary or object to extract fields from"


@dataclass(frozen=True)
class InvalidEvent:
    """An item of a batch that is an object but not a valid event: answered on its own as
    a rejected entry, so the rest of the batch still goes through. ``errors`` are
    pydantic's, located within the event; ``raw`` is the item as sent."""

    raw: dict[str, Any]
    errors: tuple[dict[str, Any], ...]

    @property
    def event_id(self) -> str | None:
        """The item's ``id`` when it is a string an answer can carry (it may be missing,
        of another kind, or hold a lone surrogate)."""
        found = self.raw.get("id")
        return found if isinstance(found, str) and encodable(found) is None else None


def event_or_invalid(item: Any) -> Event | InvalidEvent:
    """One batch item: the event, or its validation errors when the item is an object.

    An item that is no object at all is an error of the request (the envelope): the
    whole batch gets a 422, worded as the body's own type error."""
    if isinstance(item, Event):  # a batch built in Python
        return item
    if not isinstance(item, dict):
        raise PydanticCustomError("model_attributes_type", NOT_AN_OBJECT)
    # text no answer or column can carry (an id "\ud800"): the event's own error, first
    broken = tuple({"loc": loc, "msg": why} for loc, why in lone_surrogates(item))
    try:
        event = Event.model_validate(item)
    except ValidationError as exc:
        located = {e["loc"] for e in broken}
        kept = tuple({"loc": e["loc"], "msg": e["msg"]} for e in exc.errors()
                     if e["loc"] not in located)  # fmt: skip
        return InvalidEvent(item, broken + kept)
    return InvalidEvent(item, broken) if broken else event


# Documented as an event (OpenAPI), parsed item by item: an invalid event is its entry.
BatchItem = Annotated[
    Event | InvalidEvent, PlainValidator(event_or_invalid, json_schema_input_type=Event)
]


class EventBatch(BaseModel):
    """The batch body. The envelope (an object with an ``events`` list of objects, at
    most ``max_batch``) is checked for the request; each event on its own."""

    model_config = ConfigDict(extra="forbid")
    events: list[BatchItem] = Field(
        min_length=1,
        description="Up to 1,000 events, applied in order; an invalid one is rejected "
        "in its place (invalid_event) and the others still apply.",
    )

    def hashed(self) -> dict[str, Any]:
        """The body the Idempotency-Key is checked against: each event as validated
        (so a batch of valid events hashes as ``model_dump(mode="json")`` of its events),
        an invalid one as sent."""
        return {"events": [e.raw if isinstance(e, InvalidEvent) else e.model_dump(mode="json")
                           for e in self.events]}  # fmt: skip


class EventResult(BaseModel):
    """The answer to one event (documents :func:`result_body`)."""

    event_id: str
    outcome: str = Field(
        description="processed, or duplicate (already recorded: nothing posted now; the "
        "rest tells what the event got the first time)"
    )
    points: dict[str, int] = Field(description="points moved per currency; a refund's are < 0")
    transactions: list[int]
    tier_changes: list[TimelineEntry] = Field(
        description="the tier changes it caused, each as GET /v1/events/{id} and the "
        "member's tier timeline show it (time in UTC, qualifying value, event id)"
    )
    trace_id: str
    decision: dict[str, Any] | None = Field(
        description="rules matched or not, and why; for a duplicate, the decision as "
        "recorded: event_id, member, at (UTC) and trace; none for a refund"
    )


class EventRejected(BaseModel):
    """An event of a batch that was refused (nothing of it was written)."""

    event_id: str | None = Field(description="none: the event sent has no string id")
    outcome: Literal["rejected"]
    problem: ProblemDetails


class BatchResult(BaseModel):
    """One entry per event of the batch, in the batch's order."""

    model_config = ConfigDict(json_schema_extra={"examples": [BATCH_EXAMPLE]})
    results: list[EventResult | EventRejected]


def answer_body(event: Event, answer: Settled, zone: tzinfo) -> dict[str, Any]:
    """One event's entry in a batch answer: its result (times of its earnings in
    ``zone``, the program's, as ``POST /v1/events`` answers), or why it was refused."""
    if isinstance(answer, Repeated):
        return repeated_body(answer)
    if isinstance(answer, Result):
        return result_body(answer, zone)
    problem = from_exception(answer)
    if problem is None:  # not a business rejection: let it fail the request
        raise answer
    return {"event_id": event.id, "outcome": "rejected", "problem": problem.body()}


def invalid_body(position: int, item: InvalidEvent) -> dict[str, Any]:
    """The entry of a batch item that is not a valid event: ``invalid_event`` (422) with
    each field error located in the request (``body.events.1.at``), worded as
    ``POST /v1/events`` words the same errors (:func:`invalid`)."""
    found = invalid(item.errors, prefix=("body", "events", str(position)))
    problem = Problem("invalid_event", found.detail, status=422, **found.extra)
    return {"event_id": item.event_id, "outcome": "rejected", "problem": problem.body()}


@intake_router.post("/events", status_code=201,
                   responses={201: {"model": EventResult},
                              200: {"model": EventResult,
                                    "description": "Already processed (duplicate event "
                                    "id): what the event got the first time"}},
                   openapi_extra={"requestBody": {"required": True, "content": {
    "application/json": {"schema": {"$ref": "#/components/schemas/Event"},
                         "example": PURCHASE_EXAMPLE}}}})  # fmt: skip
async def post_event(request: Request, key: IdemKey = None) -> JSONResponse:
    """Apply one event; returns the decision (points, tier changes, trace).

    An event id already recorded posts nothing: 200 ``duplicate`` with what the event
    got the first time, or 409 ``event_id_conflict`` if it was recorded with another
    member, type, time, amount, refunded purchase or coupon. An event of a type the
    program does not handle (a typo such as ``purchse``) is 422 ``unknown_event_type``,
    naming the types it handles; nothing is written and the event id stays free.

    Events arriving at the same time from several clients share one transaction (group
    commit, :mod:`fidelite.api.intake`); each gets its own answer, after the commit.
    """
    authorization = request.headers.get("authorization", "")
    return await event_response(request.app.state.services, authorization, key,
                                await request.body(),
                                content_type=request.headers.get("content-type"),
                                query=request.scope.get("query_string", b""))  # fmt: skip


async def event_response(
    svc: Services, authorization: str, key: str | None, raw: bytes,
    *, content_type: str | None = None, query: bytes = b"",
) -> JSONResponse:  # fmt: skip
    """The answer to ``POST /v1/events`` from its ``Authorization`` header, its
    ``Idempotency-Key`` header and its raw body: the route's, and the one the server
    gives before FastAPI's routing (:mod:`fidelite.api.fastpath`). Raises ``Problem``
    (401) when there is no bearer token. A body sent as another media type than JSON
    (``content_type``) is 415, answered once the caller is authenticated. A query
    string (``query``: the route takes no parameter) is refused as every other route's
    checks refuse it (:func:`~fidelite.api.bodies.checked_request`), nothing applied;
    a lone surrogate in the body is named at its field, as they name it."""
    token = bearer_token(authorization)
    event: Event | None = None
    not_json = problem = unsupported_media(content_type)
    if problem is None:
        text = without_bom(raw)
        try:
            event = Event.model_validate_json(text)
        except ValidationError as exc:
            problem = _unreadable(exc, text)
        else:  # a key given twice: the parser kept the last, which nobody may have meant
            if repeated := body_errors(text, text=False):
                event, problem = None, invalid(repeated)
        if not raw:  # no body at all: missing, as the other routes say
            problem = invalid([{"type": "missing", "loc": ("body",), "msg": "Field required"}])
    if query and (refused := _query_refusal(query, raw, not_json)) is not None:
        event, problem = None, refused
    digest = None
    if key is not None and event is not None:
        digest = request_hash(ROUTE, event.model_dump(mode="json"), json_ready=True)
    call = EventCall(credentials(token), event, problem, key, digest)
    reply = await svc.intake.answer(call)
    media = MEDIA_TYPE if reply.status >= 400 else "application/json"
    return JSONResponse(reply.body, reply.status, headers=reply.headers, media_type=media)


def _unreadable(exc: ValidationError, text: bytes) -> Problem:
    """The 422 of a body that is no valid event. A lone surrogate (``"\\ud800"``), which
    the JSON parser refuses as an "unexpected end of hex escape", is named at its field
    as the other routes name it (:func:`~fidelite.api.bodies.body_errors`); only a
    refused body pays for that look."""
    halves = [e for e in body_errors(text) if e["type"] == "text_not_utf8"]
    if halves:
        return invalid(halves)
    return invalid(unreadable_errors(exc.errors(), text), prefix=("body",))


def _query_refusal(query: bytes, raw: bytes, media: Problem | None) -> Problem | None:
    """What the route's checks answer to a request with the query string ``query``
    (:func:`~fidelite.api.bodies.query_errors`): None when it holds nothing refused, or
    when the body is refused too and sent as another media type (``media``, the 415)."""
    refused = query_errors(query, raw)
    if not refused or (media is not None and any(e["loc"][0] == "body" for e in refused)):
        return None
    return invalid(refused)


@router.post("/events:batch", response_model=BatchResult)
def post_batch(
    batch: EventBatch, svc: ServicesDep, who: CallerDep, key: IdemKey = None
) -> JSONResponse:
    """Apply up to 1,000 events in order; each one succeeds or is refused on its own.

    The batch is one transaction through the bulk-import batch path: the answers are
    those the events would get one at a time, in far fewer statements (a recorded event
    id: ``duplicate`` with what it got then, or rejected with ``event_id_conflict``).
    An event that is not valid (a time without offset, a missing field) is rejected in
    its place with ``invalid_event``; only a malformed envelope fails the request.

    Batches sent at the same time that name the same members (new ones included) are
    applied one after the other. A transaction the database aborts because of another
    writer (a deadlock, a member enrolled meanwhile) wrote nothing and is run again, up
    to 3 times in all, so a batch is not lost to a collision.
    """
    too_many = batch_refusal(len(batch.events), svc.settings.max_batch, svc.limiter)
    if too_many is not None:  # refused whole, before anything is charged or done
        raise invalid([{"loc": ("body", "events"), "msg": too_many}])
    # a batch costs its events: the rate limit counts events, however they are sent
    svc.limiter.take(who.key.key_id, "events", cost=len(batch.events))

    def run() -> tuple[int, Any]:
        events = [e for e in batch.events if isinstance(e, Event)]
        answers = iter(_applied(svc, events))
        # the valid events' answers, in order, with each invalid one's entry in its place
        results = [invalid_body(n, e) if isinstance(e, InvalidEvent)
                   else answer_body(e, next(answers), svc.program.zone)
                   for n, e in enumerate(batch.events)]  # fmt: skip
        return 200, {"results": results}

    return once(svc, key, "POST /v1/events:batch", batch.hashed(), run)


BATCH_ATTEMPTS = 3
"""How many times a batch's transaction is run before its failure is the request's."""

_TRANSIENT = {"40P01", "40001", "23505"}  # deadlock, serialization failure, unique violation


def _applied(svc: Services, events: list[Event]) -> list[Settled]:
    """The batch's events applied in one transaction, each one's answer.

    A transaction the database aborted because of another writer (PostgreSQL: a
    deadlock, a serialization failure, a row another writer inserted first, such as a
    member it enrolled meanwhile) wrote nothing: it is run again, from the start, up to
    :data:`BATCH_ATTEMPTS` times in all, as ``POST /v1/events`` applies a failed group
    again. The new run reads what the other writer committed (an event it recorded is a
    duplicate), so nothing is applied twice."""
    for attempt in range(1, BATCH_ATTEMPTS + 1):
        try:
            with svc.db.write() as conn:
                done = process_events(svc.processor, conn, events)
                return list(settle_duplicates(conn, svc.program.id, events, done))
        except DBAPIError as exc:
            if attempt == BATCH_ATTEMPTS or getattr(exc.orig, "sqlstate", None) not in _TRANSIENT:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


RECORD_EXAMPLE: dict[str, Any] = {
    "event_id": "till-7-000123", "outcome": "processed", "type": "purchase",
    "member": "CARD-0001", "at": "2026-11-23T09:15:00Z", "amount": "23.5000",
    "refund_of": None, "coupon": None, "coupon_accepted": None,
    "recorded_at": "2026-11-23T09:15:01.250000Z", "points": {"points": 23},
    "transactions": [4411], "tier_changes": [],
    "trace": [{"rule": "base", "outcome": "matched", "points": 23, "currency": "points"},
              {"rule": "coffee_bonus", "outcome": "condition_false", "points": 0}],
    "refunded_amount": "10.0000", "reversed": {"points": 9},
    "refunds": [{"event_id": "till-7-000130", "at": "2026-11-24T08:00:00Z",
                 "amount": "10.0000", "points": {"points": -9}}],
}  # fmt: skip


class RefundApplied(BaseModel):
    """A refund recorded against the event."""

    event_id: str
    at: datetime
    amount: Decimal
    points: dict[str, int] = Field(description="points it took back per currency (< 0)")


class EventRecord(BaseModel):
    """An event as recorded: why it earned what it did.

    Its fields the store keeps (items, channel, store and attributes are not kept),
    the points it moved per currency (a refund's < 0) with their ledger transactions,
    the tier changes it caused (each entry as the answer to the event gave it), the
    decision trace as recorded, and the refunds applied to it since (a purchase) or what
    it refunded (a refund: ``refunded_amount`` its amount, ``reversed`` the points it
    took back). Times in UTC, amounts as strings.
    """

    model_config = ConfigDict(serialize_by_alias=True,
                              json_schema_extra={"examples": [RECORD_EXAMPLE]})  # fmt: skip
    event_id: str
    outcome: str = Field(description="processed: only processed events are recorded")
    type: str
    member: str | None = Field(
        description="the member's reference; none: the member was erased since (the "
        "record does not link the event to the anonymised account)"
    )
    at: datetime
    amount: Decimal | None
    refund_of: str | None = Field(description="the refunded purchase (refunds)")
    coupon: str | None
    coupon_accepted: bool | None = Field(description="none: no coupon or not checked")
    recorded_at: datetime
    points: dict[str, int] = Field(description="points moved per currency; a refund's are < 0")
    transactions: list[int] = Field(description="the ledger transactions it wrote")
    tier_changes: list[TimelineEntry]
    trace: list[dict[str, Any]] = Field(
        description="each rule, matched or not, and why (rule, outcome, points, currency, "
        "note); for a refund, each earn transaction reversed (transaction_id, currency, "
        "points, written_off, debt_added, and already_expired when some of its points "
        "had expired), and each earn of a later event whose tier bonus it took back, the "
        "upgrade undone (the same, with tier_bonus_of: that event, bonus, tier, now)"
    )
    refunded_amount: Decimal = Field(
        description="a purchase: the part refunded since; a refund: the amount it refunded"
    )
    reversed: dict[str, int] = Field(
        description="points taken back, per currency (> 0): a purchase's by the refunds "
        "applied to it since; a refund's by itself (its points, negated)"
    )
    refunds: list[RefundApplied] = Field(description="refunds applied to it, oldest first")


@router.get("/events/{event_id:event_id}", response_model=EventRecord)
def get_event(event_id: str, svc: ServicesDep, who: CallerDep) -> EventRecord:
    """An event as recorded: what it earned and why (the decision trace), its points
    per currency, tier changes and the refunds applied to it. ``unknown_event`` (404)
    if no event has this id in the program.

    The id is the rest of the path: an event id may hold ``/`` (an invoice number
    ``F2026/0001``, sent as ``F2026%2F0001``, which the server decodes before routing),
    and no route lies below an event, so nothing else can be read into it.

    The event of a member erased since is answered with ``member`` null: the record is
    kept for the books, but naming the tombstone would link the event id, which the
    client knows the erased person's event by, to the anonymised account."""
    with svc.db.read() as conn:
        found = read_event(conn, svc.program.id, event_id)
        erased = found is not None and bool(tombstones(conn, svc.program.id, [found.member]))
    if found is None:
        raise Problem("unknown_event", f"no event {event_id!r} in this program")
    record = found.as_dict()
    if erased:
        record["member"] = None
    return EventRecord.model_validate(record)
