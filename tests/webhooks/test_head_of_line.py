"""One failing destination does not hold up the others (real receivers on 127.0.0.1).

Once an attempt to a subscription fails as a destination that takes nothing now (no
complete answer, 408, 429, 5xx), the pass postpones that subscription's other waiting
deliveries to the failed one's next try, without counting or logging an attempt, and
goes on with the other subscriptions.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select

from fidelite.store import Database
from fidelite.webhooks import DeliveryWorker, RetryPolicy, attempts_of
from fidelite.webhooks import subscriptions as subs
from fidelite.webhooks.tables import deliveries, subscriptions
from tests.webhooks.conftest import Receiver
from tests.webhooks.support import Clock, processor, purchase

POLICY = RetryPolicy(base_seconds=10, factor=2, cap_seconds=60, jitter=0, max_attempts=5)


class Hanging:
    """Reads each request, then answers nothing for ``pause`` seconds."""

    def __init__(self, pause: float) -> None:
        self.hits: list[str] = []
        hanging = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                hanging.hits.append(self.headers["Fidelite-Delivery-Id"])
                time.sleep(pause)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/crm"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hanging() -> Iterator[Hanging]:
    h = Hanging(pause=1.5)
    yield h
    h.close()


def rows(db: Database, subscription_id: int) -> list[tuple[int, str, int, object]]:
    with db.read() as conn:
        return [
            (int(r.id), r.state, int(r.attempts), r.next_attempt_at)
            for r in conn.execute(
                select(deliveries.c.id, deliveries.c.state, deliveries.c.attempts,
                       deliveries.c.next_attempt_at)
                .where(deliveries.c.subscription_id == subscription_id)
                .order_by(deliveries.c.id)
            )
        ]  # fmt: skip


def setup(db: Database, bad_url: str, good: Receiver, members: int) -> tuple[int, int]:
    processor(db)
    crm = subs.add(db, "shop", bad_url, ["*"], allow_private=True)
    mail = subs.add(db, "shop", good.url, ["*"], allow_private=True)
    for n in range(members):
        processor(db).process(purchase(f"p{n}", f"m{n}", "10.00"))
    return crm.id, mail.id


def test_a_hanging_receiver_costs_a_pass_one_timeout_and_the_others_get_everything(
    wdb: Database, hanging: Hanging, receiver: Receiver
) -> None:
    """4 members: 8 events for each subscription. The CRM hangs: its first delivery
    times out, its 7 others are postponed to that one's next try (attempts 0, nothing
    logged), and the mail receiver gets all 8 in the same pass."""
    crm, mail = setup(wdb, hanging.url, receiver, members=4)
    clock = Clock()
    worker = DeliveryWorker(wdb, policy=POLICY, allow_private=True, clock=clock, timeout=0.5)
    report = worker.run_once(limit=100)
    assert report.as_dict() == {
        "claimed": 16,
        "delivered": 8,
        "failed": 1,
        "dead": 0,
        "lost": 0,
        "released": 0,
        "postponed": 7,
    }
    assert len(hanging.hits) == 1
    assert len(receiver.requests) == 8
    retry = clock.now + timedelta(seconds=10)
    first, *rest = rows(wdb, crm)
    assert first[1:] == ("failed", 1, retry)
    assert [r[1:] for r in rest] == [("pending", 0, retry)] * 7
    assert [attempts_of(wdb, "shop", r[0]) for r in rest] == [[]] * 7
    assert {r[1] for r in rows(wdb, mail)} == {"delivered"}
    assert worker.run_once(limit=100).claimed == 0  # nothing due before the retry

    clock.now = retry  # the CRM answers again: all 8, in order, in one pass
    hanging.close()
    again = Receiver()
    try:
        with wdb.write() as conn:  # the CRM moved to a receiver that answers
            conn.execute(
                subscriptions.update().where(subscriptions.c.id == crm).values(url=again.url)
            )
        report = worker.run_once(limit=100)
        assert (report.claimed, report.delivered, report.postponed) == (8, 8, 0)
        assert [r.headers["Fidelite-Delivery-Id"] for r in again.requests] == [
            str(r[0]) for r in rows(wdb, crm)
        ]
        assert [r[1:3] for r in rows(wdb, crm)] == [("delivered", 2)] + [("delivered", 1)] * 7
    finally:
        again.close()
        worker.close()


def test_deliveries_not_claimed_in_the_pass_are_postponed_too(
    wdb: Database, hanging: Hanging, receiver: Receiver
) -> None:
    """Passes of 2: the first pass's CRM timeout postpones every CRM delivery, claimed
    or not, so the next passes claim the mail receiver's only: one timeout in all."""
    crm, _mail = setup(wdb, hanging.url, receiver, members=3)
    clock = Clock()
    worker = DeliveryWorker(wdb, policy=POLICY, allow_private=True, clock=clock, timeout=0.5)
    try:
        total = [worker.run_once(limit=2).as_dict() for _ in range(5)]
    finally:
        worker.close()
    assert len(hanging.hits) == 1
    assert len(receiver.requests) == 6
    assert sum(r["delivered"] for r in total) == 6
    assert sum(r["failed"] for r in total) == 1
    retry = clock.now + timedelta(seconds=10)
    assert [r[1:] for r in rows(wdb, crm)] == [("failed", 1, retry)] + [("pending", 0, retry)] * 5


