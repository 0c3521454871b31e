"""``POST /v1/events`` at the pace of a shop's tills: requests applied in groups.

A till sends one event per request, and many tills send at once. Handled one by one,
each request would pay its own key lookup, its own Idempotency-Key claim and its own
transaction of about twenty statements. Here the route reads the request on the event
loop (the bearer token, the body, the request hash) and hands it to a
:class:`~fidelite.processing.group_commit.GroupCommit`; its writer thread takes every
request waiting and answers them all from one transaction, checking for the whole group
what the other routes check per request, in the same order:

1. the API keys of the group, read in one query: 401 (unknown, revoked, wrong secret),
   403 (another program's key, a role that may not post events) — revocation takes
   effect at the next group;
2. the body (validated by the route): 422 with every field, only to an authenticated
   caller, as FastAPI answers the other routes;
3. the per-key rate limit: 429 with ``Retry-After`` (charged once per request, even when
   the group is applied again);
4. the Idempotency-Key (:mod:`fidelite.api.idempotency`): the group's stored answers read
   in one query; a completed key is replayed, another body under a key is 422, a key
   still running is 409 (also two requests of one group with the same key);
5. the events of the admitted requests, through the bulk-import batch path
   (:func:`~fidelite.processing.batch.process_events`): each gets the answer it would get
   alone; an event id already recorded gets what that event got then, or
   ``event_id_conflict`` (409) if it was recorded with other values
   (:func:`~fidelite.processing.recorded.settle_duplicates`);
6. the answers of requests with a key, stored in one statement in that same transaction
   (sent with the batch's own writes, ``process_events(..., finish=...)``): an event and
   its stored answer commit together, or neither does. A refusal of the request itself
   (``unknown_event_type``: :func:`~fidelite.api.idempotency.kept`) is not stored: the
   key stays free for the retry once the program handles the type.

As the tables grow, their planner statistics are refreshed between groups
(:class:`~fidelite.processing.statistics.StatisticsRefresh`), as bulk import does.

If the group's transaction fails (a key recorded meanwhile by another server process, a
deadlock, a row the database refuses), each request is applied again on its own
transaction by the same steps, so a failure stays with its own request.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any

from fastapi.encoders import jsonable_encoder
from sqlalchemy import Connection

from fidelite.api.access import refusal
from fidelite.api.idempotency import (
    Answered,
    StoredRequests,
    admit,
    check_key,
    in_flight,
    reused,
    store_answers,
)
from fidelite.api.keys import Credentials, KeyCheck, record_uses
from fidelite.api.limits import RateLimiter
from fidelite.api.problems import Problem, from_exception
from fidelite.engine import Event
from fidelite.engine.tiers import TierChange
from fidelite.processing import EventProcessor, Result
from fidelite.processing.batch import Answer, process_events
from fidelite.processing.group_commit import GroupCommit
from fidelite.processing.recorded import (
    Repeated,
    Settled,
    settle_duplicates,
    signed_points,
    tier_change_entry,
)
from fidelite.processing.statistics import TABLES, StatisticsRefresh
from fidelite.store.script import Script

ROUTE = "POST /v1/events"
METHOD, PATH = "POST", "/v1/events"


@dataclass(frozen=True)
class Reply:
    """What the route sends back: status, JSON body (already JSON-able) and headers."""

    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(eq=False)
class EventCall:
    """One request as the route read it; nothing is checked against the database yet.

    ``event`` is None when the body is invalid, ``invalid`` then says why (answered only
    once the caller is authenticated). ``digest`` is the request hash of an
    Idempotency-Key (route and body).
    """

    credentials: Credentials | None
    event: Event | None
    invalid: Problem | None = None
    idem_key: str | None = None
    digest: str | None = None
    limited: Problem | None = field(default=None, init=False)
    charged: bool = field(default=False, init=False)


class EventIntake:
    """Answers ``POST /v1/events`` requests in groups (one writer thread per process)."""

    def __init__(
        self,
        processor: EventProcessor,
        limiter: RateLimiter,
        *,
        lease_seconds: float,
        max_group: int,
    ) -> None:
        self.processor = processor
        self.program_id = processor.program.id
        self.limiter = limiter
        self.lease_seconds = lease_seconds
        statistics = StatisticsRefresh(processor.db, (*TABLES, "api_requests"), background=True)
        self.group: GroupCommit[EventCall, Reply] = GroupCommit(
            processor.db, self._apply, max_group, after_commit=statistics.count
        )

    async def answer(self, call: EventCall) -> Reply:
        """The reply to ``call``, once the transaction that applied it has committed."""
        return await self.group.answer(call)

    def close(self) -> None:
        """Answer the requests still queued, then stop the writer thread."""
        self.group.close()

    # ------------------------------------------------------------- in the writer

    def _apply(self, conn: Connection, calls: Sequence[EventCall]) -> list[Reply]:
        replies: list[Reply | None] = [None] * len(calls)
        reads = Script(conn)  # the keys and the stored answers: one round trip
        check = KeyCheck(reads, [c.credentials for c in calls if c.credentials is not None])
        known = StoredRequests(reads, self.program_id, {c.idem_key for c in calls if c.idem_key})
        reads.run()
        keys = check.live()
        record_uses(conn, keys.values())  # at most once a minute per key
        admitted: list[int] = []
        for slot, call in enumerate(calls):
            key = keys.get(call.credentials) if call.credentials is not None else None
            problem = refusal(key, self.program_id, METHOD, PATH) or call.invalid
            if problem is None and key is not None:
                problem = self._charge(call, key.key_id)
            if problem is None and call.idem_key is not None:
                problem = _key_problem(call.idem_key)
            if problem is not None:
                replies[slot] = problem_reply(problem)
            else:
                admitted.append(slot)
        taken_over = self._admit_keys(known.rows(), calls, admitted, replies)
        applied = [slot for slot in admitted if replies[slot] is None]
        events = [_event(calls[s]) for s in applied]
        zone = self.processor.program.zone

        def finish(script: Script, answers: list[Answer]) -> None:
            """The replies, stored with the events' own writes (one message less)."""
            stored: list[Answered] = []
            settled = settle_duplicates(conn, self.program_id, events, answers)
            for slot, answer in zip(applied, settled, strict=True):
                reply = _reply(answer, zone)
                replies[slot] = reply
                call = calls[slot]
                if call.idem_key is not None and call.digest is not None:
                    stored.append(Answered(call.idem_key, ROUTE, call.digest, reply.status,
                                           reply.body, taken_over.get(slot)))  # fmt: skip
            store_answers(script, self.program_id, stored)

        # a failed group is redone one request at a time: no savepoint needed
        process_events(self.processor, conn, events, savepoint=False, finish=finish)
        done = [r for r in replies if r is not None]
        assert len(done) == len(calls), "every request has its reply"
        return done

    def _charge(self, call: EventCall, key_id: str) -> Problem | None:
        """The rate limit, charged once per request (a group applied again reuses it)."""
        if not call.charged:
            call.charged = True
            try:
                self.limiter.take(key_id, "events")
            except Problem as problem:
                call.limited = problem
        return call.limited

    def _admit_keys(
        self,
        rows: dict[str, Any],
        calls: Sequence[EventCall],
        admitted: list[int],
        replies: list[Reply | None],
    ) -> dict[int, datetime]:
        """Answer the admitted requests whose Idempotency-Key says so (replay, 422, 409);
        return the slots that take over a crashed request's key, with its row's time."""
        keyed = [s for s in admitted if calls[s].idem_key is not None]
        first: dict[str, str] = {}  # key -> digest of the group's first request with it
        taken_over: dict[int, datetime] = {}
        now = datetime.now(UTC)
        for slot in keyed:
            call = calls[slot]
            key, digest = call.idem_key or "", call.digest or ""
            try:
                if key in first:  # the same key twice in one group: the first is running
                    raise reused() if first[key] != digest else in_flight()
                first[key] = digest
                row = rows.get(key)
                if row is None:
                    continue
                replay = admit(row, digest, now, self.lease_seconds)
            except Problem as problem:
                replies[slot] = problem_reply(problem)
                continue
            if replay is None:
                taken_over[slot] = row.updated_at
            else:
                replies[slot] = Reply(replay.status, replay.body, {"Idempotent-Replayed": "true"})
        return taken_over


