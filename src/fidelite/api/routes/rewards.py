"""The rewards catalogue, redemptions, their cancellation and their use in store, and
the reads a till checks a reward code with (by id, by code, per member)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from fidelite.api.app import Services
from fidelite.api.idempotency import said_again
from fidelite.api.problems import Problem
from fidelite.api.routes.common import MAX_ID, CallerDep, IdemKey, RowId, ServicesDep, once
from fidelite.api.routes.members import page_size
from fidelite.engine.event import Instant
from fidelite.engine.rewards import stock_left
from fidelite.ledger.validation import redemption_key
from fidelite.processing import ProcessingError, Redemption
from fidelite.processing import redemptions as found
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
        "currency": "points", "transaction_id": 381, "code": "RW-3Z8W-RP6A-V43S-P",
        "status": "active", "replayed": False}]})  # fmt: skip
    id: int = Field(description="cancel with POST /v1/redemptions/{id}:cancel")
    member: str
    reward: str = Field(description="the reward's id")
    points: int = Field(description="points spent")
    currency: str | None = Field(
        default=None,
        description="the currency the points were spent in (the ledger's record; null only "
        "for a redemption whose spend the ledger does not name)",
    )
    transaction_id: int = Field(description="the ledger's spend transaction")
    code: str = Field(description="the code the member presents")
    status: Literal["active", "cancelled", "used"] = Field(
        description="as it is now, also in an answer sent again: a redemption cancelled "
        "since is 'cancelled' (its code is void), one taken in store since is 'used'"
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


class RedemptionState(BaseModel):
    """A redemption as a till checks its code: its state, the reward it gives (as the
    program's catalogue describes it now), what it cost and when it was redeemed,
    cancelled or used."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": 12, "member": "CARD-0001", "code": "RW-3Z8W-RP6A-V43S-P", "status": "used",
        "reward": "free_coffee", "name": "Free coffee", "kind": "free_product",
        "value": None, "sku": "ESP", "partner": None, "points": 150, "currency": "points",
        "redeemed_at": "2027-03-01T09:30:00Z", "transaction_id": 381,
        "cancelled_at": None, "cancel_transaction_id": None,
        "used_at": "2027-03-01T09:41:00Z", "used_store": "paris-04",
        "redeemed_by": "api-key:3f9a1c2b7d4e", "cancelled_by": None,
        "used_by": "api-key:3f9a1c2b7d4e"}]})  # fmt: skip
    id: int
    member: str
    code: str = Field(description="the code the member presents, as issued")
    status: Literal["active", "used", "cancelled"] = Field(
        description="active: the reward may be handed over (then POST "
        "/v1/redemptions/{id}:use); used: taken in store (`used_at`), no longer "
        "cancellable; cancelled: its points were returned, its code is void"
    )
    reward: str = Field(description="the reward's id")
    name: str | None = Field(description="the reward's name; null: no longer in the catalogue")
    kind: RewardKind | None = Field(description="null: no longer in the catalogue")
    value: Decimal | None = Field(description="amount or percent of a discount")
    sku: str | None = Field(description="product given (free_product)")
    partner: str | None = Field(description="partner of a partner reward")
    points: int = Field(description="points spent (the reward's cost when redeemed)")
    currency: str | None = Field(description="the currency the points were spent in")
    redeemed_at: datetime
    transaction_id: int = Field(description="the ledger's spend transaction")
    cancelled_at: datetime | None = Field(description="when cancelled; null: not cancelled")
    cancel_transaction_id: int | None = Field(description="the ledger's reversing transaction")
    used_at: datetime | None = Field(description="when taken in store; null: not used")
    used_store: str | None = Field(description="the store the use named, if any")
    redeemed_by: str | None = Field(
        description="who redeemed it: `api-key:<key id>`, or the `--actor` of `fidelite "
        "rewards redeem`, as the ledger records an adjustment's actor; null: not said (a "
        "redemption recorded before fidelite kept it)",
        examples=["api-key:3f9a1c2b7d4e"],
    )
    cancelled_by: str | None = Field(
        description="who cancelled it (as `redeemed_by`); null: not cancelled, or not said",
    )
    used_by: str | None = Field(
        description="who recorded its use in store (as `redeemed_by`); null: not used, or not said",
    )


