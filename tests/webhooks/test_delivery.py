"""Delivery over real HTTP on 127.0.0.1: signatures, retries, dead letter, replay."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from fidelite.store import Database
from fidelite.webhooks import (
    DeliveryWorker,
    RetryPolicy,
    attempts_of,
    dispatch,
    log,
    replay,
    verify,
)
from fidelite.webhooks import subscriptions as subs
from fidelite.webhooks.subscriptions import Subscription
from tests.webhooks.conftest import Receiver
from tests.webhooks.support import Clock, delivery, processor, purchase

POLICY = RetryPolicy(base_seconds=10, factor=2, cap_seconds=60, jitter=0, max_attempts=5)


def subscribe(db: Database, receiver: Receiver, types: list[str]) -> Subscription:
    processor(db)  # opens the program
    return subs.add(db, "shop", receiver.url, types, allow_private=True)


def worker(db: Database, clock: Clock, policy: RetryPolicy = POLICY) -> DeliveryWorker:
    return DeliveryWorker(db, policy=policy, allow_private=True, clock=clock, timeout=5)


def test_deliveries_are_signed_json_with_event_headers(wdb: Database, receiver: Receiver) -> None:
    sub = subscribe(wdb, receiver, ["*"])
    processor(wdb).process(purchase("p1", "ann", "20.00"))
    clock = Clock()
    report = worker(wdb, clock).run_once()
    assert report.as_dict() == {
        "claimed": 2,
        "delivered": 2,
        "failed": 0,
        "dead": 0,
        "lost": 0,
        "released": 0,
        "postponed": 0,
    }
    assert [r.headers["Fidelite-Event-Type"] for r in receiver.requests] == [
        "member.created",
        "points.earned",
    ]
    for request in receiver.requests:
        assert request.path == "/hooks"
        assert request.headers["Content-Type"] == "application/json"
        stamp = verify(sub.secret or "", request.body, request.headers["Fidelite-Signature"],
                       now=int(clock.now.timestamp()))  # fmt: skip
        assert stamp == int(clock.now.timestamp())
        with pytest.raises(ValueError):
            verify("not-the-secret-xx", request.body, request.headers["Fidelite-Signature"],
                   now=stamp)  # fmt: skip
    document = json.loads(receiver.requests[1].body)
    assert document["id"] == receiver.requests[1].headers["Fidelite-Event-Id"]
    assert (document["type"], document["program"]) == ("points.earned", "shop")
    assert (document["data"]["member"], document["data"]["points"]) == ("ann", 20)
    assert [d["state"] for d in log(wdb, "shop")] == ["delivered", "delivered"]
    assert worker(wdb, clock).run_once().claimed == 0  # nothing is sent twice


def test_failures_retry_on_the_exact_backoff_schedule_then_die(
    wdb: Database, receiver: Receiver
) -> None:
    subscribe(wdb, receiver, ["member.created"])
    processor(wdb).process(purchase("p1", "ann", "20.00"))
    assert log(wdb, "shop") == []  # recorded, not dispatched yet
    assert dispatch(wdb) == 2 and dispatch(wdb) == 0
    (only,) = log(wdb, "shop")
    receiver.script.extend([500, 503, 404, 500, 502])
    clock = Clock()
    w = worker(wdb, clock)
    waits = []
    for attempt in range(1, 6):
        assert w.run_once().claimed == 1
        row = delivery(wdb, only["id"])
        assert row["attempts"] == attempt
        if attempt < 5:
            assert row["state"] == "failed"
            wait = row["next_attempt_at"] - clock.now
            waits.append(wait.total_seconds())
            clock.now += wait - timedelta(seconds=1)
            assert w.run_once().claimed == 0  # not due one second early
            clock.now += timedelta(seconds=1)
    assert waits == [10, 20, 40, 60]  # 10 * 2^(n-1), capped at 60
    row = delivery(wdb, only["id"])
    assert (row["state"], row["next_attempt_at"], row["last_status"]) == ("dead", None, 502)
    clock.now += timedelta(days=1)
    assert w.run_once().claimed == 0  # dead stays dead
    tries = attempts_of(wdb, "shop", row["id"])
    assert [(a["number"], a["status"], a["error"]) for a in tries] == [
        (1, 500, "HTTP 500"), (2, 503, "HTTP 503"), (3, 404, "HTTP 404"), (4, 500, "HTTP 500"),
        (5, 502, "HTTP 502"),
    ]  # fmt: skip
    assert len(receiver.requests) == 5


def test_jitter_stretches_a_wait_by_at_most_its_fraction(wdb: Database, receiver: Receiver) -> None:
    policy = RetryPolicy(base_seconds=10, factor=2, cap_seconds=15, jitter=0.5, max_attempts=5)
    assert policy.delay(1, 0.5) == timedelta(seconds=12.5)
    assert policy.delay(1, 0.999) < timedelta(seconds=15.0)
    assert policy.delay(2, 0.0) == timedelta(seconds=15)  # 20 capped
    subscribe(wdb, receiver, ["member.created"])
    processor(wdb).process(purchase("p1", "ann", "20.00"))
    receiver.script.append(500)
    clock = Clock()
    w = DeliveryWorker(wdb, policy=policy, allow_private=True, clock=clock, rand=lambda: 0.5)
    w.run_once()
    (only,) = log(wdb, "shop")
    assert only["next_attempt_at"] - clock.now == timedelta(seconds=12.5)


def test_replay_sends_a_dead_delivery_again(wdb: Database, receiver: Receiver) -> None:
    subscribe(wdb, receiver, ["member.created"])
    processor(wdb).process(purchase("p1", "ann", "20.00"))
    receiver.script.extend([500, 500])
    clock = Clock()
    policy = RetryPolicy(base_seconds=10, cap_seconds=10, jitter=0, max_attempts=2)
    w = worker(wdb, clock, policy)
    w.run_once()
    clock.now += timedelta(seconds=10)
    w.run_once()
    (dead,) = log(wdb, "shop", state="dead")
    replayed = replay(wdb, "shop", dead["id"], at=clock.now)
    assert (replayed["state"], replayed["attempts"]) == ("pending", 2)
    assert w.run_once().delivered == 1
    assert [a["number"] for a in attempts_of(wdb, "shop", dead["id"])] == [1, 2, 3]
    assert delivery(wdb, dead["id"])["state"] == "delivered"
    assert len({r.headers["Fidelite-Event-Id"] for r in receiver.requests}) == 1
    replay(wdb, "shop", dead["id"], at=clock.now)  # even a delivered one can be sent again
    assert w.run_once().delivered == 1 and len(receiver.requests) == 4


def test_unknown_deliveries_and_other_programs_are_refused(
    wdb: Database, receiver: Receiver
) -> None:
    subscribe(wdb, receiver, ["member.created"])
    processor(wdb).process(purchase("p1", "ann", "20.00"))
    dispatch(wdb)
    (only,) = log(wdb, "shop")
    with pytest.raises(Exception, match="no delivery 999 in program 'shop'"):
        replay(wdb, "shop", 999)
    with pytest.raises(Exception, match="unknown_delivery"):
        replay(wdb, "other", only["id"])  # another program's delivery: not found
    assert delivery(wdb, only["id"])["state"] == "pending"


def test_unreachable_receivers_count_as_failed_attempts(wdb: Database, receiver: Receiver) -> None:
    sub = subscribe(wdb, receiver, ["member.created"])
    processor(wdb).process(purchase("p1", "ann", "20.00"))
    receiver.close()  # nobody listens on the port any more
    clock = Clock()
    assert worker(wdb, clock).run_once().failed == 1
    (only,) = log(wdb, "shop", subscription_id=sub.id)
    assert only["state"] == "failed" and only["last_status"] is None
    assert only["last_error"].startswith("ConnectError")


def test_the_url_is_checked_again_at_delivery_time(wdb: Database, receiver: Receiver) -> None:
    processor(wdb)
    url = receiver.url.replace("127.0.0.1", "hooks.example.test")
    sub = subs.add(wdb, "shop", url, ["*"], resolve=lambda h, p: ["93.184.216.34"])
    processor(wdb).process(purchase("p1", "ann", "20.00"))
    clock = Clock()
    w = DeliveryWorker(wdb, policy=POLICY, clock=clock, resolve=lambda h, p: ["127.0.0.1"])
    report = w.run_once()  # the name now points at this machine: refused
    assert (report.failed, report.postponed) == (1, 1)  # the other waits for the retry
    assert receiver.requests == []
    errors = [(d["state"], d["last_error"]) for d in log(wdb, "shop", subscription_id=sub.id)]
    refused = (
        "refused: url: host hooks.example.test (127.0.0.1) is loopback (this "
        "server itself); allowed only when private destinations are allowed (the CLI's "
        "--allow-private, allow_private=True in code), for development"
    )
    assert errors == [("pending", None), ("failed", refused)]
    clock.now += timedelta(seconds=10)
    report = w.run_once()  # refused again: one attempt, the other waits again
    assert (report.failed, report.postponed) == (1, 1)
    assert receiver.requests == []


def test_removing_a_subscription_stops_its_deliveries(wdb: Database, receiver: Receiver) -> None:
    sub = subscribe(wdb, receiver, ["*"])
    processor(wdb).process(purchase("p1", "ann", "20.00"))
    dispatch(wdb)
    removed = subs.remove(wdb, "shop", sub.id)
    assert removed.active is False and subs.list_all(wdb, "shop") == []
    assert {(d["state"], d["last_error"]) for d in log(wdb, "shop")} == {
        ("dead", "subscription removed")
    }
    assert worker(wdb, Clock()).run_once().claimed == 0
    processor(wdb).process(purchase("p2", "ann", "20.00"))
    assert dispatch(wdb) == 1
    assert len(log(wdb, "shop")) == 2  # no deliveries for the removed subscription
    with pytest.raises(Exception, match="no subscription 999 in program 'shop'"):
        subs.remove(wdb, "shop", 999)


def test_the_connection_goes_to_the_address_that_was_checked(
    wdb: Database, receiver: Receiver
) -> None:
    processor(wdb)
    url = receiver.url.replace("127.0.0.1", "hooks.example.test")  # a name no DNS knows
    local = lambda host, port: ["127.0.0.1"]  # noqa: E731
    subs.add(wdb, "shop", url, ["member.created"], allow_private=True, resolve=local)
    processor(wdb).process(purchase("p1", "ann", "20.00"))
    w = DeliveryWorker(wdb, policy=POLICY, allow_private=True, clock=Clock(), resolve=local)
    assert w.run_once().delivered == 1  # no second lookup: it went to 127.0.0.1
    (request,) = receiver.requests
    assert request.headers["Host"] == url.split("/")[2] and request.path == "/hooks"
