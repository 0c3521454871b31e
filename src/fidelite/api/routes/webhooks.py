"""Webhook subscriptions of the program, the delivery log and replay (admin keys).
Delivery itself is the worker's job (``fidelite webhooks deliver``); see
docs/webhooks.md."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from fidelite.api.app import Services
from fidelite.api.problems import Problem
from fidelite.api.routes.common import (
    MAX_ID,
    CallerDep,
    IdemKey,
    OptionalRowId,
    RowId,
    ServicesDep,
    once,
)
from fidelite.webhooks import attempts_of, log, replay, subscriptions

router = APIRouter(prefix="/v1", tags=["webhooks"])
PRIVATE_REFUSED = (
    "the API never subscribes private destinations (there is no allow_private field); "
    "for development, subscribe it with `fidelite webhooks add URL --allow-private`"
)
"""How the API's ``unsafe_url`` refusal of a loopback or private URL ends."""


class SubscriptionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(min_length=1, max_length=2000, examples=["https://crm.example.com/hooks"])
    event_types: list[str] = Field(min_length=1, examples=[["points.earned", "tier.changed"]])
    description: str | None = Field(default=None, max_length=200)  # the column holds 200


SUBSCRIPTION_EXAMPLE: dict[str, Any] = {
    "id": 1, "program": "cafe_club", "url": "https://crm.example.com/hooks",
    "event_types": ["points.earned", "tier.changed"], "active": True, "description": "CRM",
    "created_at": "2026-11-01T08:00:00+00:00", "allow_private": False,
}  # fmt: skip
DELIVERY_EXAMPLE: dict[str, Any] = {
    "id": 7, "subscription_id": 1, "event_id": 3, "event_type": "points.earned",
    "state": "failed", "attempts": 1, "next_attempt_at": "2026-11-20T09:00:31Z",
    "last_attempt_at": "2026-11-20T09:00:01Z", "last_status": 503, "last_error": "HTTP 503",
    "delivered_at": None, "created_at": "2026-11-20T09:00:00Z",
}  # fmt: skip


class Subscription(BaseModel):
    """A webhook subscription (its secret is never shown again after creation)."""

    model_config = ConfigDict(json_schema_extra={"examples": [SUBSCRIPTION_EXAMPLE]})
    id: int
    program: str
    url: str = Field(description="where deliveries are POSTed")
    event_types: list[str] = Field(description="event types sent, or [\"*\"] for all",
                                   examples=[["points.earned", "tier.changed"]])  # fmt: skip
    active: bool = Field(description="false once removed")
    description: str | None
    created_at: datetime
    allow_private: bool = Field(
        description="true when added with the CLI's `fidelite webhooks add --allow-private` "
        "(its loopback or private URL is then delivered to); always false for subscriptions "
        "made through the API"
    )


class NewSubscription(Subscription):
    """A subscription just created, with the secret its deliveries are signed with."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{**SUBSCRIPTION_EXAMPLE, "secret": "whsec_3q9..."}]}
    )
    secret: str = Field(description="signing secret, shown this once")


class SubscriptionList(BaseModel):
    """The program's active subscriptions, oldest first."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"subscriptions": [SUBSCRIPTION_EXAMPLE]}]}
    )
    subscriptions: list[Subscription]


DeliveryState = Literal["pending", "failed", "delivered", "dead"]
"""A delivery's state (the ``state`` filter of the delivery log takes one)."""


class Delivery(BaseModel):
    """One event sent (or to send) to one subscription, with its last outcome."""

    model_config = ConfigDict(json_schema_extra={"examples": [DELIVERY_EXAMPLE]})
    id: int
    subscription_id: int
    event_id: int = Field(description="the webhook event (outbox) id")
    event_type: str = Field(examples=["points.earned"])
    state: DeliveryState = Field(description="failed: a retry is scheduled; dead: given up")
    attempts: int = Field(description="attempts made so far")
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_status: int | None = Field(description="HTTP status of the last attempt")
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime


class DeliveryLog(BaseModel):
    """Deliveries, most recently created first (by delivery id): one page."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"deliveries": [DELIVERY_EXAMPLE], "next_cursor": None}]}
    )
    deliveries: list[Delivery]
    next_cursor: int | None = Field(
        description="pass as ?before= for the next page; null on the last page"
    )


class DeliveryAttempt(BaseModel):
    """One HTTP attempt of a delivery."""

    number: int = Field(description="1 for the first attempt")
    at: datetime
    status: int | None = Field(description="HTTP status; null: no answer")
    error: str | None = Field(examples=["HTTP 503"])
    duration_ms: int
    response: str | None = Field(description="start of the receiver's answer")


class DeliveryAttempts(BaseModel):
    """Every attempt of one delivery, oldest first."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"attempts": [{
        "number": 1, "at": "2026-11-20T09:00:01Z", "status": 503, "error": "HTTP 503",
        "duration_ms": 42, "response": "Service Unavailable"}]}]})  # fmt: skip
    attempts: list[DeliveryAttempt]


