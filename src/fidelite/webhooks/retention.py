"""Retention: forget finished deliveries and their events after a while.

The outbox, the deliveries and their attempt log grow with every event. Once a
delivery is finished (``delivered`` or ``dead``) and older than the retention period,
its log is no longer needed; an event is kept while any of its deliveries is still
under way, or, not dispatched yet, while a subscription could still be sent it (a
program with no subscription, or no worker running, does not keep its events
forever). Pruning also limits how long data about members is held (see
docs/webhooks.md, data protection).

Pruning deletes in batches of :data:`BATCH` rows, each batch its own short write
transaction, so a large backlog never holds the database's write lock (SQLite) or
long row locks (PostgreSQL) for the whole run: other writers (the API, the worker)
get through between batches (on SQLite prune pauses between batches as long as the
last one took, see :func:`_pause_as_long_as_the_last_batch`). A run stopped half-way
has deleted whole batches only, each delivery with its attempts; running it again
finishes the job.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, delete, func, select

from fidelite.store import Database
from fidelite.webhooks.events import ALL
from fidelite.webhooks.tables import attempts, deliveries, outbox, subscriptions

BATCH = 500
"""Deliveries (with their attempts) or events deleted per transaction."""

PAUSE_MAX = 1.0
"""The longest pause between two batches on SQLite, in seconds."""


def prune(db: Database, before: datetime, *, batch: int | None = None) -> dict[str, int]:
    """Delete finished deliveries last touched before ``before``, their attempts, and
    the events recorded before it that no subscription will receive any more
    (dispatched: no delivery refers to them; not dispatched yet: no active subscription
    would be sent them, see :func:`_unreferenced`), ``batch`` (default :data:`BATCH`)
    deliveries or events per transaction."""
    batch = BATCH if batch is None else batch
    if batch < 1:
        raise ValueError("batch must be at least 1")
    gone = {"deliveries": 0, "attempts": 0, "events": 0}
    started: float | None = None
    after = 0  # the last delivery id looked at
    while True:
        _pause_as_long_as_the_last_batch(db, started)
        started = time.monotonic()
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
        _pause_as_long_as_the_last_batch(db, started)
        started = time.monotonic()
        with db.write() as conn:
            ids, after = _unreferenced(conn, before, after, batch)
            if ids:
                gone["events"] += conn.execute(delete(outbox).where(outbox.c.id.in_(ids))).rowcount
        if after == 0:
            break
    return gone


def _pause_as_long_as_the_last_batch(db: Database, started: float | None) -> None:
    """On SQLite, wait as long as the last batch took (at most :data:`PAUSE_MAX` s)
    before the next: a writer of another process (the API server) polls the write lock
    while it waits, and would seldom find it free if the next batch took it again at
    once. So pruning holds the lock about half the time at most."""
    if started is None or db.is_postgres:
        return
    time.sleep(min(time.monotonic() - started, PAUSE_MAX))


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
    """Up to ``batch`` events of ids above ``after`` recorded before ``before`` that may
    go, and the id to go on from (0: none left). A dispatched event may go once no
    delivery refers to it (a delivery is looked up by its subscription and event: the
    pair is unique, so indexed, for each subscription there is). An event not
    dispatched yet may go when no subscription could ever receive it: dispatch sends an
    event only to the program's active subscriptions for its type added at or before
    it was recorded, and a subscription removed is never active again, one added later
    never gets it."""
    rows = conn.execute(
        select(outbox.c.id, outbox.c.dispatched, outbox.c.program_id, outbox.c.event_type,
               outbox.c.created_at)
        .where(outbox.c.id > after, outbox.c.created_at < before)
        .order_by(outbox.c.id)
        .limit(batch)
    ).all()  # fmt: skip
    if not rows:
        return [], 0
    subscribed = conn.execute(
        select(subscriptions.c.id, subscriptions.c.program_id, subscriptions.c.active,
               subscriptions.c.event_types, subscriptions.c.created_at)
    ).all()  # fmt: skip
    candidates = [int(r.id) for r in rows if r.dispatched]
    referenced: set[int] = set()
    if subscribed and candidates:
        referenced = {
            int(i)
            for i in conn.execute(
                select(deliveries.c.outbox_id).where(
                    and_(deliveries.c.subscription_id.in_([int(s.id) for s in subscribed]),
                         deliveries.c.outbox_id.in_(candidates))
                )
            ).scalars()
        }  # fmt: skip
    receivers = [s for s in subscribed if s.active]
    ids = [
        int(r.id)
        for r in rows
        if (int(r.id) not in referenced if r.dispatched else not _receivable(r, receivers))
    ]
    return ids, (int(rows[-1].id) if len(rows) == batch else 0)


def _receivable(event: Any, receivers: list[Any]) -> bool:
    """Whether an event not dispatched yet would go to one of the active subscriptions
    ``receivers`` (the rule of :func:`~fidelite.webhooks.outbox.dispatch`)."""
    return any(
        s.program_id == event.program_id
        and (ALL in s.event_types or event.event_type in s.event_types)
        and event.created_at >= s.created_at
        for s in receivers
    )
