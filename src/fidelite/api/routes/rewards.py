"""The rewards catalogue, redemptions and their cancellation."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from fidelite.api.problems import Problem
from fidelite.api.routes.common import CallerDep, IdemKey, RowId, ServicesDep, once
from fidelite.processing import Redemption

router = APIRouter(prefix="/v1", tags=["rewards"])


class RedemptionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    member: str = Field(min_length=1, max_length=200, examples=["CARD-0001"])
    reward: str = Field(min_length=1, max_length=64, examples=["free_coffee"])


def _body(r: Redemption) -> dict[str, Any]:
    return {"id": r.id, "member": r.member_ref, "reward": r.reward_id, "points": r.points,
            "transaction_id": r.transaction_id, "code": r.code, "status": r.status}  # fmt: skip


@router.get("/rewards")
def list_rewards(svc: ServicesDep, who: CallerDep) -> dict[str, Any]:
    """The catalogue: cost, kind, stock, per-member limit, tiers and validity."""
    return {"rewards": [r.model_dump(mode="json") for r in svc.program.rewards]}


@router.post("/redemptions", status_code=201)
def redeem(
    body: RedemptionCreate, svc: ServicesDep, who: CallerDep, key: IdemKey = None
) -> JSONResponse:
    """Spend a reward's cost and issue its code (Idempotency-Key required)."""
    if not key:
        raise Problem("invalid_request", "Idempotency-Key: required for redemptions")
    svc.limiter.take(who.key.key_id, "redemptions")

    def run() -> tuple[int, Any]:
        done = svc.processor.redeem(body.member, body.reward, key=f"api:{key}",
                                    at=datetime.now(UTC))  # fmt: skip
        return 201, _body(done)

    return once(svc, key, "POST /v1/redemptions", body.model_dump(mode="json"), run)


@router.post("/redemptions/{redemption_id}:cancel")
def cancel(
    redemption_id: RowId, svc: ServicesDep, who: CallerDep, key: IdemKey = None
) -> JSONResponse:
    """Cancel a redemption: its points come back and the stock is freed."""

    def run() -> tuple[int, Any]:
        return 200, _body(svc.processor.cancel_redemption(redemption_id, at=datetime.now(UTC)))

    return once(svc, key, f"POST /v1/redemptions/{redemption_id}:cancel", {}, run)
