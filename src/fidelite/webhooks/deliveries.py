"""The delivery log and manual replay.

Every attempt is kept (``webhook_attempts``: when, HTTP status or error, time taken,
the start of the response), so an operator can see why a receiver refused an event.
A replay makes a delivery (dead, failed or even delivered) ``pending`` and due now; its
earlier attempts stay in the log and numbering continues. A dead delivery that fails
again on replay is dead again at once (one attempt per replay); one that had attempts
left keeps retrying on the normal schedule.

A delivery whose event a member's erasure anonymised (stopped ``dead`` with ``member
erased``, or delivered before it) is never replayed: its event now carries only the
tombstone, and sending it under the event id receivers already hold with the member's
reference would tell them which tombstone that reference became.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update

from fidelite.store import Database
from fidelite.webhooks.errors import WebhookError
from fidelite.webhooks.tables import attempts, deliveries, outbox

STATES = ("pending", "failed", "delivered", "dead")


def log(
    db: Database,
    program_id: str,
    *,
    state: str | None = None,
    subscription_id: int | None = None,
    delivery_id: int | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """The program's deliveries, most recently created first (by delivery id), with their
    last outcome."""
    if state is not None and state not in STATES:
        raise WebhookError(
            "invalid_request", f"state: {state!r} is not one of {', '.join(STATES)}", field="state"
        )
    if not 1 <= limit <= 1000:
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
    now = at or datetime.now(UTC)
    with db.write() as conn:
        _require(conn, program_id, delivery_id)
        _refuse_erased(conn, [delivery_id])
        done = conn.execute(
            select(func.count()).where(attempts.c.delivery_id == delivery_id)
        ).scalar_one()
        conn.execute(
            update(deliveries)
            .where(deliveries.c.id == delivery_id)
            .values(state="pending", attempts=int(done), next_attempt_at=now, lease_token=None,
                    lease_until=None, delivered_at=None)
        )  # fmt: skip
    return log(db, program_id, delivery_id=delivery_id)[0]


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
    return [int(row.id) for row in rows if _anonymised(row.payload)]


def _anonymised(payload: Any) -> bool:
    if isinstance(payload, str):
        payload = json.loads(payload)
    return isinstance(payload, dict) and payload.get("erased") is True


def _refuse_erased(conn: Any, delivery_ids: list[int]) -> None:
    """Raise ``member_erased`` naming every delivery of ``delivery_ids`` about an erased
    member (see the module docstring)."""
    erased = erased_deliveries(conn, delivery_ids)
    if erased:
        named = ", ".join(str(i) for i in erased)
        raise WebhookError(
            "member_erased",
            f"delivery_id: {'deliveries' if len(erased) > 1 else 'delivery'} {named}: "
            "about a member erased since, never sent again (the event keeps only the "
            "member's tombstone, which its event id would link to the reference receivers "
            "already have)",
            field="delivery_id",
        )
