"""Pruning forgets old events no subscription will ever be sent, dispatched or not: a
program that does not use webhooks (no subscription, no worker) keeps no outbox forever,
and events a subscription may still receive stay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from fidelite.store import Database
from fidelite.webhooks import DeliveryWorker, dispatch, prune
from fidelite.webhooks import subscriptions as subs
from fidelite.webhooks.tables import outbox, subscriptions
from tests.webhooks.conftest import Receiver
from tests.webhooks.support import Clock, count, outbox_rows, processor, purchase


def left(db: Database) -> list[tuple[str, str, bool]]:
    with db.read() as conn:
        return [
            (r.member_ref, r.event_type, bool(r.dispatched))
            for r in conn.execute(
                select(outbox.c.member_ref, outbox.c.event_type, outbox.c.dispatched)
                .order_by(outbox.c.id)
            )
        ]  # fmt: skip


def test_events_of_a_program_without_subscriptions_are_pruned(wdb: Database) -> None:
    """No subscription and no worker: the events stay undispatched; once older than the
    retention they go (newer ones stay)."""
    p = processor(wdb)
    p.process(purchase("p1", "ann", "10.00"))
    p.process(purchase("p2", "bob", "10.00"))
    assert len(outbox_rows(wdb)) == 4
    clock = Clock()
    assert prune(wdb, clock.now - timedelta(days=1)) == {
        "deliveries": 0, "attempts": 0, "events": 0,
    }  # fmt: skip
    assert prune(wdb, clock.now + timedelta(days=1)) == {
        "deliveries": 0, "attempts": 0, "events": 4,
    }  # fmt: skip
    assert count(wdb, outbox) == 0


def test_undispatched_events_a_subscription_will_receive_are_kept(
    wdb: Database, receiver: Receiver
) -> None:
    """ann's events are recorded with no subscription, then a points.earned
    subscription is added and bob's are recorded; no worker runs. Pruned: ann's two
    (added later, the subscription will never be sent them) and bob's member.created
    (not its type); bob's points.earned stays and is then delivered."""
    p = processor(wdb)
    p.process(purchase("p1", "ann", "10.00"))
    with wdb.write() as conn:  # recorded a while before the subscription
        conn.execute(update(outbox).values(created_at=datetime.now(UTC) - timedelta(hours=1)))
    sub = subs.add(wdb, "shop", receiver.url, ["points.earned"], allow_private=True)
    p.process(purchase("p2", "bob", "10.00"))
    clock = Clock()
    later = clock.now + timedelta(days=1)
    assert prune(wdb, later)["events"] == 3
    assert left(wdb) == [("bob", "points.earned", False)]
    worker = DeliveryWorker(wdb, allow_private=True, clock=clock)
    try:
        assert worker.run_once().delivered == 1
    finally:
        worker.close()
    assert [r.headers["Fidelite-Event-Type"] for r in receiver.requests] == ["points.earned"]
    with wdb.write() as conn:  # removed: its events still undispatched are nobody's
        conn.execute(update(subscriptions).where(subscriptions.c.id == sub.id).values(active=False))
    p.process(purchase("p3", "cy", "10.00"))
    assert prune(wdb, later) == {"deliveries": 1, "attempts": 1, "events": 3}
    assert left(wdb) == []


def test_a_dispatched_event_whose_deliveries_are_pruned_goes_too(
    wdb: Database, receiver: Receiver
) -> None:
    """As before: a dispatched event goes with its last delivery."""
    p = processor(wdb)
    subs.add(wdb, "shop", receiver.url, ["*"], allow_private=True)
    p.process(purchase("p1", "ann", "10.00"))
    assert dispatch(wdb) == 2
    clock = Clock()
    worker = DeliveryWorker(wdb, allow_private=True, clock=clock)
    try:
        assert worker.run_once().delivered == 2
    finally:
        worker.close()
    assert prune(wdb, clock.now + timedelta(days=1)) == {
        "deliveries": 2, "attempts": 2, "events": 2,
    }  # fmt: skip
    assert count(wdb, outbox) == 0
