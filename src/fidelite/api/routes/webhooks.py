"""Webhook subscriptions of the program, the delivery log and replay (admin keys).
Delivery itself is the worker's job (``fidelite webhooks deliver``); see
docs/webhooks.md."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from fidelite.api.routes.common import CallerDep, IdemKey, OptionalRowId, RowId, ServicesDep, once
from fidelite.webhooks import attempts_of, log, replay, subscriptions

router = APIRouter(prefix="/v1", tags=["webhooks"])


class SubscriptionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(min_length=1, max_length=2000, examples=["https://crm.example.com/hooks"])
    event_types: list[str] = Field(min_length=1, examples=[["points.earned", "tier.changed"]])
    description: str | None = Field(default=None, max_length=300)


@router.get("/webhooks")
def list_subscriptions(svc: ServicesDep, who: CallerDep) -> dict[str, Any]:
    """Active subscriptions (secrets are never shown again)."""
    return {"subscriptions": [s.as_dict() for s in subscriptions.list_all(svc.db, svc.program.id)]}


@router.post("/webhooks", status_code=201)
def add_subscription(
    body: SubscriptionCreate, svc: ServicesDep, who: CallerDep, key: IdemKey = None
) -> JSONResponse:
    """Subscribe a URL; the answer carries the signing secret, shown this once."""

    def run() -> tuple[int, Any]:
        sub = subscriptions.add(svc.db, svc.program.id, body.url, body.event_types,
                                description=body.description)  # fmt: skip
        return 201, sub.as_dict()

    return once(svc, key, "POST /v1/webhooks", body.model_dump(mode="json"), run)


@router.delete("/webhooks/{subscription_id}")
def remove_subscription(
    subscription_id: RowId, svc: ServicesDep, who: CallerDep, key: IdemKey = None
) -> JSONResponse:
    """Stop a subscription and its undelivered deliveries."""

    def run() -> tuple[int, Any]:
        return 200, subscriptions.remove(svc.db, svc.program.id, subscription_id).as_dict()

    return once(svc, key, f"DELETE /v1/webhooks/{subscription_id}", {}, run)


@router.get("/webhooks/deliveries")
def list_deliveries(
    svc: ServicesDep,
    who: CallerDep,
    state: str | None = Query(None, description="pending, failed, delivered or dead"),
    subscription_id: OptionalRowId = None,
    limit: int = Query(100, ge=1, le=1000),
) -> dict[str, Any]:
    """The delivery log, newest first: state, attempts, last status and error."""
    rows = log(svc.db, svc.program.id, state=state, subscription_id=subscription_id,
               limit=limit)  # fmt: skip
    return {"deliveries": rows}


@router.get("/webhooks/deliveries/{delivery_id}/attempts")
def list_attempts(delivery_id: RowId, svc: ServicesDep, who: CallerDep) -> dict[str, Any]:
    """Every attempt of one delivery, oldest first (status, error, duration, response)."""
    return {"attempts": attempts_of(svc.db, svc.program.id, delivery_id)}


@router.post("/webhooks/deliveries/{delivery_id}:replay")
def replay_delivery(
    delivery_id: RowId, svc: ServicesDep, who: CallerDep, key: IdemKey = None
) -> JSONResponse:
    """Send a delivery again (dead, failed or delivered): due at the worker's next pass."""

    def run() -> tuple[int, Any]:
        return 200, jsonable_encoder(replay(svc.db, svc.program.id, delivery_id))

    return once(svc, key, f"POST /v1/webhooks/deliveries/{delivery_id}:replay", {}, run)
