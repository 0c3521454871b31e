"""Retention: forget finished deliveries and their events after a while.

The outbox, the deliveries and their attempt log grow with every event. Once a
delivery is finished (``delivered`` or ``dead``) and older than the retention period,
its log is no longer needed; an event is kept while any of its deliveries is still
under way. Pruning also limits how long data about members is held (see
docs/webhooks.md, data protection).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, delete, exists, func, select

from fidelite.store import Database
from fidelite.webhooks.tables import attempts, deliveries, outbox


def prune(db: Database, before: datetime) -> dict[str, int]:
    """Delete finished deliveries last touched before ``before``, their attempts, and
    dispatched events recorded before it that no delivery refers to any more."""
    touched = func.coalesce(deliveries.c.last_attempt_at, deliveries.c.created_at)
    finished = select(deliveries.c.id).where(
        deliveries.c.state.in_(("delivered", "dead")), touched < before
    )
    with db.write() as conn:
        ids = [int(i) for i in conn.execute(finished).scalars()]
        gone_attempts = gone_deliveries = 0
        for start in range(0, len(ids), 500):  # bounded IN lists
            chunk = ids[start : start + 500]
            gone_attempts += conn.execute(
                delete(attempts).where(attempts.c.delivery_id.in_(chunk))
            ).rowcount
            gone_deliveries += conn.execute(
                delete(deliveries).where(deliveries.c.id.in_(chunk))
            ).rowcount
        referenced = exists().where(deliveries.c.outbox_id == outbox.c.id)
        gone_events = conn.execute(
            delete(outbox).where(
                and_(outbox.c.dispatched.is_(True), outbox.c.created_at < before, ~referenced)
            )
        ).rowcount
    return {"deliveries": gone_deliveries, "attempts": gone_attempts, "events": gone_events}