def problem_reply(problem: Problem) -> Reply:
    """A problem as the API's error handlers answer it (headers included)."""
    headers: dict[str, str] = {}
    if "retry_after" in problem.extra:
        headers["Retry-After"] = str(problem.extra["retry_after"])
    if problem.status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return Reply(problem.status, jsonable_encoder(problem.body()), headers)


def _key_problem(key: str) -> Problem | None:
    try:
        check_key(key)
    except Problem as problem:
        return problem
    return None


def _event(call: EventCall) -> Event:
    assert call.event is not None, "only requests with a valid body are applied"
    return call.event


def result_body(result: Result, zone: tzinfo) -> dict[str, Any]:
    """What the till needs back: points per currency, tier changes, the decision trace
    (the shape documented by ``EventResult`` in :mod:`fidelite.api.routes.events`).
    The earnings' ``pending_until`` and ``expires_at`` are on the program's clock
    (``zone``), as ``program simulate`` writes them (the pending end kept the event's
    offset, the expiry the program's).

    JSON-ready as built (times as ISO 8601 text), so no generic encoder has to walk it:
    that walk cost more than a tenth of a millisecond per event.
    """
    decision = result.decision.as_dict(zone) if result.decision else None
    return {
        "event_id": result.event_id,
        "outcome": result.outcome.value,
        "points": signed_points(result.receipts),
        "transactions": [r.transaction_id for r in result.receipts],
        "tier_changes": _changes(result.tier_changes, result.event_id),
        "trace_id": f"event:{result.event_id}",
        "decision": decision,
    }


def repeated_body(first: Repeated) -> dict[str, Any]:
    """The answer to an event id sent again: ``duplicate`` (nothing posted now), with
    what the event got the first time: its points per currency, ledger transactions and
    tier changes, and its decision as recorded (the event, its member and time, in UTC,
    and the rules' trace; none for a refund)."""
    decision = None if first.trace is None else {
        "event_id": first.event_id, "member": first.member, "at": first.at.isoformat(),
        "trace": first.trace,
    }  # fmt: skip
    return {
        "event_id": first.event_id,
        "outcome": "duplicate",
        "points": dict(first.points),
        "transactions": list(first.transactions),
        "tier_changes": _changes(first.tier_changes, first.event_id),
        "trace_id": f"event:{first.event_id}",
        "decision": decision,
    }


def _changes(changes: Sequence[TierChange], event_id: str) -> list[dict[str, Any]]:
    """The event's tier changes as ``GET /v1/events/{id}`` shows them once recorded."""
    return [tier_change_entry(c, event_id) for c in changes]


def _reply(answer: Settled, zone: tzinfo) -> Reply:
    """201 processed, 200 duplicate, or the business rejection's problem (times of a
    result's earnings in ``zone``, the program's)."""
    if isinstance(answer, Repeated):
        return Reply(200, repeated_body(answer))
    if isinstance(answer, Result):
        status = 200 if answer.outcome.value == "duplicate" else 201
        return Reply(status, result_body(answer, zone))
    problem = from_exception(answer)
    assert problem is not None, "process_events answers results and business rejections"
    return Reply(problem.status, jsonable_encoder(problem.body()))
