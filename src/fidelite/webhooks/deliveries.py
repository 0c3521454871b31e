"""The delivery log and manual replay.

Every attempt is kept (``webhook_attempts``: when, HTTP status or error, time taken,
the start of the response), so an operator can see why a receiver refused an event.
A replay makes a delivery (dead, failed or even delivered) ``pending`` and due now; its
earlier attempts stay in the log and numbering continues. A dead delivery that fails
again on replay is dead again at once (one attempt per replay); one that had attempts
left keeps retrying on the normal schedule.

Several deliveries are replayed all or none (:func:`replay_all`). A delivery whose
event a member's erasure anonymised (stopped ``dead`` with ``member erased``, or
delivered before it) is never replayed: its event now carries only the tombstone,
and sending it under the event id receivers already hold with the member's reference
would tell them which tombstone that reference became.

A replay racing that erasure (PostgreSQL) cannot send the tombstone either: the replay
locks the members its events are about (as the erasure does) before it checks, so one
waits for the other. An erasure first: the replay then sees the anonymised event and
refuses it. The replay first: the erasure then sees the delivery ``pending`` and stops
it. (Making the replay's ``UPDATE`` conditional would not do: under READ COMMITTED the
erasure's ``UPDATE ... WHERE state IN ('pending', 'failed')`` skips a delivered row a
replay has made pending but not yet committed, without waiting for it.) The worker also
refuses to send a delivery whose event is anonymised (see :mod:`fidelite.webhooks.worker`).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update

from fidelite.store import Database
from fidelite.store.locking import lock_member_refs
from fidelite.webhooks.errors import WebhookError
from fidelite.webhooks.tables import attempts, deliveries, outbox

STATES = ("pending", "failed", "delivered", "dead")
MAX_LIMIT = 1001  # a page of at most 1,000, and the one more that says another follows


def log(
    db: Database,
    program_id: str,
    *,
    state: str | None = None,
    subscription_id: int | None = None,
    delivery_id: int | None = None,
    before: int | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """The program's deliveries, most recently created first (by delivery id), with their
    last outcome: at most ``limit`` (1 to 1,001: a page of up to 1,000 and one more, which
    says whether another page follows), only those with an id below ``before`` if given
    (the last id of the page before, so each delivery is on exactly one page)."""
    if state is not None and state not in STATES:
        raise WebhookError(
            "invalid_request", f"state: {state!r} is not one of {', '.join(STATES)}", field="state"
        )
    if not 1 <= limit <= MAX_LIMIT:
        raise WebhookError("invalid_request", "limit: must be between 1 and 1000", field="limit")
    query = (
        select(
            deliveries.c.id, deliveries.c.subscription_id, deliveries.c.outbox_id.label("event_id"),
            outbox.c.event_type, deliveries.c.state, deliveries.c.attempts,
            deliveries.c.next_attempt_at, deliveries.c.last_attempt_at, deliveries.c.last_status,
            deliveries.c.last_error, deliveries.c.delivered_at, deliveries.c.created_at,
        )
        .join(outbox, outbox.c.id == deliveries.c.outbox_id)
        .where(deliveries.c.program_id == program_id)
        .order_by(deliveries.c.id.desc())
        .limit(limit)
    )  # fmt: skip
    if state is not None:
        query = query.where(deliveries.c.state == state)
    if delivery_id is not None:
        query = query.where(deliveries.c.id == delivery_id)
    if subscription_id is not None:
        query = query.where(deliveries.c.subscription_id == subscription_id)
    if before is not None:
        query = query.where(deliveries.c.id < before)
    with db.read() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def attempts_of(db: Database, program_id: str, delivery_id: int) -> list[dict[str, Any]]:
    """Every attempt of one delivery, oldest first."""
    with db.read() as conn:
        _require(conn, program_id, delivery_id)
        rows = conn.execute(
            select(attempts.c.number, attempts.c.at, attempts.c.status, attempts.c.error,
                   attempts.c.duration_ms, attempts.c.response)
            .where(attempts.c.delivery_id == delivery_id)
            .order_by(attempts.c.id)
        ).mappings()  # fmt: skip
        return [dict(r) for r in rows]


def replay(
    db: Database, program_id: str, delivery_id: int, *, at: datetime | None = None
) -> dict[str, Any]:
    """Send a delivery again: back to ``pending`` and due now (see the module docstring)."""
    return replay_all(db, program_id, [delivery_id], at=at)[0]


def replay_all(
    db: Database, program_id: str, delivery_ids: list[int], *, at: datetime | None = None
) -> list[dict[str, Any]]:
    """Send deliveries again, all or none: every id is checked first (``unknown_delivery``
    naming each id the program has no delivery for, else ``member_erased`` naming each
    one about an erased member), in the transaction that then replays them all. Returns
    their log entries in the order asked (an id given twice is replayed once)."""
    now = at or datetime.now(UTC)
    ids = list(dict.fromkeys(delivery_ids))
    with db.write() as conn:
        _require_all(conn, program_id, ids)
        _lock_members(conn, program_id, ids)
        _refuse_erased(conn, ids)
        done: dict[int, int] = dict(
            conn.execute(
                select(attempts.c.delivery_id, func.count())
                .where(attempts.c.delivery_id.in_(ids))
                .group_by(attempts.c.delivery_id)
            ).all()
        )
        for delivery_id in ids:
            conn.execute(
                update(deliveries)
                .where(deliveries.c.id == delivery_id)
                .values(state="pending", attempts=int(done.get(delivery_id) or 0),
                        next_attempt_at=now, lease_token=None, lease_until=None,
                        delivered_at=None)
            )  # fmt: skip
    return [log(db, program_id, delivery_id=d)[0] for d in ids]


def _require_all(conn: Any, program_id: str, delivery_ids: list[int]) -> None:
    """Raise ``unknown_delivery`` naming every id of ``delivery_ids`` that is no delivery
    of the program (one id: as :func:`_require` says it)."""
    found = set(
        conn.execute(
            select(deliveries.c.id).where(
                deliveries.c.id.in_(delivery_ids), deliveries.c.program_id == program_id
            )
        ).scalars()
    )
    missing = [i for i in delivery_ids if i not in found]
    if len(missing) == 1 and len(delivery_ids) == 1:
        _require(conn, program_id, missing[0])
    if missing:
        named = ", ".join(str(i) for i in missing)
        kind = "deliveries" if len(missing) > 1 else "delivery"
        raise WebhookError(
            "unknown_delivery",
            f"delivery_id: no {kind} {named} in program {program_id!r}; nothing replayed",
            field="delivery_id",
        )


def _lock_members(conn: Any, program_id: str, delivery_ids: list[int]) -> None:
    """Lock the members the deliveries' events are about (PostgreSQL; SQLite is serial),
    as an erasure does, so a replay and an erasure of one of them run one after the
    other: what :func:`_refuse_erased` reads next is then final for this transaction."""
    refs = conn.execute(
        select(outbox.c.member_ref)
        .join(deliveries, deliveries.c.outbox_id == outbox.c.id)
        .where(deliveries.c.id.in_(delivery_ids), outbox.c.member_ref.is_not(None))
    ).scalars()
    lock_member_refs(conn, program_id, {str(ref) for ref in refs})


def _require(conn: Any, program_id: str, delivery_id: int) -> None:
    found = conn.execute(
        select(deliveries.c.id).where(
            deliveries.c.id == delivery_id, deliveries.c.program_id == program_id
        )
    ).first()
    if found is None:
        raise WebhookError(
            "unknown_delivery",
            f"delivery_id: no delivery {delivery_id} in program {program_id!r}",
            field="delivery_id",
        )


def erased_deliveries(conn: Any, delivery_ids: list[int]) -> list[int]:
    """Of ``delivery_ids``, those whose event was anonymised by a member's erasure
    (its payload is the tombstone's ``{"member": "erased-<id>", "erased": true}``)."""
    rows = conn.execute(
        select(deliveries.c.id, outbox.c.payload)
        .join(outbox, outbox.c.id == deliveries.c.outbox_id)
        .where(deliveries.c.id.in_(delivery_ids))
        .order_by(deliveries.c.id)
    ).all()
    return [int(row.id) for row in rows if anonymised(row.payload)]


def anonymised(payload: Any) -> bool:
    """Whether an event's payload is a member's tombstone (its member was erased)."""
    if isinstance(payload, str):
        payload = json.loads(payload)
    return isinstance(payload, dict) and payload.get("erased") is True


def _refuse_erased(conn: Any, delivery_ids: list[int]) -> None:
    """Raise ``member_erased`` naming every delivery of ``delivery_ids`` about an erased
    member (see the module docstring)."""
    erased = erased_deliveries(conn, delivery_ids)
    if erased:
        named = ", ".join(str(i) for i in erased)
        whole = "" if len(delivery_ids) == 1 else "; nothing replayed"
        raise WebhookError(
            "member_erased",
            f"delivery_id: {'deliveries' if len(erased) > 1 else 'delivery'} {named}: "
            "about a member erased since, never sent again (the event keeps only the "
            "member's tombstone, which its event id would link to the reference receivers "
            f"already have){whole}",
            field="delivery_id",
        )
