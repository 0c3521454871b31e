"""A member's erasure stops the deliveries a worker has claimed and not sent yet (the
worker reads the lease again right before each send), an attempt is logged exactly when
it was sent, and the erasure blanks the receivers' answers kept in the attempt log."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from fidelite.api.keys import create_key
from fidelite.privacy import erase_member, export_member
from fidelite.store import Database
from fidelite.webhooks import DeliveryWorker, log, replay
from fidelite.webhooks import subscriptions as subs
from fidelite.webhooks.outbox import dispatch
from fidelite.webhooks.tables import attempts, deliveries, erasures
from tests.api.conftest import start_server
from tests.cli.support import fidelite
from tests.webhooks.conftest import Receiver
from tests.webhooks.support import Clock, processor, purchase


def two_members(db: Database, receiver: Receiver) -> None:
    """ann's then bob's member.created, each waiting for one delivery."""
    processor(db)
    subs.add(db, "shop", receiver.url, ["member.created"], allow_private=True)
    processor(db).process(purchase("p1", "ann", "10.00"))
    processor(db).process(purchase("p2", "bob", "10.00"))
    dispatch(db)


def rows(db: Database) -> list[tuple[Any, ...]]:
    with db.read() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                select(deliveries.c.id, deliveries.c.state, deliveries.c.attempts,
                       deliveries.c.last_status, deliveries.c.last_error,
                       deliveries.c.lease_token)
                .order_by(deliveries.c.id)
            )
        ]  # fmt: skip


def attempt_rows(db: Database) -> list[tuple[Any, ...]]:
    with db.read() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                select(attempts.c.delivery_id, attempts.c.number, attempts.c.status,
                       attempts.c.error, attempts.c.response)
                .order_by(attempts.c.id)
            )
        ]  # fmt: skip


def erase(db: Database, ref: str) -> None:
    with db.write() as conn:
        erase_member(conn, "shop", ref)


def test_a_delivery_claimed_before_an_erasure_is_not_sent_after_it(
    wdb: Database, receiver: Receiver
) -> None:
    """bob is erased while the worker sends ann's delivery (the batch's first): bob's,
    claimed in the same batch, is not sent, and no attempt of it is logged."""
    two_members(wdb, receiver)
    clock = Clock()
    asked = []

    def erase_bob_before_the_second_send() -> bool:
        asked.append(1)
        if len(asked) == 2:
            erase(wdb, "bob")
        return False

    worker = DeliveryWorker(wdb, allow_private=True, clock=clock, timeout=5)
    report = worker.run_once(stop=erase_bob_before_the_second_send)
    worker.close()
    assert report.as_dict() == {
        "claimed": 2, "delivered": 1, "failed": 0, "dead": 0, "lost": 1, "released": 0,
        "postponed": 0,
    }  # fmt: skip
    assert len(receiver.requests) == 1
    assert b'"member":"ann"' in receiver.requests[0].body
    (ann, bob) = [r["id"] for r in reversed(log(wdb, "shop"))]
    assert rows(wdb) == [
        (ann, "delivered", 1, 200, None, None),
        (bob, "dead", 0, None, "member erased", None),
    ]
    assert attempt_rows(wdb) == [(ann, 1, 200, None, "ok")]


def test_a_claim_held_by_hand_is_not_sent_after_the_erasure(
    wdb: Database, receiver: Receiver
) -> None:
    """DeliveryWorker.deliver on a claim taken before the erasure: not sent, lost."""
    two_members(wdb, receiver)
    worker = DeliveryWorker(wdb, allow_private=True, clock=Clock(), timeout=5)
    claims = worker.claim(10)
    erase(wdb, "ann")
    assert [worker.deliver(c) for c in claims] == ["lost", "delivered"]
    worker.close()
    assert [b'"member":"bob"' in r.body for r in receiver.requests] == [True]
    ann, bob = claims[0].id, claims[1].id
    assert rows(wdb) == [
        (ann, "dead", 0, None, "member erased", None),
        (bob, "delivered", 1, 200, None, None),
    ]
    assert attempt_rows(wdb) == [(bob, 1, 200, None, "ok")]


@pytest.mark.parametrize(("status", "expected"), [(200, "delivered"), (500, "dead")])
def test_an_erasure_during_the_post_is_recorded_as_sent(
    wdb: Database, receiver: Receiver, monkeypatch: pytest.MonkeyPatch, status: int,
    expected: str,
) -> None:  # fmt: skip
    """The erasure commits after the worker's last check, while the POST is in flight:
    the receiver gets the event (the window no check closes); the attempt is logged
    without the answer's body, and the delivery counts it (delivered if taken, else
    dead, member erased)."""
    two_members(wdb, receiver)
    receiver.script.append(status)
    worker = DeliveryWorker(wdb, allow_private=True, clock=Clock(), timeout=5)
    claims = worker.claim(1)
    send = worker.send

    def erase_then_send(claim: Any) -> Any:
        erase(wdb, "ann")
        return send(claim)

    monkeypatch.setattr(worker, "send", erase_then_send)
    assert worker.deliver(claims[0]) == expected
    worker.close()
    assert len(receiver.requests) == 1 and b'"member":"ann"' in receiver.requests[0].body
    ann = claims[0].id
    error = None if status == 200 else "member erased"
    assert rows(wdb)[0] == (ann, expected, 1, status, error, None)
    assert attempt_rows(wdb) == [(ann, 1, status, None if status == 200 else "HTTP 500", None)]


def test_the_erasure_blanks_the_answers_kept_in_the_attempt_log(
    wdb: Database, receiver: Receiver
) -> None:
    """ann's deliveries' attempts keep time, status and error, not the answer's body
    (a receiver may echo the event); bob's keep theirs. (A 422 is about that event:
    bob's delivery is not held back by it.)"""
    two_members(wdb, receiver)
    receiver.script.extend([422, 200])
    clock = Clock()
    worker = DeliveryWorker(wdb, allow_private=True, clock=clock, timeout=5)
    assert worker.run_once().as_dict()["failed"] == 1
    worker.close()
    ann, bob = [r["id"] for r in reversed(log(wdb, "shop"))]
    assert attempt_rows(wdb) == [(ann, 1, 422, "HTTP 422", "ok"), (bob, 1, 200, None, "ok")]
    erase(wdb, "ann")
    assert attempt_rows(wdb) == [(ann, 1, 422, "HTTP 422", None), (bob, 1, 200, None, "ok")]
    with wdb.read() as conn:
        exported = export_member(conn, "shop", "erased-1")
    (event,) = [e for e in exported["webhook_events"] if e["deliveries"]]
    (delivery,) = event["deliveries"]
    assert [(a["number"], a["status"], a["response"]) for a in delivery["attempt_log"]] == [
        (1, 422, None)
    ]