class RedemptionUsed(RedemptionState):
    """A redemption marked used in store."""

    replayed: bool = Field(
        description="true: nothing done now (a use sent again with its Idempotency-Key)"
    )


class RedemptionPage(BaseModel):
    """A member's redemptions, the latest recorded first."""

    member: str
    redemptions: list[RedemptionState]
    next_cursor: int | None = Field(description="pass as ?before= for the next page")


class RedemptionUse(BaseModel):
    """Where and when the reward was handed over (both optional)."""

    model_config = ConfigDict(extra="forbid")
    at: Instant | None = Field(
        default=None,
        description="when the reward was handed over (default: now); not before the "
        "redemption, nor more than 5 minutes ahead of the server's clock",
    )
    store: str | None = Field(
        default=None, min_length=1, max_length=found.MAX_STORE, examples=["paris-04"]
    )


def _state(svc: Services, rec: found.RedemptionRecord) -> dict[str, Any]:
    r = rec.redemption
    reward = svc.program.reward(r.reward_id)
    return {
        "id": r.id, "member": r.member_ref, "code": r.code, "status": rec.state,
        "reward": r.reward_id, "name": reward and reward.name, "kind": reward and reward.kind,
        "value": reward and reward.value, "sku": reward and reward.sku,
        "partner": reward and reward.partner, "points": r.points, "currency": rec.currency,
        "redeemed_at": r.redeemed_at, "transaction_id": r.transaction_id,
        "cancelled_at": rec.cancelled_at, "cancel_transaction_id": r.cancel_transaction_id,
        "used_at": rec.used_at, "used_store": rec.used_store,
        "redeemed_by": rec.redeemed_by, "cancelled_by": rec.cancelled_by,
        "used_by": rec.used_by,
    }  # fmt: skip


def _body(r: Redemption, currency: str | None) -> RedemptionOut:
    back = {} if r.returned is None else r.returned.as_dict()
    return RedemptionOut(id=r.id, member=r.member_ref, reward=r.reward_id, points=r.points,
                         currency=currency, transaction_id=r.transaction_id, code=r.code,
                         status=r.status, replayed=r.replayed, **back)  # fmt: skip


def _answer(svc: Services, r: Redemption) -> RedemptionOut:
    """The answer to a redemption or cancellation just made, naming the currency its
    points were spent in as the ledger recorded it (a reward priced in stars spends
    stars, whatever the program's default currency)."""
    return _body(r, found.record(svc.processor, r.id).currency)


def _as_now(svc: Services, stored: Any) -> Any:
    """A stored redemption answer sent again, as the redemption is now, the way the CLI
    answers a retried ``rewards redeem --key``: its current status (a redemption
    cancelled since says ``cancelled``, so a till replaying its key never hands over a
    void code) and ``"replayed": true``. A stored refusal is sent as it was."""
    if not isinstance(stored, dict) or not isinstance(stored.get("id"), int):
        return stored
    try:
        now = svc.processor.redemption(stored["id"])
        rec = found.record(svc.processor, stored["id"])
    except ProcessingError:  # not expected: redemptions are never deleted
        return said_again(stored)
    again = replace(now, replayed=True, status=rec.state)
    return _body(again, rec.currency).model_dump(mode="json")


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
                                    at=datetime.now(UTC), actor=who.actor)  # fmt: skip
        return 201, _answer(svc, done)

    return once(svc, key, "POST /v1/redemptions", body.model_dump(mode="json"), run,
                replayed=lambda stored: _as_now(svc, stored))  # fmt: skip


