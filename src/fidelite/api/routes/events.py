"""Events in: purchases, refunds, sign-ups and any named member action, one or a batch.

Each event is processed by the same code as bulk import and de-duplicated by its own
``id``: sending it again answers ``duplicate`` and posts nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection

from fidelite.api.idempotency import Keep, Outcome
from fidelite.api.problems import Problem, from_exception
from fidelite.api.routes.common import CallerDep, IdemKey, ServicesDep, once, once_keeping
from fidelite.engine import Event
from fidelite.processing import Result
from fidelite.processing.batch import Answer, process_events

router = APIRouter(prefix="/v1", tags=["events"])

PURCHASE_EXAMPLE = {
    "id": "till-7-000123", "type": "purchase", "member": "CARD-0001",
    "at": "2026-11-23T10:15:00+01:00", "amount": "23.50", "channel": "store", "store": "paris-1",
    "items": [{"sku": "ESP", "category": "coffee", "quantity": 2, "price": "2.50"}],
}  # fmt: skip


class EventBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    events: list[Event] = Field(min_length=1, description="Up to 1,000 events, applied in order.")


class TierChangeOut(BaseModel):
    at: datetime
    kind: str
    from_: str | None = Field(alias="from")
    to: str | None
    reason: str


class EventResult(BaseModel):
    """The answer to one event (documents :func:`result_body`)."""

    event_id: str
    outcome: str = Field(description="processed, or duplicate (already recorded: nothing done)")
    points: dict[str, int] = Field(description="points moved per currency; a refund's are < 0")
    transactions: list[int]
    tier_changes: list[TierChangeOut]
    trace_id: str
    decision: dict[str, Any] | None = Field(description="rules matched or not, and why")


def result_body(result: Result) -> dict[str, Any]:
    """What the till needs back: points per currency, tier changes, the decision trace."""
    decision = result.decision.as_dict() if result.decision else None
    return {
        "event_id": result.event_id,
        "outcome": result.outcome.value,
        "points": _signed_points(result),
        "transactions": [r.transaction_id for r in result.receipts],
        "tier_changes": [{"at": c.at, "kind": c.kind.value, "from": c.from_tier,
                          "to": c.to_tier, "reason": c.reason} for c in result.tier_changes],
        "trace_id": f"event:{result.event_id}",
        "decision": decision,
    }  # fmt: skip


def answer_body(event: Event, answer: Answer) -> dict[str, Any]:
    """One event's entry in a batch answer: its result, or why it was refused."""
    if isinstance(answer, Result):
        return result_body(answer)
    problem = from_exception(answer)
    if problem is None:  # not a business rejection: let it fail the request
        raise answer
    return {"event_id": event.id, "outcome": "rejected", "problem": problem.body()}


def _signed_points(result: Result) -> dict[str, int]:
    """Points the event moved per currency: earned > 0, reversed by a refund < 0."""
    out: dict[str, int] = {}
    for r in result.receipts:
        out[r.currency] = out.get(r.currency, 0) + (
            r.points if r.direction == "credit" else -r.points
        )
    return out


@router.post("/events", status_code=201,
             responses={201: {"model": EventResult},
                        200: {"model": EventResult,
                              "description": "Already processed (duplicate event id)"}},
             openapi_extra={"requestBody": {"content": {"application/json": {
    "example": PURCHASE_EXAMPLE}}}})  # fmt: skip
def post_event(event: Event, svc: ServicesDep, who: CallerDep, key: IdemKey = None) -> JSONResponse:
    """Apply one event; returns the decision (points, tier changes, trace).

    Events arriving at the same time from several clients share one transaction (group
    commit); each gets its own answer, after the commit.
    """
    svc.limiter.take(who.key.key_id, "events")

    def run(keep: Keep) -> Outcome:
        def then(conn: Connection, answer: Answer) -> None:  # in the event's transaction
            keep(conn, *answer_outcome(answer))

        return answer_outcome(svc.events.process(event, then))

    return once_keeping(svc, key, "POST /v1/events", event.model_dump(mode="json"), run)


def answer_outcome(answer: Answer) -> Outcome:
    """The response to one event: 201 processed, 200 duplicate, or the rejection's problem
    (a failure that is no business rejection is raised)."""
    if isinstance(answer, Result):
        return (200 if answer.outcome.value == "duplicate" else 201), result_body(answer)
    problem = from_exception(answer)
    if problem is None:
        raise answer
    return problem.status, problem.body()


@router.post("/events:batch")
def post_batch(
    batch: EventBatch, svc: ServicesDep, who: CallerDep, key: IdemKey = None
) -> JSONResponse:
    """Apply up to 1,000 events in order; each one succeeds or is refused on its own.

    The batch is one transaction through the bulk-import batch path: the answers are
    those the events would get one at a time, in far fewer statements.
    """
    if len(batch.events) > svc.settings.max_batch:
        raise Problem("invalid_request", f"events: at most {svc.settings.max_batch} per batch")
    # a batch costs its events, but never more than a full bucket (else it could never pass)
    svc.limiter.take(who.key.key_id, "events", cost=min(len(batch.events), svc.limiter.burst))

    def run() -> tuple[int, Any]:
        with svc.db.write() as conn:
            answers = process_events(svc.processor, conn, batch.events)
        pairs = zip(batch.events, answers, strict=True)
        return 200, {"results": [answer_body(e, a) for e, a in pairs]}

    return once(svc, key, "POST /v1/events:batch", batch.model_dump(mode="json"), run)
