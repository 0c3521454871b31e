"""POST /v1/events in groups: what one group's transaction answers to each request.

The group path checks in one go what the other routes check per request; these tests
give ``EventIntake._apply`` one group directly (the grouping itself is covered by
tests/processing/test_group_commit.py) and assert each reply and what was written.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select

from fidelite.api.idempotency import request_hash
from fidelite.api.intake import ROUTE, EventCall, EventIntake, Reply
from fidelite.api.keys import create_key, credentials, revoke_key
from fidelite.api.limits import RateLimiter
from fidelite.api.problems import Problem
from fidelite.api.tables import api_requests
from fidelite.engine import Event
from fidelite.processing import EventProcessor
from fidelite.processing.tables import events as processed_events
from fidelite.program import parse_program
from fidelite.store import Database
from tests.api.conftest import PROGRAM
from tests.conftest import BACKENDS, make_database

AT = "2026-11-20T10:00:00+01:00"


@pytest.fixture(params=BACKENDS)
def setup(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Database, EventIntake]:
    db = make_database(request.param, request, tmp_path)
    intake = EventIntake(EventProcessor(db, parse_program(PROGRAM)), RateLimiter(0, 1),
                         lease_seconds=30, max_group=50)  # fmt: skip
    return db, intake


def purchase(event_id: str, amount: str = "10") -> Event:
    return Event.model_validate(
        {"id": event_id, "type": "purchase", "member": "ann", "at": AT, "amount": amount}
    )


def call(token: str | None, event: Event | None, key: str | None = None) -> EventCall:
    digest = None
    if key is not None and event is not None:
        digest = request_hash(ROUTE, event.model_dump(mode="json"), json_ready=True)
    return EventCall(credentials(token) if token else None, event, None, key, digest)


def apply(db: Database, intake: EventIntake, calls: list[EventCall]) -> list[Reply]:
    with db.write() as conn:
        return intake._apply(conn, calls)


def recorded(db: Database) -> int:
    with db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(processed_events)).scalar_one())


def codes(replies: list[Reply]) -> list[tuple[int, str | None]]:
    return [(r.status, r.body.get("code") if r.status >= 400 else r.body["outcome"])
            for r in replies]  # fmt: skip


def test_each_request_of_a_group_gets_its_own_answer(setup: tuple[Database, EventIntake]) -> None:
    db, intake = setup
    till = create_key(db, "shop", "integration")[1]
    analyst = create_key(db, "shop", "analyst")[1]
    stranger = create_key(db, "elsewhere", "admin")[1]
    revoked = create_key(db, "shop", "integration")
    revoke_key(db, revoked[0].key_id)
    forged = till[:-4] + "AAAA"
    invalid = EventCall(credentials(till), None, Problem("invalid_request", "body: bad"))
    invalid_unknown = EventCall(None, None, Problem("invalid_request", "body: bad"))
    replies = apply(db, intake, [
        call(till, purchase("a1")),
        call(analyst, purchase("x1")),
        call(stranger, purchase("x2")),
        call(revoked[1], purchase("x3")),
        call(forged, purchase("x4")),
        invalid,
        invalid_unknown,  # not authenticated: 401 before anything about its body
        call(till, purchase("a1")),  # the same event again, after the first: a duplicate
    ])  # fmt: skip
    assert codes(replies) == [
        (201, "processed"), (403, "forbidden"), (403, "wrong_program"),
        (401, "unauthenticated"), (401, "unauthenticated"), (422, "invalid_request"),
        (401, "unauthenticated"), (200, "duplicate"),
    ]  # fmt: skip
    assert replies[3].headers == {"WWW-Authenticate": "Bearer"}
    assert recorded(db) == 1


def test_an_event_id_again_in_a_group_answers_what_the_first_got(
    setup: tuple[Database, EventIntake],
) -> None:
    db, intake = setup
    till = create_key(db, "shop", "integration")[1]
    replies = apply(db, intake, [
        call(till, purchase("a1", "1500"), key="k1"),
        call(till, purchase("a1", "1500"), key="k2"),  # the till lost its key: not written yet
        call(till, purchase("a1", "99"), key="k3"),  # another event under the same id
    ])  # fmt: skip
    assert codes(replies) == [(201, "processed"), (200, "duplicate"), (409, "event_id_conflict")]
    at = "2026-11-20T09:00:00+00:00"
    assert replies[1].body == {
        "event_id": "a1", "outcome": "duplicate", "points": {"points": 1500},
        "transactions": replies[0].body["transactions"],
        "tier_changes": [{"at": "2026-11-20T09:00:00Z", "kind": "upgrade", "from": "bronze",
                          "to": "silver", "value": "1500.0000",
                          "reason": "spend 1500 reached 1000", "event_id": "a1",
                          "until": None}],
        "trace_id": "event:a1",
        "decision": {"event_id": "a1", "member": "ann", "at": at, "trace": [
            {"rule": "base", "outcome": "matched", "points": 1500, "currency": "points"}]},
    }  # fmt: skip
    assert replies[2].body["detail"] == (
        "event 'a1' is recorded with other values (amount '1500.0000' recorded, '99.0000' "
        "sent): a new event needs a new id; to repeat the event, send it as it was first sent"
    )
    # a later group: k2's stored answer, and the same answer read back from the store
    again = apply(db, intake, [call(till, purchase("a1", "1500"), key="k2"),
                               call(till, purchase("a1", "1500"))])  # fmt: skip
    assert [(r.status, r.body) for r in again] == [(200, replies[1].body)] * 2
    assert again[0].headers == {"Idempotent-Replayed": "true"}
    assert recorded(db) == 1


def test_a_key_twice_in_one_group_runs_once(setup: tuple[Database, EventIntake]) -> None:
    db, intake = setup
    till = create_key(db, "shop", "integration")[1]
    replies = apply(db, intake, [
        call(till, purchase("k1"), key="k"),
        call(till, purchase("k1"), key="k"),  # a retry while the first still runs
        call(till, purchase("k2"), key="k"),  # another request under the same key
    ])  # fmt: skip
    assert codes(replies) == [(201, "processed"), (409, "request_in_flight"),
                              (422, "idempotency_key_reused")]  # fmt: skip
    again = apply(db, intake, [call(till, purchase("k1"), key="k")])
    assert (again[0].status, again[0].body) == (201, replies[0].body)
    assert again[0].headers == {"Idempotent-Replayed": "true"}
    assert recorded(db) == 1


def test_a_crashed_requests_key_is_taken_over_after_its_lease(
    setup: tuple[Database, EventIntake],
) -> None:
    db, intake = setup
    till = create_key(db, "shop", "integration")[1]
    event = purchase("late")
    first = call(till, event, key="crashed")
    long_ago = datetime.now(UTC) - timedelta(hours=1)
    with db.write() as conn:  # what a server killed mid-request leaves behind
        conn.execute(insert(api_requests), {
            "program_id": "shop", "idem_key": "crashed", "route": ROUTE,
            "request_hash": first.digest, "state": "in_flight", "created_at": long_ago,
            "updated_at": long_ago,
        })  # fmt: skip
    (reply,) = apply(db, intake, [first])
    assert codes([reply]) == [(201, "processed")]
    with db.read() as conn:
        row = conn.execute(select(api_requests)).one()
    assert (row.state, row.status_code, row.body) == ("done", 201, reply.body)
    assert recorded(db) == 1
