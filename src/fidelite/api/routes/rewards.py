"""The rewards catalogue, redemptions and their cancellation."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from fidelite.api.app import Services
from fidelite.api.idempotency import said_again
from fidelite.api.problems import Problem
from fidelite.api.routes.common import CallerDep, IdemKey, RowId, ServicesDep, once
from fidelite.engine.rewards import stock_left
from fidelite.ledger.validation import redemption_key
from fidelite.processing import ProcessingError, Redemption
from fidelite.program.reward import RewardKind

router = APIRouter(prefix="/v1", tags=["rewards"])


class RedemptionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    member: str = Field(min_length=1, max_length=200, examples=["CARD-0001"])
    reward: str = Field(min_length=1, max_length=64, examples=["free_coffee"])


class RewardOut(BaseModel):
    """A catalogue entry, as the program defines it (``stock``, ``per_member_limit``:
    null means unlimited), and the stock left to give now (``stock_left``)."""

    id: str = Field(examples=["free_coffee"])
    name: str = Field(examples=["Free coffee"])
    kind: RewardKind
    cost: int = Field(description="points spent to redeem", examples=[150])
    currency: str = Field(
        description="the currency the cost is spent in: the reward's own, or the program's "
        "default currency when the program file names none (as `fidelite rewards list` "
        "gives it)",
        examples=["points"],
    )
    value: Decimal | None = Field(description="amount or percent of a discount")
    sku: str | None = Field(description="product given (free_product)")
    partner: str | None = Field(description="partner of a partner reward")
    stock: int | None = Field(
        description="how many the program gives in all, as its file defines it (it does not "
        "go down as members redeem: see `stock_left`); null: unlimited"
    )
    per_member_limit: int | None = Field(description="redemptions per member; null: unlimited")
    tiers: list[str] = Field(description="tiers that may redeem it; empty: every tier")
    valid_from: datetime | None
    valid_until: datetime | None
    stock_left: int | None = Field(
        description="left to give now: `stock` less the redemptions not cancelled (never "
        "below 0), what a redemption checks; null: unlimited",
        examples=[3],
    )


REWARD_EXAMPLE: dict[str, Any] = {
    "id": "free_coffee", "name": "Free coffee", "kind": "free_product", "cost": 150,
    "currency": "points", "value": None, "sku": "ESP", "partner": None, "stock": None,
    "per_member_limit": 1, "tiers": [], "valid_from": None, "valid_until": None, "stock_left": None,
}  # fmt: skip


class RewardCatalogue(BaseModel):
    """The program's rewards, in the program's order."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"rewards": [REWARD_EXAMPLE]}]})
    rewards: list[RewardOut]


class ExpiredLot(BaseModel):
    """Points a cancellation put back into a lot already past its expiry date."""

    expires_at: datetime
    points: int


