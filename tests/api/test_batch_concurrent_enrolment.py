"""Several ``POST /v1/events:batch`` calls at the same moment, enrolling the same new
members: every batch succeeds (200), every event is processed exactly once, each
member is enrolled once and holds the points of its events, and the books balance.

On PostgreSQL two batches that name the same new card used to enrol it together: one
deadlocked on the other or collided with its enrolment (500, the whole batch lost).
Several rounds of four batches, released together by a barrier, each of 20 events
drawn from the same 30 new cards."""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from fidelite.ledger import assert_invariants
from tests.api.conftest import Live
from tests.support import waits_on_a_row_lock

ROUNDS = 4
BATCHES = 4
EVENTS = 20
CARDS = 30


def _batches(round_no: int) -> list[list[dict[str, Any]]]:
    pick = random.Random(round_no)
    cards = [f"R{round_no}-CARD-{n:02d}" for n in range(CARDS)]
    return [
        [{"id": f"r{round_no}-b{b}-e{e}", "type": "purchase", "member": pick.choice(cards),
          "at": f"2026-03-01T10:{e:02d}:00+01:00", "amount": str(1 + (b * EVENTS + e) % 9)}
         for e in range(EVENTS)]
        for b in range(BATCHES)
    ]  # fmt: skip


def _send(url: str, token: str, events: list[dict[str, Any]], start: threading.Barrier) -> Any:
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"},
                      timeout=120) as client:  # fmt: skip
        start.wait(timeout=60)
        reply = client.post("/v1/events:batch", json={"events": events})
    return reply.status_code, reply.json() if reply.status_code < 500 else reply.text


def test_concurrent_batches_enrolling_the_same_new_members_all_apply(live: Live) -> None:
    token = live.tokens["admin"]
    expected: dict[str, int] = {}
    all_ids: list[str] = []
    for round_no in range(ROUNDS):
        batches = _batches(round_no)
        start = threading.Barrier(BATCHES)
        with ThreadPoolExecutor(max_workers=BATCHES) as pool:
            sent = [pool.submit(_send, live.url, token, b, start) for b in batches]
            answers = [f.result(timeout=180) for f in sent]
        assert [status for status, _ in answers] == [200] * BATCHES, answers
        for events, (_, body) in zip(batches, answers, strict=True):
            assert [r["event_id"] for r in body["results"]] == [e["id"] for e in events]
            assert [r["outcome"] for r in body["results"]] == ["processed"] * EVENTS
            assert [r["points"] for r in body["results"]] == [
                {"points": int(e["amount"])} for e in events
            ]
            for e in events:
                expected[e["member"]] = expected.get(e["member"], 0) + int(e["amount"])
                all_ids.append(e["id"])
    with live.db.read() as conn:
        recorded = conn.execute(text(
            "SELECT event_id FROM processed_events WHERE program_id = 'shop' ORDER BY event_id"
        )).scalars().all()  # fmt: skip
        members = conn.execute(text(
            "SELECT ref, count(*) FROM members WHERE program_id = 'shop' GROUP BY ref"
        )).all()  # fmt: skip
        states = conn.execute(text(
            "SELECT count(*) FROM member_states WHERE program_id = 'shop'"
        )).scalar_one()  # fmt: skip
        balances = dict(conn.execute(text(
            "SELECT m.ref, a.balance FROM accounts a JOIN members m ON m.id = a.member_id "
            "WHERE a.kind = 'available' AND m.program_id = 'shop'"
        )).all())  # fmt: skip
    assert recorded == sorted(all_ids)  # each event once
    assert sorted(members) == sorted((ref, 1) for ref in expected)  # each card enrolled once
    assert states == len(expected)
    assert {ref: int(b) for ref, b in balances.items()} == expected
    assert_invariants(live.db, "shop")
    # sent again: every event is a duplicate, nothing more is posted
    with httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {token}"},
                      timeout=60) as client:  # fmt: skip
        again = client.post("/v1/events:batch", json={"events": _batches(0)[0]})
    assert again.status_code == 200
    assert {r["outcome"] for r in again.json()["results"]} == {"duplicate"}
    with live.db.read() as conn:
        count = conn.execute(text("SELECT count(*) FROM processed_events")).scalar_one()
    assert count == len(all_ids)


def test_a_batch_aborted_by_a_deadlock_is_run_again(live: Live) -> None:
    """Another writer (not a batch) enrols ``NEW`` and then wants the row lock of ``OLD``,
    which the batch holds while it waits to enrol ``NEW``: PostgreSQL aborts the batch's
    transaction (it waited first). The batch is run again once the other writer is done,
    and both its events are applied, once."""
    if not live.db.is_postgres:
        pytest.skip("a deadlock between two writers: PostgreSQL (SQLite writers are serial)")
    token = live.tokens["admin"]
    with live.client("admin") as c:
        assert c.post("/v1/members", json={"id": "OLD"}).status_code == 201
    events = [
        {"id": "d1", "type": "purchase", "member": "OLD", "at": "2026-03-01T10:00:00+01:00",
         "amount": "7"},
        {"id": "d2", "type": "purchase", "member": "NEW", "at": "2026-03-01T10:01:00+01:00",
         "amount": "5"},
    ]  # fmt: skip
    holder = live.db.writer.connect()
    try:
        holder.execute(text(
            "INSERT INTO members (program_id, ref, status, created_at) "
            "VALUES ('shop', 'NEW', 'active', now())"
        ))  # fmt: skip
        with ThreadPoolExecutor(max_workers=1) as pool:
            sent = pool.submit(_send, live.url, token, events, threading.Barrier(1))
            assert waits_on_a_row_lock(holder, 1)  # the batch waits to enrol NEW
            # the other writer now wants OLD: a deadlock, the batch's transaction aborted
            holder.execute(text("SELECT id FROM members WHERE ref = 'OLD' FOR UPDATE"))
            holder.rollback()  # the other writer gives up its enrolment of NEW
            status, body = sent.result(timeout=60)
    finally:
        holder.close()
    assert status == 200, body
    assert [(r["event_id"], r["outcome"], r["points"]) for r in body["results"]] == [
        ("d1", "processed", {"points": 7}),
        ("d2", "processed", {"points": 5}),
    ]
    with live.db.read() as conn:
        balances = conn.execute(text(
            "SELECT m.ref, a.balance FROM accounts a JOIN members m ON m.id = a.member_id "
            "WHERE a.kind = 'available' ORDER BY m.ref"
        )).all()  # fmt: skip
        recorded = conn.execute(text(
            "SELECT event_id FROM processed_events ORDER BY event_id"
        )).scalars().all()  # fmt: skip
    assert [tuple(r) for r in balances] == [("NEW", 5), ("OLD", 7)]
    assert recorded == ["d1", "d2"]
    assert_invariants(live.db, "shop")
