"""Redemptions as a till and support see them: read by id, by code or per member, and
marked used when the reward is handed over in store.

A redemption is in one of three states (:attr:`RedemptionRecord.state`): ``active``
(its code may be handed over), ``used`` (the reward was taken in store: it still
counts against the reward's stock and the member's limit, and can no longer be
cancelled, so its points cannot come back), ``cancelled`` (its points were returned,
its code is void, and it can no longer be used). The table keeps ``status`` ``active``
for a used redemption, with ``used_at`` set, so stock and limits count it as before.

Using is idempotent on a key: the same key answers the first use again (``replayed``);
a second use under another key (or none) is refused ``redemption_already_used``, naming
when and where it was used. Keys given to the API and to the CLI are kept apart
(``api:`` and ``cli:``), as the redemptions' own keys are.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Row, Select, and_, select, update
from sqlalchemy.engine import Connection

from fidelite.engine.coupon import (
    BODY_LENGTH,
    CODE_ALPHABET,
    RANDOM_ALPHABET,
    check_symbol,
    normalise,
    parse_code,
)
from fidelite.ledger.validation import MAX_TEXT, derived_key
from fidelite.processing.processor import ProcessingError, Redemption, _redemption_of
from fidelite.processing.tables import redemptions
from fidelite.store.tables import LedgerTransaction
from fidelite.webhooks import events as hooks

if TYPE_CHECKING:
    from fidelite.processing.processor import EventProcessor

REWARD_PREFIX = "RW"
"""The prefix of every reward code (``RW-3Z8W-RP6A-V43S-P``)."""
FUTURE_TOLERANCE = timedelta(minutes=5)
"""How far past the moment of the call a use's ``at`` may be (a till's clock ahead)."""
MAX_STORE = 200
"""The longest store name a use records."""

ACTIVE, USED, CANCELLED = "active", "used", "cancelled"


@dataclass(frozen=True)
class RedemptionRecord:
    """A redemption with what a till needs to check its code: the currency its points
    were spent in (the ledger's record), when it was cancelled, when and where used;
    who redeemed, cancelled and used it (``api-key:<id>``, a CLI ``--actor``; None:
    not said, or recorded before fidelite kept it), as the ledger keeps an
    adjustment's actor.

    ``replayed``: a use sent again with its key, nothing changed this time."""

    redemption: Redemption
    currency: str | None
    cancelled_at: datetime | None
    used_at: datetime | None
    used_store: str | None
    replayed: bool = False
    redeemed_by: str | None = None
    cancelled_by: str | None = None
    used_by: str | None = None

    @property
    def state(self) -> str:
        """``active``, ``used`` or ``cancelled``."""
        if self.redemption.status == CANCELLED:
            return CANCELLED
        return USED if self.used_at is not None else ACTIVE


def use_key(origin: str, key: str) -> str:
    """The key a use is stored under for a caller's ``key`` (``origin``: ``api:`` or
    ``cli:``)."""
    return derived_key(origin, key, room=MAX_TEXT)


def code_problem(code: str) -> str | None:
    """What is wrong with ``code`` as a reward code, read as a cashier types it (any
    case, spaces, with or without dashes); None if it is one (prefix ``RW``, 12 symbols,
    the right check symbol)."""
    parsed = parse_code(code)
    if parsed is not None:
        if parsed[0] != REWARD_PREFIX:
            return (f"{normalise(code)!r} is not a reward code: reward codes start with "
                    f"{REWARD_PREFIX}- (a coupon code is given with the purchase)")  # fmt: skip
        return None
    text = normalise(code)
    if not text:
        return "empty: give the reward code, e.g. RW-3Z8W-RP6A-V43S-P"
    joined = text.replace("-", "")
    if not joined.startswith(REWARD_PREFIX):
        return f"{text!r} is not a reward code: reward codes start with {REWARD_PREFIX}-"
    symbols = joined[len(REWARD_PREFIX) :]
    wanted = BODY_LENGTH + 1
    if len(symbols) != wanted:
        return (f"{text!r} has {len(symbols)} symbols after {REWARD_PREFIX}, a reward code "
                f"has {wanted} (RW-XXXX-XXXX-XXXX-C): a symbol missing or doubled?")  # fmt: skip
    body, check = symbols[:-1], symbols[-1]
    wrong = sorted({c for c in body if c not in RANDOM_ALPHABET})
    if wrong:
        hint = {"O": "0", "I": "1", "L": "1", "U": "V"}
        said = ", ".join(f"{c} (read {hint[c]}?)" if c in hint else repr(c) for c in wrong)
        return f"{text!r} holds symbols no reward code has: {said}"
    if any(c not in CODE_ALPHABET for c in body) or check_symbol(REWARD_PREFIX + body) != check:
        return (f"{text!r}: its check symbol does not match: a symbol is mistyped or two are "
                "swapped")  # fmt: skip
    return f"{text!r}: dashes out of place: write it RW-XXXX-XXXX-XXXX-C"


def _query(processor: EventProcessor) -> Select[Any]:
    spend = LedgerTransaction.__table__.alias("spend")
    back = LedgerTransaction.__table__.alias("back")
    return (
        select(
            redemptions,
            spend.c.currency.label("spent_in"),
            spend.c.actor.label("redeemed_by"),
            back.c.occurred_at.label("cancelled_at"),
            back.c.actor.label("cancelled_by"),
        )
        .select_from(
            redemptions.outerjoin(spend, spend.c.id == redemptions.c.transaction_id).outerjoin(
                back, back.c.id == redemptions.c.cancel_transaction_id
            )
        )
        .where(redemptions.c.program_id == processor.program.id)
    )


def _record(row: Row[Any], *, replayed: bool = False) -> RedemptionRecord:
    return RedemptionRecord(
        _redemption_of(row),
        None if row.spent_in is None else str(row.spent_in),
        row.cancelled_at,
        row.used_at,
        row.used_store,
        replayed=replayed,
        redeemed_by=row.redeemed_by,
        cancelled_by=row.cancelled_by,
        used_by=row.used_by,
    )


def _unknown(redemption_id: int) -> ProcessingError:
    return ProcessingError("unknown_redemption", f"no redemption {redemption_id}")


def _read(conn: Connection, processor: EventProcessor, redemption_id: int) -> RedemptionRecord:
    row = conn.execute(
        _query(processor).where(redemptions.c.id == redemption_id)
    ).one_or_none()  # fmt: skip
    if row is None:
        raise _unknown(redemption_id)
    return _record(row)


def record(processor: EventProcessor, redemption_id: int) -> RedemptionRecord:
    """The redemption ``redemption_id`` of the processor's program
    (``unknown_redemption`` otherwise)."""
    with processor.db.read() as conn:
        return _read(conn, processor, redemption_id)


def by_code(processor: EventProcessor, code: str) -> RedemptionRecord:
    """The redemption that issued ``code``, read as a cashier types it:
    ``invalid_request`` at ``code`` naming what is wrong with a code no reward code can
    be (:func:`code_problem`), ``unknown_redemption`` for a well-formed reward code the
    program never issued."""
    problem = code_problem(code)
    if problem is not None:
        raise ProcessingError("invalid_request", f"code: {problem}")
    canonical = normalise(code)
    with processor.db.read() as conn:
        row = conn.execute(
            _query(processor).where(redemptions.c.code == canonical).order_by(redemptions.c.id)
        ).first()
    if row is None:
        raise ProcessingError("unknown_redemption", f"no redemption issued code {canonical}")
    return _record(row)


def of_member(
    processor: EventProcessor, member_ref: str, *, before: int | None = None, limit: int = 50
) -> list[RedemptionRecord]:
    """The member's redemptions, cancelled and used ones included, the latest recorded
    first (by id), those with an id below ``before`` if given, at most ``limit``;
    ``unknown_member`` for a member the program does not know."""
    processor.ledger.get_member(processor.program.id, member_ref)
    query = _query(processor).where(redemptions.c.member_ref == member_ref)
    if before is not None:
        query = query.where(redemptions.c.id < before)
    with processor.db.read() as conn:
        rows = conn.execute(query.order_by(redemptions.c.id.desc()).limit(limit)).all()
    return [_record(row) for row in rows]


def _when(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()


def used_refusal(redemption_id: int, used_at: datetime, store: str | None) -> str:
    """How a use already recorded is named in a refusal."""
    where = f" in store {store!r}" if store else ""
    return f"redemption {redemption_id} was used{where} at {_when(used_at)}"


def refuse_if_used(conn: Connection, redemption_id: int) -> None:
    """Refuse ``redemption_used`` to cancel a redemption used in store: the reward was
    handed over, so its points cannot come back. Called under the member's lock."""
    row = conn.execute(
        select(redemptions.c.used_at, redemptions.c.used_store).where(
            redemptions.c.id == redemption_id
        )
    ).one()
    if row.used_at is not None:
        raise ProcessingError(
            "redemption_used",
            f"cannot cancel: {used_refusal(redemption_id, row.used_at, row.used_store)}: the "
            "reward was handed over, so its points are not returned",
            detail={"used_at": _when(row.used_at), "used_store": row.used_store},
        )


