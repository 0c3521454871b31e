"""A replay racing a member's erasure never sends the tombstone under an event id
receivers hold with the member's reference, whichever runs first (PostgreSQL, where
they run at once), and the worker never sends an anonymised event."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from sqlalchemy import update

from fidelite.privacy import erase_member
from fidelite.store import Database
from fidelite.webhooks import DeliveryWorker, WebhookError, attempts_of, log
from fidelite.webhooks import deliveries as deliveries_module
from fidelite.webhooks import subscriptions as subs
from fidelite.webhooks.deliveries import replay_all
from fidelite.webhooks.tables import deliveries
from tests.webhooks.conftest import Receiver
from tests.webhooks.support import Clock, processor, purchase


def delivered_ann(db: Database, receiver: Receiver, clock: Clock) -> int:
    """ann's member.created delivered once (with "member": "ann"); its delivery id."""
    processor(db)
    subs.add(db, "shop", receiver.url, ["member.created"], allow_private=True)
    processor(db).process(purchase("p1", "ann", "10.00"))
    worker = DeliveryWorker(db, allow_private=True, clock=clock, timeout=5)
    assert worker.run_once().delivered == 1
    worker.close()
    assert b'"member":"ann"' in receiver.requests[0].body
    (row,) = log(db, "shop")
    return int(row["id"])


def state(db: Database) -> list[tuple[Any, ...]]:
    return [(d["id"], d["state"], d["last_error"], d["attempts"]) for d in log(db, "shop")]


def nothing_more_is_sent(db: Database, receiver: Receiver, clock: Clock) -> None:
    worker = DeliveryWorker(db, allow_private=True, clock=clock, timeout=5)
    worker.run_once()
    worker.close()
    assert len(receiver.requests) == 1  # only ann's, before the erasure
    assert all(b"erased" not in r.body for r in receiver.requests)


@pytest.mark.postgres
def test_an_erasure_between_the_replays_check_and_its_update_waits_and_stops_it(
    wdb: Database, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The replay has checked the event (not erased) when the erasure starts: the
    erasure waits for the replay, then stops the delivery it made pending."""
    if not wdb.is_postgres:
        pytest.skip("SQLite runs writers one at a time")
    clock = Clock()
    delivery_id = delivered_ann(wdb, receiver, clock)
    checked = threading.Event()
    check = deliveries_module._refuse_erased

    def check_then_pause(conn: Any, ids: list[int]) -> None:
        check(conn, ids)
        checked.set()
        time.sleep(1.0)  # the erasure starts here

    monkeypatch.setattr(deliveries_module, "_refuse_erased", check_then_pause)
    replayed: dict[str, Any] = {}
    thread = threading.Thread(
        target=lambda: replayed.update(rows=replay_all(wdb, "shop", [delivery_id], at=clock.now))
    )
    thread.start()
    assert checked.wait(10)
    with wdb.write() as conn:
        erase_member(conn, "shop", "ann")
    thread.join(10)
    assert [r["state"] for r in replayed["rows"]] == ["pending"]
    assert state(wdb) == [(delivery_id, "dead", "member erased", 1)]
    nothing_more_is_sent(wdb, receiver, clock)
    assert len(attempts_of(wdb, "shop", delivery_id)) == 1


@pytest.mark.postgres
def test_a_replay_during_an_erasure_waits_for_it_and_is_refused(
    wdb: Database, receiver: Receiver
) -> None:
    """The erasure runs (not committed) when the replay starts: the replay waits for
    it, then refuses the delivery as about an erased member; nothing changed."""
    if not wdb.is_postgres:
        pytest.skip("SQLite runs writers one at a time")
    clock = Clock()
    delivery_id = delivered_ann(wdb, receiver, clock)
    replayed: dict[str, Any] = {}

    def run_replay() -> None:
        try:
            replayed["rows"] = replay_all(wdb, "shop", [delivery_id], at=clock.now)
        except WebhookError as exc:
            replayed["error"] = exc.code

    with wdb.write() as conn:
        erase_member(conn, "shop", "ann")
        thread = threading.Thread(target=run_replay)
        thread.start()
        time.sleep(0.5)  # the replay now waits for this transaction
        assert thread.is_alive()
    thread.join(10)
    assert replayed == {"error": "member_erased"}
    assert state(wdb) == [(delivery_id, "delivered", None, 1)]
    nothing_more_is_sent(wdb, receiver, clock)


def test_the_worker_never_sends_an_anonymised_event(wdb: Database, receiver: Receiver) -> None:
    """A delivery left pending with its event anonymised (how a replay and an erasure
    could once interleave) is stopped dead, member erased, with no attempt."""
    clock = Clock()
    delivery_id = delivered_ann(wdb, receiver, clock)
    with wdb.write() as conn:
        erase_member(conn, "shop", "ann")
        conn.execute(
            update(deliveries)
            .where(deliveries.c.id == delivery_id)
            .values(state="pending", next_attempt_at=clock.now, delivered_at=None)
        )
    worker = DeliveryWorker(wdb, allow_private=True, clock=clock, timeout=5)
    report = worker.run_once()
    worker.close()
    assert report.as_dict() == {
        "claimed": 0,
        "delivered": 0,
        "failed": 0,
        "dead": 0,
        "lost": 0,
        "released": 0,
        "postponed": 0,
    }
    assert state(wdb) == [(delivery_id, "dead", "member erased", 1)]
    (row,) = log(wdb, "shop")
    assert (row["next_attempt_at"], row["delivered_at"]) == (None, None)
    assert len(attempts_of(wdb, "shop", delivery_id)) == 1
    assert len(receiver.requests) == 1
