"""Concurrent workers never deliver one item twice; a lost lease never overwrites."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta
from typing import Any

from fidelite.store import Database
from fidelite.webhooks import DeliveryWorker, RetryPolicy, attempts_of, dispatch, log, replay
from fidelite.webhooks import subscriptions as subs
from tests.webhooks.conftest import Receiver
from tests.webhooks.support import Clock, delivery, processor, purchase

WORKERS = 4


def test_concurrent_workers_deliver_each_item_exactly_once(
    wdb: Database, receiver: Receiver
) -> None:
    p = processor(wdb)
    subs.add(wdb, "shop", receiver.url, ["*"], allow_private=True)
    subs.add(wdb, "shop", receiver.url + "/second", ["points.earned"], allow_private=True)
    for n in range(20):
        p.process(purchase(f"p{n}", f"m{n}", "10.00"))
    clock = Clock()
    start = threading.Barrier(WORKERS)
    errors: list[BaseException] = []

    def work() -> None:
        w = DeliveryWorker(wdb, allow_private=True, clock=clock, timeout=5)
        try:
            start.wait()
            while dispatch(wdb, limit=7, at=clock.now):  # phase 1: dispatch concurrently
                pass
            start.wait()
            while w.run_once(limit=3).claimed:  # phase 2: claim and send concurrently
                pass
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            w.close()

    threads = [threading.Thread(target=work) for _ in range(WORKERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert dispatch(wdb) == 0
    expected = {d["id"] for d in log(wdb, "shop", limit=1000)}
    assert len(expected) == 60  # 20 x (created + earned) + 20 x earned: no duplicates
    sent = Counter(int(r.headers["Fidelite-Delivery-Id"]) for r in receiver.requests)
    assert set(sent) == expected
    assert max(sent.values()) == 1
    assert {d["state"] for d in log(wdb, "shop", limit=1000)} == {"delivered"}


def test_a_worker_that_lost_its_lease_does_not_overwrite(wdb: Database, receiver: Receiver) -> None:
    processor(wdb)
    subs.add(wdb, "shop", receiver.url, ["member.created"], allow_private=True)
    processor(wdb).process(purchase("p1", "ann", "10.00"))
    clock = Clock()
    w = DeliveryWorker(wdb, policy=RetryPolicy(jitter=0), allow_private=True, clock=clock)
    dispatch(wdb)
    (claim,) = w.claim(10)
    assert w.claim(10) == []  # leased: invisible to a second claim
    send = w.send

    def replayed_while_in_flight(claim: Any) -> Any:
        replay(wdb, "shop", claim.id, at=clock.now)  # an operator replays it meanwhile
        return send(claim)

    w.send = replayed_while_in_flight  # type: ignore[method-assign]
    receiver.script.append(500)
    assert w.deliver(claim) == "lost"  # the failure is logged but does not win
    del w.send
    row = delivery(wdb, claim.id)
    assert (row["state"], row["attempts"], row["lease_token"]) == ("pending", 0, None)
    assert w.run_once().delivered == 1
    tries = attempts_of(wdb, "shop", claim.id)
    assert [(t["number"], t["status"]) for t in tries] == [(1, 500), (2, 200)]


def test_a_delivery_is_not_sent_without_a_timeout_of_lease_left(
    wdb: Database, receiver: Receiver
) -> None:
    processor(wdb)
    subs.add(wdb, "shop", receiver.url, ["*"], allow_private=True)
    processor(wdb).process(purchase("p1", "ann", "10.00"))
    clock = Clock()
    w = DeliveryWorker(wdb, allow_private=True, clock=clock, timeout=5)
    dispatch(wdb)
    claims = w.claim(3)
    assert [c.lease_until - clock.now for c in claims] == [timedelta(seconds=3 * 5 + 30)] * 2
    clock.now = claims[0].lease_until - timedelta(seconds=4)  # a slow batch ate the lease
    assert w.deliver(claims[0]) == "lost"
    assert receiver.requests == []  # not sent: another worker may take it from here
    assert w.claim(3) == []  # still leased...
    clock.now = claims[0].lease_until
    assert w.run_once().delivered == 2  # ...until the lease ends
    assert len(receiver.requests) == 2