def test_a_delivery_replayed_after_its_claim_is_not_sent_by_the_old_claim(
    wdb: Database, receiver: Receiver
) -> None:
    """The claim's lease is read again before the send: a replay took it, so the
    worker holding the old claim sends nothing (the next pass sends it once)."""
    two_members(wdb, receiver)
    worker = DeliveryWorker(wdb, allow_private=True, clock=Clock(), timeout=5)
    claims = worker.claim(1)
    replay(wdb, "shop", claims[0].id)
    assert worker.deliver(claims[0]) == "lost"
    assert receiver.requests == [] and attempt_rows(wdb) == []
    assert worker.run_once().delivered == 2
    worker.close()
    assert len(receiver.requests) == 2
    assert [(d, n) for d, n, *_ in attempt_rows(wdb)] == [(claims[0].id, 1), (claims[0].id + 1, 1)]


@pytest.mark.parametrize(("how", "named"), [("cli", "erased-1"), ("cli", "ann"), ("api", "ann")])
def test_a_repeated_erasure_blanks_answers_an_earlier_version_kept(
    wdb: Database, receiver: Receiver, how: str, named: str
) -> None:
    """A database erased by an earlier version keeps the receivers' answers (which may
    quote the reference) in the attempt log of the erased member's deliveries. Erasing
    again (the tombstone or the reference, on the command line or through the API)
    answers the first erasure, changes nothing else, and blanks them."""
    two_members(wdb, receiver)
    receiver.script.extend([422, 200])
    worker = DeliveryWorker(wdb, allow_private=True, clock=Clock(), timeout=5)
    assert worker.run_once().as_dict()["failed"] == 1
    worker.close()
    ann, bob = [r["id"] for r in reversed(log(wdb, "shop"))]
    erase(wdb, "ann")
    with wdb.write() as conn:  # the answer as an earlier version's erasure left it
        conn.execute(
            update(attempts).where(attempts.c.delivery_id == ann)
            .values(response='{"member":"ann","email":"ann@example.com"}')
        )  # fmt: skip
    before = rows(wdb)
    if how == "cli":
        out = fidelite("member", "erase", named, "--program", "shop", "--yes", "--format",
                       "json", db=wdb.url)  # fmt: skip
        answer = json.loads(out.stdout)
    else:
        server, url = start_server(wdb)
        try:
            token = create_key(wdb, "shop", "admin")[1]
            reply = httpx.delete(f"{url}/v1/members/{named}", timeout=30,
                                 headers={"Authorization": f"Bearer {token}",
                                          "Idempotency-Key": "again"})  # fmt: skip
        finally:
            server.stop()
        assert reply.status_code == 200
        answer = reply.json()
    assert (answer["tombstone"], answer["replayed"]) == ("erased-1", True)
    assert attempt_rows(wdb) == [(ann, 1, 422, "HTTP 422", None), (bob, 1, 200, None, "ok")]
    assert rows(wdb) == before
    with wdb.read() as conn:
        assert conn.execute(select(func.count()).select_from(erasures)).scalar_one() == 1