def use(
    processor: EventProcessor,
    redemption_id: int,
    *,
    key: str | None,
    at: datetime,
    now: datetime,
    store: str | None = None,
    actor: str | None = None,
) -> RedemptionRecord:
    """Record that the reward of ``redemption_id`` was taken in store at ``at`` (in
    ``store`` if given), or refuse with a code, changing nothing:
    ``unknown_redemption``; ``redemption_cancelled`` (its points were returned, its code
    is void); ``redemption_already_used`` (used before under another key, or none; the
    same ``key`` answers the first use again, ``replayed``, or ``idempotency_conflict``
    if it named another store); ``invalid_request`` for an ``at`` before the redemption
    or more than :data:`FUTURE_TOLERANCE` after ``now``, or a store name that is blank
    or too long; ``member_erased`` for a redemption of an erased member. ``actor``
    (who recorded the use: ``api-key:<id>``) is kept as ``used_by``.

    One transaction under the member's lock, the lock a cancellation takes: a use and a
    cancellation of the same redemption never both succeed."""
    if store is not None and (not store.strip() or len(store) > MAX_STORE):
        raise ProcessingError("invalid_request",
                              f"store: must be 1 to {MAX_STORE} characters, not blank")  # fmt: skip
    if actor is not None and (not actor.strip() or len(actor) > MAX_TEXT):
        raise ProcessingError("invalid_request",
                              f"actor: must be 1 to {MAX_TEXT} characters, not blank")  # fmt: skip
    if at > now + FUTURE_TOLERANCE:
        raise ProcessingError("invalid_request", f"at: {_when(at)} is in the future")
    with processor.db.write() as conn:
        member_ref = conn.execute(
            select(redemptions.c.member_ref).where(
                redemptions.c.program_id == processor.program.id,
                redemptions.c.id == redemption_id,
            )
        ).scalar_one_or_none()
        if member_ref is None:
            raise _unknown(redemption_id)
        processor.ledger.lock(conn, processor.program.id, member_ref, books=True)
        current = _read(conn, processor, redemption_id)  # as of the lock
        found = current.redemption
        if current.state == CANCELLED:
            when = "" if current.cancelled_at is None else f" at {_when(current.cancelled_at)}"
            raise ProcessingError(
                "redemption_cancelled",
                f"cannot use redemption {redemption_id}: it was cancelled{when}: its code "
                f"{found.code} is void and its points were returned",
                detail={"cancelled_at": current.cancelled_at and _when(current.cancelled_at)},
            )
        if current.used_at is not None:
            stored = conn.execute(
                select(redemptions.c.used_key).where(redemptions.c.id == redemption_id)
            ).scalar_one()
            if key is not None and stored == key:
                if (current.used_store or None) != (store or None):
                    raise ProcessingError(
                        "idempotency_conflict",
                        f"key already used to record redemption {redemption_id} as used in "
                        f"store {current.used_store!r}",
                    )
                return replace(current, replayed=True)
            before = used_refusal(redemption_id, current.used_at, current.used_store)
            raise ProcessingError(
                "redemption_already_used",
                f"cannot use again: {before}",
                detail={"used_at": _when(current.used_at), "used_store": current.used_store},
            )
        if at < found.redeemed_at:
            raise ProcessingError(
                "invalid_request",
                f"at: {_when(at)} is before the redemption ({_when(found.redeemed_at)})",
            )
        # a new use changes the member's record: refused for an erased member
        processor.ledger.lock(conn, processor.program.id, found.member_ref)
        conn.execute(
            update(redemptions)
            .where(
                and_(
                    redemptions.c.id == redemption_id,
                    redemptions.c.status == ACTIVE,
                    redemptions.c.used_at.is_(None),
                )
            )
            .values(used_at=at, used_store=store, used_key=key, used_by=actor)
        )
        processor._announce(conn, hooks.REWARD_USED, found.member_ref, {
            "redemption_id": redemption_id, "reward_id": found.reward_id,
            "code": found.code, "used_at": at.isoformat(), "used_store": store,
        })  # fmt: skip
        return _read(conn, processor, redemption_id)