# The bodies of the subscription routes are Subscription.as_dict() (times as isoformat):
# answered as they are, so that the list reads like the creation and removal answers.
@router.get("/webhooks", response_model=SubscriptionList)
def list_subscriptions(svc: ServicesDep, who: CallerDep) -> JSONResponse:
    """Active subscriptions (secrets are never shown again)."""
    found = subscriptions.list_all(svc.db, svc.program.id)
    return JSONResponse({"subscriptions": [s.as_dict() for s in found]})


@router.post("/webhooks", status_code=201, response_model=NewSubscription)
def add_subscription(
    body: SubscriptionCreate, svc: ServicesDep, who: CallerDep, key: IdemKey = None
) -> JSONResponse:
    """Subscribe a URL; the answer carries the signing secret. A retry with the same
    Idempotency-Key answers the same subscription and secret (read back from the
    subscription: the answer stored under the key has no secret), or ``409
    subscription_removed`` if it was removed since."""

    def run() -> tuple[int, Any]:
        sub = subscriptions.add(svc.db, svc.program.id, body.url, body.event_types,
                                description=body.description,
                                allowed_by=PRIVATE_REFUSED)  # fmt: skip
        return 201, {k: v for k, v in sub.as_dict().items() if k != "secret"}

    def shown(made: dict[str, Any]) -> dict[str, Any]:
        return with_secret(svc, key, made)

    return once(svc, key, "POST /v1/webhooks", body.model_dump(mode="json"), run,
                shown=shown)  # fmt: skip


def with_secret(svc: Services, key: str | None, made: dict[str, Any]) -> dict[str, Any]:
    """The subscription answer ``made`` (as stored, without the secret) with its secret
    read back from the subscription, as ``fidelite webhooks add`` prints it. A
    subscription removed since is refused (``409 subscription_removed``): the retry must
    not read as if the URL were subscribed."""
    with svc.db.read() as conn:
        state = subscriptions.secret_of(conn, svc.program.id, int(made["id"]))
    if state is None or not state[0]:
        raise Problem("subscription_removed", f"Idempotency-Key {key!r} added subscription "
                      f"{made['id']}, removed since: nothing is subscribed; use a new key "
                      "to subscribe again", field="Idempotency-Key")  # fmt: skip
    return made | {"secret": state[1]}


@router.delete("/webhooks/{subscription_id}", response_model=Subscription)
def remove_subscription(
    subscription_id: RowId, svc: ServicesDep, who: CallerDep, key: IdemKey = None
) -> JSONResponse:
    """Stop a subscription and its undelivered deliveries."""

    def run() -> tuple[int, Any]:
        return 200, subscriptions.remove(svc.db, svc.program.id, subscription_id).as_dict()

    return once(svc, key, f"DELETE /v1/webhooks/{subscription_id}", {}, run)


@router.get("/webhooks/deliveries", response_model=DeliveryLog)
def list_deliveries(
    svc: ServicesDep,
    who: CallerDep,
    state: DeliveryState | None = Query(None, description="only deliveries in this state"),
    subscription_id: OptionalRowId = None,
    before: int | None = Query(None, ge=1, le=MAX_ID, description="next_cursor of the last page"),
    limit: int = Query(100, ge=1, le=1000),
) -> DeliveryLog:
    """The delivery log, most recently created first (by delivery id, not by last
    attempt: a delivery retried or replayed keeps its place): state, attempts, last
    status and error. One page of ``limit``; ``next_cursor`` (null on the last page),
    passed as ``?before=``, gives the next one: each delivery is on exactly one page."""
    rows = log(svc.db, svc.program.id, state=state, subscription_id=subscription_id,
               before=before, limit=limit + 1)  # fmt: skip
    page = rows[:limit]
    nxt = page[-1]["id"] if len(rows) > limit else None
    return DeliveryLog.model_validate({"deliveries": page, "next_cursor": nxt})


@router.get("/webhooks/deliveries/{delivery_id}/attempts", response_model=DeliveryAttempts)
def list_attempts(delivery_id: RowId, svc: ServicesDep, who: CallerDep) -> DeliveryAttempts:
    """Every attempt of one delivery, oldest first (status, error, duration, response)."""
    return DeliveryAttempts.model_validate(
        {"attempts": attempts_of(svc.db, svc.program.id, delivery_id)}
    )


@router.post("/webhooks/deliveries/{delivery_id}:replay", response_model=Delivery)
def replay_delivery(
    delivery_id: RowId, svc: ServicesDep, who: CallerDep, key: IdemKey = None
) -> JSONResponse:
    """Send a delivery again (dead, failed or delivered): due at the worker's next pass."""

    def run() -> tuple[int, Any]:
        return 200, as_sent(replay(svc.db, svc.program.id, delivery_id))

    return once(svc, key, f"POST /v1/webhooks/deliveries/{delivery_id}:replay", {}, run,
                shown=as_sent)  # fmt: skip


def as_sent(delivery: dict[str, Any]) -> dict[str, Any]:
    """A delivery as the delivery log writes it (:class:`Delivery`: times in UTC with
    ``Z``); also for an answer stored before, with ``+00:00``."""
    return Delivery.model_validate(delivery).model_dump(mode="json")