def test_a_4xx_about_one_event_holds_back_nothing(wdb: Database, receiver: Receiver) -> None:
    """404 is about that event: the subscription's other deliveries go in the same pass."""
    processor(wdb)
    sub = subs.add(wdb, "shop", receiver.url, ["*"], allow_private=True)
    processor(wdb).process(purchase("p1", "ann", "10.00"))
    processor(wdb).process(purchase("p2", "bob", "10.00"))
    receiver.script.append(404)
    clock = Clock()
    worker = DeliveryWorker(wdb, policy=POLICY, allow_private=True, clock=clock, timeout=5)
    try:
        report = worker.run_once()
    finally:
        worker.close()
    assert (report.claimed, report.delivered, report.failed, report.postponed) == (4, 3, 1, 0)
    assert [r[1:3] for r in rows(wdb, sub.id)] == [("failed", 1)] + [("delivered", 1)] * 3


def test_a_503_holds_back_the_subscription_and_not_the_others(
    wdb: Database, receiver: Receiver
) -> None:
    """A 5xx says the destination takes nothing now: the rest of it waits, without an
    attempt; a connection refused does the same for another subscription."""
    processor(wdb)
    sub = subs.add(wdb, "shop", receiver.url, ["*"], allow_private=True)
    closed = Receiver()
    closed.close()  # nothing listens on its port any more: connection refused
    gone = subs.add(wdb, "shop", closed.url, ["*"], allow_private=True)
    processor(wdb).process(purchase("p1", "ann", "10.00"))
    processor(wdb).process(purchase("p2", "bob", "10.00"))
    receiver.script.append(503)
    clock = Clock()
    worker = DeliveryWorker(wdb, policy=POLICY, allow_private=True, clock=clock, timeout=5)
    try:
        report = worker.run_once()
    finally:
        worker.close()
    assert (report.claimed, report.delivered, report.failed, report.postponed) == (8, 0, 2, 6)
    retry = clock.now + timedelta(seconds=10)
    assert [r[1:] for r in rows(wdb, sub.id)] == [("failed", 1, retry)] + [
        ("pending", 0, retry)
    ] * 3
    assert [r[1:] for r in rows(wdb, gone.id)] == [("failed", 1, retry)] + [
        ("pending", 0, retry)
    ] * 3
    assert len(receiver.requests) == 1


def test_new_events_for_a_failing_receiver_wait_without_a_new_timeout(
    wdb: Database, hanging: Hanging, receiver: Receiver
) -> None:
    """After the CRM's timeout, the worker remembers its retry time: the deliveries of
    events recorded later are postponed to it in the next passes, not sent (no second
    timeout), while the mail receiver gets them at once."""
    crm, _mail = setup(wdb, hanging.url, receiver, members=1)
    clock = Clock()
    worker = DeliveryWorker(wdb, policy=POLICY, allow_private=True, clock=clock, timeout=0.5)
    try:
        assert worker.run_once().as_dict()["postponed"] == 1
        for n in range(2):
            processor(wdb).process(purchase(f"q{n}", f"n{n}", "10.00"))
            clock.now += timedelta(seconds=1)
            report = worker.run_once()
            assert (report.claimed, report.delivered, report.postponed) == (4, 2, 2)
    finally:
        worker.close()
    assert len(hanging.hits) == 1
    assert len(receiver.requests) == 6
    retry = clock.now - timedelta(seconds=2) + timedelta(seconds=10)
    assert [r[1:] for r in rows(wdb, crm)] == [("failed", 1, retry)] + [("pending", 0, retry)] * 5


def test_a_delivery_that_goes_dead_holds_nothing_back(wdb: Database, receiver: Receiver) -> None:
    """One attempt each: the first 500 is its last (dead), so the second is tried in the
    same pass (and dies of its own 500), not postponed."""
    processor(wdb)
    sub = subs.add(wdb, "shop", receiver.url, ["*"], allow_private=True)
    processor(wdb).process(purchase("p1", "ann", "10.00"))
    receiver.script.extend([500, 500])
    policy = RetryPolicy(base_seconds=10, cap_seconds=10, jitter=0, max_attempts=1)
    worker = DeliveryWorker(wdb, policy=policy, allow_private=True, clock=Clock(), timeout=5)
    try:
        report = worker.run_once()
    finally:
        worker.close()
    assert (report.claimed, report.dead, report.postponed) == (2, 2, 0)
    assert [r[1:3] for r in rows(wdb, sub.id)] == [("dead", 1), ("dead", 1)]
    assert len(receiver.requests) == 2
