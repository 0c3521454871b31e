"""Replay over real HTTP on 127.0.0.1: never of an erased member's events; several ids
are replayed all or none."""

from __future__ import annotations

from typing import Any

import pytest

from fidelite.privacy import erase_member
from fidelite.store import Database
from fidelite.webhooks import DeliveryWorker, WebhookError, log, replay
from fidelite.webhooks import subscriptions as subs
from tests.webhooks.conftest import Receiver
from tests.webhooks.support import Clock, processor, purchase


def deliveries_of(db: Database) -> list[dict[str, Any]]:
    return sorted(log(db, "shop"), key=lambda d: d["id"])


def erased_ann(db: Database, receiver: Receiver, clock: Clock) -> list[dict[str, Any]]:
    """ann's member.created delivered, then ann erased: her points.earned stopped."""
    processor(db)
    subs.add(db, "shop", receiver.url, ["member.created", "points.earned"], allow_private=True)
    processor(db).process(purchase("p1", "ann", "10.00"))
    worker = DeliveryWorker(db, allow_private=True, clock=clock, timeout=5)
    assert worker.run_once(limit=1).delivered == 1
    worker.close()
    with db.write() as conn:
        erase_member(conn, "shop", "ann")
    rows = deliveries_of(db)
    assert [(d["event_type"], d["state"], d["last_error"]) for d in rows] == [
        ("member.created", "delivered", None),
        ("points.earned", "dead", "member erased"),
    ]
    return rows


def test_an_erased_members_deliveries_are_not_replayed(wdb: Database, receiver: Receiver) -> None:
    """Neither the one the erasure stopped nor the one delivered before it: sending the
    tombstone under an event id receivers hold with ann would link the two."""
    clock = Clock()
    before = erased_ann(wdb, receiver, clock)
    for row in before:
        with pytest.raises(WebhookError) as refused:
            replay(wdb, "shop", row["id"], at=clock.now)
        assert (refused.value.code, refused.value.field) == ("member_erased", "delivery_id")
        assert refused.value.message == (
            f"delivery_id: delivery {row['id']}: about a member erased since, never sent "
            "again (the event keeps only the member's tombstone, which its event id would "
            "link to the reference receivers already have)"
        )
    assert deliveries_of(wdb) == before  # nothing changed
    worker = DeliveryWorker(wdb, allow_private=True, clock=clock, timeout=5)
    assert worker.run_once().claimed == 0
    worker.close()
    assert len(receiver.requests) == 1  # ann's member.created, before the erasure