class RedemptionOut(BaseModel):
    """A redemption: the points spent and the code to hand over."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": 12, "member": "CARD-0001", "reward": "free_coffee", "points": 150,
        "transaction_id": 381, "code": "RW-3Z8W-RP6A-V43S-P", "status": "active",
        "replayed": False}]})  # fmt: skip
    id: int = Field(description="cancel with POST /v1/redemptions/{id}:cancel")
    member: str
    reward: str = Field(description="the reward's id")
    points: int = Field(description="points spent")
    transaction_id: int = Field(description="the ledger's spend transaction")
    code: str = Field(description="the code the member presents")
    status: Literal["active", "cancelled"] = Field(
        description="as it is now, also in an answer sent again: a redemption cancelled "
        "since is 'cancelled' (its code is void)"
    )
    replayed: bool = Field(
        description="true: nothing done now (a redemption sent again with its "
        "Idempotency-Key, a cancellation of a redemption already cancelled)"
    )
    points_spendable: int | None = Field(
        default=None,
        description="cancelled: of `points`, those back in lots still valid at the "
        "cancellation, spendable; null while active",
    )
    points_expired: int | None = Field(
        default=None,
        description="cancelled: of `points`, those back in lots already past their expiry "
        "date at the cancellation: they keep their date, so they expired at once (recorded "
        "as expired points, not spendable); null while active",
    )
    debt_repaid: int | None = Field(
        default=None,
        description="cancelled: of `points`, those that repaid the member's debt first; "
        "null while active",
    )
    written_off_restored: int | None = Field(
        default=None,
        description="cancelled: of `points`, those that went back to the write-off they "
        "had become (spent, then written off by a refund of their purchase under "
        "`shortfall: within_balance`): not spendable; null while active",
    )
    expired_lots: list[ExpiredLot] | None = Field(
        default=None,
        description="cancelled: the expiry date of each lot `points_expired` went back "
        "to, with its points, earliest first; null while active",
    )


def _body(r: Redemption) -> RedemptionOut:
    back = {} if r.returned is None else r.returned.as_dict()
    return RedemptionOut(id=r.id, member=r.member_ref, reward=r.reward_id, points=r.points,
                         transaction_id=r.transaction_id, code=r.code, status=r.status,
                         replayed=r.replayed, **back)  # fmt: skip


def _as_now(svc: Services, stored: Any) -> Any:
    """A stored redemption answer sent again, as the redemption is now, the way the CLI
    answers a retried ``rewards redeem --key``: its current status (a redemption
    cancelled since says ``cancelled``, so a till replaying its key never hands over a
    void code) and ``"replayed": true``. A stored refusal is sent as it was."""
    if not isinstance(stored, dict) or not isinstance(stored.get("id"), int):
        return stored
    try:
        now = svc.processor.redemption(stored["id"])
    except ProcessingError:  # not expected: redemptions are never deleted
        return said_again(stored)
    return _body(replace(now, replayed=True)).model_dump(mode="json")


@router.get("/rewards", response_model=RewardCatalogue)
def list_rewards(svc: ServicesDep, who: CallerDep) -> RewardCatalogue:
    """The catalogue: cost, kind, stock and stock left, per-member limit, tiers and
    validity."""
    redeemed = svc.processor.redeemed_counts()
    rewards = [
        RewardOut.model_validate(
            r.model_dump()
            | {
                "currency": svc.program.currency_of(r.currency),
                "stock_left": stock_left(r.stock, redeemed.get(r.id, 0)),
            }
        )
        for r in svc.program.rewards
    ]
    return RewardCatalogue(rewards=rewards)


@router.post("/redemptions", status_code=201, response_model=RedemptionOut)
def redeem(
    body: RedemptionCreate, svc: ServicesDep, who: CallerDep, key: IdemKey = None
) -> JSONResponse:
    """Spend a reward's cost and issue its code (Idempotency-Key required)."""
    if not key:
        raise Problem("invalid_request", "Idempotency-Key: required for redemptions")
    svc.limiter.take(who.key.key_id, "redemptions")

    def run() -> tuple[int, Any]:
        done = svc.processor.redeem(body.member, body.reward, key=redemption_key("api:", key),
                                    at=datetime.now(UTC))  # fmt: skip
        return 201, _body(done)

    return once(svc, key, "POST /v1/redemptions", body.model_dump(mode="json"), run,
                replayed=lambda stored: _as_now(svc, stored))  # fmt: skip


@router.post("/redemptions/{redemption_id}:cancel", response_model=RedemptionOut)
def cancel(
    redemption_id: RowId, svc: ServicesDep, who: CallerDep, key: IdemKey = None
) -> JSONResponse:
    """Cancel a redemption: its points come back and the stock is freed."""

    def run() -> tuple[int, Any]:
        return 200, _body(svc.processor.cancel_redemption(redemption_id, at=datetime.now(UTC)))

    return once(svc, key, f"POST /v1/redemptions/{redemption_id}:cancel", {}, run,
                replayed=lambda stored: _as_now(svc, stored))  # fmt: skip
