"""Pruning forgets finished deliveries and their events; work under way is kept."""

from __future__ import annotations

from datetime import timedelta

from fidelite.store import Database
from fidelite.webhooks import DeliveryWorker, RetryPolicy, dispatch, log, prune
from fidelite.webhooks import subscriptions as subs
from fidelite.webhooks.tables import attempts, deliveries, outbox
from tests.webhooks.conftest import Receiver
from tests.webhooks.support import Clock, count, outbox_rows, processor, purchase


def test_prune_keeps_deliveries_under_way_and_their_events(
    wdb: Database, receiver: Receiver
) -> None:
    p = processor(wdb)
    subs.add(wdb, "shop", receiver.url, ["member.created"], allow_private=True)
    subs.add(wdb, "shop", receiver.url + "/b", ["points.earned"], allow_private=True)
    p.process(purchase("p1", "ann", "10.00"))  # member.created (1), points.earned (2)
    clock = Clock()
    policy = RetryPolicy(base_seconds=60, cap_seconds=60, jitter=0, max_attempts=3)
    w = DeliveryWorker(wdb, policy=policy, allow_private=True, clock=clock)
    receiver.script.extend([200, 500])  # 1 delivered; 2 failed, retried later
    assert w.run_once().as_dict()["delivered"] == 1
    p.process(purchase("p2", "bob", "10.00"))  # recorded, not yet dispatched
    later = clock.now + timedelta(days=40)
    assert prune(wdb, later) == {"deliveries": 1, "attempts": 1, "events": 1}
    assert [(d["event_type"], d["state"]) for d in log(wdb, "shop")] == [
        ("points.earned", "failed")
    ]
    assert [r["event_type"] for r in outbox_rows(wdb)] == [
        "points.earned", "member.created", "points.earned",
    ]  # fmt: skip
    assert prune(wdb, later) == {"deliveries": 0, "attempts": 0, "events": 0}
    dispatch(wdb)
    assert prune(wdb, clock.now - timedelta(days=1)) == {
        "deliveries": 0,
        "attempts": 0,
        "events": 0,
    }  # fmt: skip  (nothing is old enough)
    assert (count(wdb, deliveries), count(wdb, attempts), count(wdb, outbox)) == (3, 1, 3)
