"""Retention: forget finished deliveries and their events after a while.

The outbox, the deliveries and their attempt log grow with every event. Once a
delivery is finished (``delivered`` or ``dead``) and older than the retention period,
its log is no longer needed; an event is kept while any of its deliveries is still
under way. Pruning also limits how long data about members is held (see
docs/webhooks.md, data protection).

Pruning deletes in batches of :data:`BATCH` rows, each batch its own short write
transaction, so a large backlog never holds the database's write lock (SQLite) or
long row locks (PostgreSQL) for the whole run: other writers (the API, the worker)
get through between batches. A run stopped half-way has deleted whole batches only,
each delivery with its attempts; running it again finishes the job.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, and_, delete, func, select

from fidelite.store import Database
from fidelite.webhooks.tables import attempts, deliveries, outbox, subscriptions

BATCH = 500
"""Deliveries (with their attempts) or events deleted per transaction."""


def prune(db: Database, before: datetime, *, batch: int | None = None) -> dict[str, int]:
    """Delete finished deliveries last touched before ``before``, their attempts, and
    dispatched events recorded before it that no delivery refers to any more, ``batch``
    (default :data:`BATCH`) deliveries or events per transaction."""
    batch = BATCH if batch is None else batch
    if batch < 1:
        raise ValueError("batch must be at least 1")
    gone = {"deliveries": 0, "attempts": 0, "events": 0}
    after = 0  # the last delivery id looked at
    while True:
        with db.write() as conn:
            ids, after = _finished(conn, before, after, batch)
            if ids:
                gone["attempts"] += conn.execute(
                    delete(attempts).where(attempts.c.delivery_id.in_(ids))
                ).rowcount
                gone["deliveries"] += conn.execute(
                    delete(deliveries).where(deliveries.c.id.in_(ids))
                ).rowcount
        if after == 0:
            break
    after = 0  # the last event id looked at
    while True:
        with db.write() as conn:
            ids, after = _unreferenced(conn, before, after, batch)
            if ids:
                gone["events"] += conn.execute(delete(outbox).where(outbox.c.id.in_(ids))).rowcount
        if after == 0:
            break
    return gone


def _finished(conn: Connection, before: datetime, after: int, batch: int) -> tuple[list[int], int]:
    """Up to ``batch`` finished deliveries last touched before ``before``, of ids above
    ``after`` (in id order), and the id to go on from (0: none left)."""
    touched = func.coalesce(deliveries.c.last_attempt_at, deliveries.c.created_at)
    rows = conn.execute(
        select(deliveries.c.id)
        .where(deliveries.c.id > after,
               deliveries.c.state.in_(("delivered", "dead")), touched < before)
        .order_by(deliveries.c.id)
        .limit(batch)
    ).scalars()  # fmt: skip
    ids = [int(i) for i in rows]
    return ids, (ids[-1] if len(ids) == batch else 0)


def _unreferenced(
    conn: Connection, before: datetime, after: int, batch: int
) -> tuple[list[int], int]:
    """Up to ``batch`` events of ids above ``after`` that may go: dispatched, recorded
    before ``before``, and no delivery refers to them; and the id to go on from (0: none
    left). A delivery is looked up by its subscription and event (the pair is unique,
    so indexed), for each subscription there is."""
    candidates = [
        int(i)
        for i in conn.execute(
            select(outbox.c.id)
            .where(outbox.c.id > after, outbox.c.dispatched.is_(True),
                   outbox.c.created_at < before)
            .order_by(outbox.c.id)
            .limit(batch)
        ).scalars()
    ]  # fmt: skip
    if not candidates:
        return [], 0
    subscription_ids = [int(i) for i in conn.execute(select(subscriptions.c.id)).scalars()]
    referenced: set[int] = set()
    if subscription_ids:
        referenced = {
            int(i)
            for i in conn.execute(
                select(deliveries.c.outbox_id).where(
                    and_(deliveries.c.subscription_id.in_(subscription_ids),
                         deliveries.c.outbox_id.in_(candidates))
                )
            ).scalars()
        }  # fmt: skip
    ids = [i for i in candidates if i not in referenced]
    return ids, (candidates[-1] if len(candidates) == batch else 0)