@router.post("/redemptions/{redemption_id}:cancel", response_model=RedemptionOut)
def cancel(
    redemption_id: RowId, svc: ServicesDep, who: CallerDep, key: IdemKey = None
) -> JSONResponse:
    """Cancel a redemption: its points come back and the stock is freed."""

    def run() -> tuple[int, Any]:
        done = svc.processor.cancel_redemption(redemption_id, at=datetime.now(UTC),
                                               actor=who.actor)  # fmt: skip
        return 200, _answer(svc, done)

    return once(svc, key, f"POST /v1/redemptions/{redemption_id}:cancel", {}, run,
                replayed=lambda stored: _as_now(svc, stored))  # fmt: skip


@router.get("/redemptions", response_model=RedemptionState)
def find_by_code(
    svc: ServicesDep,
    who: CallerDep,
    code: str = Query(
        min_length=1,
        max_length=200,
        description="the reward code as presented: any case, with or without its dashes "
        "and spaces (RW-3Z8W-RP6A-V43S-P, rw3z8wrp6av43sp)",
        examples=["RW-3Z8W-RP6A-V43S-P"],
    ),
) -> RedemptionState:
    """The redemption that issued a reward code: is it still active, used or cancelled?

    A code no reward code can be (a symbol mistyped, missing or swapped, the check
    symbol wrong) is refused 422 naming what is wrong; a well-formed code the program
    never issued is 404 ``unknown_redemption``."""
    return RedemptionState.model_validate(_state(svc, found.by_code(svc.processor, code)))


@router.get("/redemptions/{redemption_id}", response_model=RedemptionState)
def get_redemption(redemption_id: RowId, svc: ServicesDep, who: CallerDep) -> RedemptionState:
    """One redemption: its state (active, used, cancelled), reward, cost, times and code."""
    return RedemptionState.model_validate(_state(svc, found.record(svc.processor, redemption_id)))


@router.get("/members/{member_id}/redemptions", response_model=RedemptionPage)
def member_redemptions(
    member_id: str, svc: ServicesDep, who: CallerDep,
    before: int | None = Query(None, ge=1, le=MAX_ID, description="next_cursor of the last page"),
    limit: int = Query(50, ge=1, description="page size, at most 200"),
) -> RedemptionPage:  # fmt: skip
    """The member's redemptions, used and cancelled ones included, the latest recorded
    first (by id), a page at a time."""
    size = page_size(svc, limit)
    rows = found.of_member(svc.processor, member_id, before=before, limit=size + 1)
    page = [RedemptionState.model_validate(_state(svc, r)) for r in rows[:size]]
    nxt = page[-1].id if len(rows) > size else None
    return RedemptionPage(member=member_id, redemptions=page, next_cursor=nxt)


@router.post("/redemptions/{redemption_id}:use", response_model=RedemptionUsed)
def use(
    redemption_id: RowId,
    svc: ServicesDep,
    who: CallerDep,
    body: RedemptionUse | None = None,
    key: IdemKey = None,
) -> JSONResponse:
    """Mark a redemption used: the reward was handed over in store. A used redemption
    can no longer be cancelled (``redemption_used``); a cancelled one cannot be used
    (``redemption_cancelled``); a second use under another key, or none, is refused
    (``redemption_already_used``, naming when and where it was used). Sent again with
    its Idempotency-Key, the first answer is given again."""
    ask = body or RedemptionUse()

    def run() -> tuple[int, Any]:
        now = datetime.now(UTC)
        done = found.use(svc.processor, redemption_id,
                         key=None if key is None else found.use_key("api:", key),
                         at=ask.at or now, now=now, store=ask.store,
                         actor=who.actor)  # fmt: skip
        return 200, RedemptionUsed.model_validate(_state(svc, done) | {"replayed": done.replayed})

    return once(svc, key, f"POST /v1/redemptions/{redemption_id}:use",
                ask.model_dump(mode="json"), run, replayed=said_again)  # fmt: skip
