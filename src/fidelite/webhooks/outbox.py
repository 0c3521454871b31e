"""The outbox: events written in the same transaction as the change they announce.

:func:`record` is called with the caller's writing connection, so an event exists if
and only if its change committed (a rolled-back change leaves no event, and a crash
after commit loses none). It is one ``INSERT``: the event's transaction pays nothing
else. :func:`dispatch` (run by the delivery worker before each pass) later turns new
events into one pending delivery per active subscription of the program that asks for
the event type, and marks them dispatched, in one transaction. A subscription receives
the events recorded since it was added (``created_at`` of the event at or after the
subscription's): one added to a program with a backlog of undispatched events (no worker
ran for a while, or a bulk import just finished) is not sent that history.

Concurrent dispatchers: on PostgreSQL the new rows are taken ``FOR UPDATE SKIP
LOCKED`` (each row is dispatched by one worker), on SQLite the dispatch transaction
holds the write lock; the unique (subscription, event) pair on deliveries stands
behind both.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from fidelite.store import Database
from fidelite.webhooks.events import ALL
from fidelite.webhooks.tables import deliveries, outbox, subscriptions


def record(
    conn: Connection,
    program_id: str,
    event_type: str,
    payload: dict[str, Any],
    *,
    member_ref: str | None = None,
    dedup_key: str | None = None,
    at: datetime | None = None,
) -> bool:
    """Write one event to the outbox; False if ``dedup_key`` was already recorded.

    ``payload`` must be JSON-serialisable (ISO strings for times, strings for
    decimals). ``member_ref`` links the event to a member for export and erasure.
    ``dedup_key`` makes once-only announcements (such as expiring lots) idempotent,
    also between transactions running at once: the insert skips a key already written
    (``ON CONFLICT DO NOTHING`` on the program and key), and on PostgreSQL one written
    by a transaction still open waits for it (written: skipped; rolled back: inserted).
    """
    row = outbox_row(
        program_id, event_type, payload, member_ref=member_ref, dedup_key=dedup_key, at=at
    )
    if dedup_key is None:
        conn.execute(insert(outbox), row)
        return True
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    written = conn.execute(
        dialect.insert(outbox)
        .values(row)
        .on_conflict_do_nothing(index_elements=["program_id", "dedup_key"])
        .returning(outbox.c.id)
    )
    return written.first() is not None


def outbox_row(
    program_id: str,
    event_type: str,
    payload: dict[str, Any],
    *,
    member_ref: str | None = None,
    dedup_key: str | None = None,
    at: datetime | None = None,
) -> dict[str, Any]:
    """The outbox row of one event (:func:`record`; bulk import writes many at once)."""
    return {
        "program_id": program_id,
        "event_type": event_type,
        "member_ref": member_ref,
        "dedup_key": dedup_key,
        "payload": payload,
        "created_at": at or datetime.now(UTC),
        "dispatched": False,
    }


def dispatch(db: Database, *, limit: int = 1000, at: datetime | None = None) -> int:
    """Create the deliveries of up to ``limit`` new events; return how many events."""
    now = at or datetime.now(UTC)
    with db.write() as conn:
        query = (
            select(outbox.c.id, outbox.c.program_id, outbox.c.event_type, outbox.c.created_at)
            .where(outbox.c.dispatched.is_(False))
            .order_by(outbox.c.id)
            .limit(limit)
        )
        if db.is_postgres:
            query = query.with_for_update(skip_locked=True)
        new = conn.execute(query).all()
        if not new:
            return 0
        wanted: dict[str, list[tuple[int, list[str], datetime]]] = {}
        for row in conn.execute(
            select(
                subscriptions.c.id,
                subscriptions.c.program_id,
                subscriptions.c.event_types,
                subscriptions.c.created_at,
            )
            .where(
                subscriptions.c.active.is_(True),
                subscriptions.c.program_id.in_({r.program_id for r in new}),
            )
            .order_by(subscriptions.c.id)
        ):
            wanted.setdefault(row.program_id, []).append(
                (int(row.id), list(row.event_types), row.created_at)
            )
        rows = [
            {"subscription_id": sid, "outbox_id": int(event.id), "program_id": event.program_id,
             "state": "pending", "attempts": 0, "next_attempt_at": now, "created_at": now}
            for event in new
            for sid, types, added in wanted.get(event.program_id, [])
            if (ALL in types or event.event_type in types) and event.created_at >= added
        ]  # fmt: skip
        if rows:
            conn.execute(insert(deliveries), rows)
        conn.execute(
            update(outbox).where(outbox.c.id.in_([int(r.id) for r in new])).values(dispatched=True)
        )
    return len(new)


def body_of(row: Any) -> dict[str, Any]:
    """The JSON document POSTed for an outbox row (``event_id`` or ``id``, ``event_type``,
    ``program_id``, ``created_at``, ``payload``; see docs/webhooks.md)."""
    event_id = row.event_id if hasattr(row, "event_id") else row.id
    return {
        "id": str(event_id),
        "type": row.event_type,
        "program": row.program_id,
        "created_at": row.created_at.isoformat(),
        "data": row.payload,
    }
