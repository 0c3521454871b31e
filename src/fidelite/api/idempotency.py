"""``Idempotency-Key``: the first response to a key is stored and replayed to retries.

Per program and Idempotency-Key, shared by all the program's API keys (a key one client
used is taken for every other; docs/api.md tells clients to make keys unique, e.g. a
prefix naming the till): the first request records ``in_flight`` with a hash of its route
and body, runs, and stores its status and body (business rejections included: a retry
gets the same answer). A retry with the same route and body gets the stored response
(header ``Idempotent-Replayed: true``); with a different route or body, ``422
idempotency_key_reused``; while the first is still running, ``409 request_in_flight``.

Refusals of the request itself are not stored (:func:`kept`), as with Stripe's keys: a
request that fails validation before anything executes saves no result. These are the
codes of :data:`NOT_STORED`: the body or a setting of it invalid, or something the
program's configuration or the server's settings do not offer (an event type, a
currency, a tier, a coupon campaign, a reward of the catalogue or its validity dates, a
support key's adjustment limit), or the server's clock (an event dated ahead, a reward
not yet or no longer available). Such a refusal wrote nothing, and the operator can
change what caused it (or time does): the key is freed, so the client's retry with the
same key, once the program handles it, runs and succeeds, as ``fidelite rewards redeem
--key`` does. That is safe for the reason a crashed request's retry is (below): nothing
was applied, and the operation is idempotent on its own key anyway. Refusals that answer
the members' state (``insufficient_points``, ``reward_out_of_stock``,
``unknown_member``, ``event_id_conflict``...) are stored and replayed: the client acted
on that answer; to try again later it uses a new key. A redemption's refusal that an
older version stored (``reward_unknown``, ``reward_not_yet_available`` and
``reward_expired`` were stored before) is not replayed: the retry takes the key over and
runs, as if it had never been stored (:func:`_claim`). ``POST /v1/events`` does not do
this: it replays whatever answer its keys stored (:func:`admit`), an
``unknown_event_type`` an older version stored included.

Crashes: a request whose server died mid-way leaves ``in_flight``; after the lease
(``lease_seconds``, default 30) a retry takes it over and runs again. That is safe:
every operation below is idempotent on its own key (event ids, redemption and ledger keys
derived from the Idempotency-Key), so running again replays, never posts twice. A 5xx
is not stored (the retry runs again).

``POST /v1/events`` goes another way (:mod:`fidelite.api.intake`): its requests are
applied in groups, one transaction each, and the same rules are checked there for the
whole group at once (:func:`stored_requests`, :func:`admit`) and its answers stored in
that transaction (:func:`store_answers`): a change and its stored answer commit
together, and nothing is left ``in_flight`` by a crash.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from sqlalchemy import (
    Connection,
    Delete,
    Select,
    Update,
    bindparam,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from fidelite.api.problems import MEDIA_TYPE, Answer, Problem, carried, from_exception
from fidelite.api.tables import api_requests
from fidelite.ledger import unknown_member
from fidelite.privacy.answers import erased_meanwhile, route_members
from fidelite.store import Database
from fidelite.store.locking import ConcurrentUpdateError
from fidelite.store.script import Script, one_of

LEASE_SECONDS = 30
MAX_KEY_LENGTH = 200
Outcome = tuple[int, Any]

NOT_STORED = frozenset({
    "invalid_request", "invalid_assignment", "invalid_count",  # the request's own content
    "unknown_event_type", "unknown_currency", "unknown_tier", "no_tiers",  # the program's
    "unknown_campaign",  # configuration, which the operator may change
    "reward_unknown",  # the catalogue (the program file): a reward the operator may add,
    "reward_not_yet_available", "reward_expired",  # or its validity against the clock
    "adjustment_over_limit",  # a setting of the server (--support-adjustment-limit)
    "event_in_future",  # the time of processing: the same event is taken once it is due
})  # fmt: skip
"""Refusals not stored under an Idempotency-Key: each is decided before anything is
written, from the request and the program's configuration, the server's settings or
its clock. On the routes answered through :func:`run_once` an answer stored with one of
these codes (by an older version: the redemption codes ``reward_unknown``,
``reward_not_yet_available``, ``reward_expired``) is not replayed either: the retry
takes the key over and runs (:func:`_claim`). ``POST /v1/events`` checks its keys with
:func:`admit` only and replays what they stored, an ``unknown_event_type`` stored by an
older version included."""


def kept(status: int, body: Any) -> bool:
    """Whether the answer ``status``/``body`` is stored under its key: any answer but a
    5xx (raised, in practice: the retry runs again) and a refusal of :data:`NOT_STORED`."""
    if status >= 500:
        return False
    return status < 400 or not isinstance(body, dict) or body.get("code") not in NOT_STORED


def request_hash(route: str, body: Any, *, json_ready: bool = False) -> str:
    """SHA-256 of the route and the body in canonical JSON (keys sorted). A body that is
    ``json_ready`` (e.g. ``model_dump(mode="json")``) skips the encoder's walk: same hash."""
    plain = body if json_ready else jsonable_encoder(body)
    text = json.dumps([route, plain], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def run_once(
    db: Database,
    program_id: str,
    key: str | None,
    route: str,
    body: Any,
    run: Callable[[], Outcome],
    *,
    lease_seconds: float = LEASE_SECONDS,
    replayed: Callable[[Any], Any] | None = None,
    shown: Callable[[Any], Any] | None = None,
) -> JSONResponse:
    """Run ``run`` (returning status and body) at most once per ``key``; replay after.

    ``replayed``: what the stored body becomes when it is sent again, for an answer that
    says in its body whether it is a replay (``"replayed": true``, as the header says;
    the stored body is the first answer's, which said false). ``shown``: what a success
    (2xx) body becomes when it is sent, the first time and to every retry, for what is
    answered but never stored (a webhook subscription's secret, read back from the
    subscription); it may raise a :class:`Problem` instead (the subscription removed
    since)."""
    if key is None:
        return _answer(*_shown(_outcome(run), shown))
    check_key(key)
    digest = request_hash(route, body)
    claimed = _claim(db, program_id, key, route, digest, lease_seconds)
    if isinstance(claimed, Replay):
        again = claimed.body if replayed is None else replayed(claimed.body)
        return _answer(*_shown((claimed.status, again), shown), replayed=True)
    try:
        status, payload = _outcome(run)
    except BaseException:
        _release(db, program_id, key, claimed)
        raise
    if not kept(status, payload):  # nothing written: the key is free for the retry
        _release(db, program_id, key, claimed)
        return _answer(status, payload)
    with db.write() as conn:
        _store_in(conn, program_id, key, route, status, payload, claimed)
    return _answer(*_shown((status, payload), shown))


def _shown(outcome: Outcome, shown: Callable[[Any], Any] | None) -> Outcome:
    """``outcome`` as sent: its success body through ``shown`` (if any)."""
    status, payload = outcome
    if shown is None or not 200 <= status < 300:
        return outcome
    return status, shown(payload)


def said_again(body: Any) -> Any:
    """``body`` with ``"replayed": true`` if it has that field (a success; a stored
    refusal has none and is sent as it is)."""
    if isinstance(body, dict) and "replayed" in body:
        return {**body, "replayed": True}
    return body


def check_key(key: str) -> None:
    """Refuse a key of the wrong length (422 ``invalid_request``).

    The length is in bytes: the server reads header values as Latin-1, one character
    per byte sent (``é`` sent in UTF-8 is two), and stores the key so; at most
    :data:`MAX_KEY_LENGTH` of them fit the ``idem_key`` column (``VARCHAR(200)``, which
    PostgreSQL counts in characters)."""
    if not key or len(key) > MAX_KEY_LENGTH:
        raise Problem("invalid_request", f"Idempotency-Key: 1 to {MAX_KEY_LENGTH} bytes")


@dataclass(frozen=True)
class Replay:
    """The stored answer to a key, sent again to a retry."""

    status: int
    body: Any


def admit(row: Any, digest: str, now: datetime, lease_seconds: float) -> Replay | None:
    """What the stored request ``row`` of a key means for a new request with that key
    and request hash ``digest``: its stored answer (:class:`Replay`), or None when a
    crashed request's lease has run out (the new request takes the key over). Raises
    ``422 idempotency_key_reused`` for another request, ``409 request_in_flight`` while
    the first still runs."""
    if row.request_hash != digest:
        raise reused()
    if row.state == "done":
        return Replay(int(row.status_code), row.body)
    if _aware(row.updated_at) > now - timedelta(seconds=lease_seconds):
        raise in_flight()
    return None


def reused() -> Problem:
    return Problem("idempotency_key_reused", "this Idempotency-Key was used for another "
                   "request (different route or body)", status=422)  # fmt: skip


def in_flight() -> Problem:
    return Problem("request_in_flight", "a request with this Idempotency-Key is still "
                   "running; retry later", status=409)  # fmt: skip


def stored_requests(conn: Connection, program_id: str, keys: Collection[str]) -> dict[str, Any]:
    """The stored request rows of ``keys`` (one query), by key."""
    script = Script(conn)
    stored = StoredRequests(script, program_id, keys)
    script.run()
    return stored.rows()


class StoredRequests:
    """The stored requests of a group's keys, read with the group's other reads (a
    :class:`~fidelite.store.script.Script`); :meth:`rows` once it has run."""

    def __init__(self, script: Script, program_id: str, keys: Collection[str]) -> None:
        query = _stored_query(script.is_postgres)
        self._rows = [script.select(query, {"pid": program_id, "keys": part})
                      for part in script.parts(sorted(keys))]  # fmt: skip

    def rows(self) -> dict[str, Any]:
        """The stored rows, by key."""
        return {row.idem_key: row for part in self._rows for row in part}


@functools.cache
def _stored_query(postgres: bool) -> Select[*tuple[Any, ...]]:
    return select(api_requests).where(
        api_requests.c.program_id == bindparam("pid"),
        one_of(api_requests.c.idem_key, "keys", postgres),
    )


def store_answers(script: Script, program_id: str, answers: Sequence[Answered]) -> None:
    """Record the answers of requests applied in the script's transaction, with its
    other writes (keys taken over from a crashed request: one update each). A key
    recorded meanwhile by another writer makes the insert fail on the primary key, so
    the transaction fails and the change with it. An answer not :func:`kept` is not
    recorded (a crashed request's key it took over is freed)."""
    now = datetime.now(UTC)
    rows = [
        {"program_id": program_id, "idem_key": a.key, "route": a.route,
         "request_hash": a.digest, "state": "done", "status_code": a.status, "body": a.body,
         "created_at": now, "updated_at": now}
        for a in answers if a.taken_over is None and kept(a.status, a.body)
    ]  # fmt: skip
    script.insert(api_requests, rows)
    for a in answers:
        if a.taken_over is not None and not kept(a.status, a.body):
            script.execute(_free_query(), {"pid": program_id, "key": a.key,
                                           "seen": a.taken_over})  # fmt: skip
        elif a.taken_over is not None:

            def check(done: int, key: str = a.key) -> None:
                if done != 1:
                    raise ConcurrentUpdateError(f"Idempotency-Key {key!r} was taken meanwhile")

            script.execute(_take_over_query(), {
                "pid": program_id, "key": a.key, "seen": a.taken_over, "code": a.status,
                "answer": a.body, "now": now,
            }, check=check)  # fmt: skip


@functools.cache
def _take_over_query() -> Update:
    c = api_requests.c
    return (
        update(api_requests)
        .where(c.program_id == bindparam("pid"), c.idem_key == bindparam("key"),
               c.state == "in_flight", c.updated_at == bindparam("seen"))
        .values(state="done", status_code=bindparam("code"), body=bindparam("answer"),
                updated_at=bindparam("now"))
    )  # fmt: skip


@functools.cache
def _free_query() -> Delete:
    c = api_requests.c
    return delete(api_requests).where(
        c.program_id == bindparam("pid"), c.idem_key == bindparam("key"),
        c.state == "in_flight", c.updated_at == bindparam("seen"),
    )  # fmt: skip


@dataclass(frozen=True)
class Answered:
    """A request's answer to store under its key; ``taken_over`` is the ``updated_at`` of
    the crashed request's row it replaces (None: a new key)."""

    key: str
    route: str
    digest: str
    status: int
    body: Any
    taken_over: datetime | None = None


def _outcome(run: Callable[[], Outcome]) -> Outcome:
    """The handler's result, or its business rejection as a problem (stored like one)."""
    try:
        return run()
    except Exception as exc:
        problem = from_exception(exc)
        if problem is None:
            raise
        return problem.status, problem.body()


def _answer(status: int, payload: Any, replayed: bool = False) -> JSONResponse:
    """The answer sent: always encodable (:class:`~fidelite.api.problems.Answer`), as the
    request may have done its work by now."""
    headers = {"Idempotent-Replayed": "true"} if replayed else None
    media = MEDIA_TYPE if status >= 400 else "application/json"
    return Answer(jsonable_encoder(payload), status, headers=headers, media_type=media)


def _storable(payload: Any) -> Any:
    """``payload`` as JSON a stored answer can hold: with U+FFFD for any lone surrogate
    (:func:`~fidelite.api.problems.carried`), as :func:`_answer` sends it, so the
    change it answers is never followed by a failure to store or replay its answer."""
    plain = jsonable_encoder(payload)
    try:
        json.dumps(plain, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return carried(plain)
    return plain


def _claim(
    db: Database, program_id: str, key: str, route: str, digest: str, lease_seconds: float
) -> Replay | datetime:
    """Record the key as in flight and return the time it was claimed at (its row's
    ``updated_at``); or return the stored answer / raise 409 or 422."""
    now = datetime.now(UTC)
    row_values = {"program_id": program_id, "idem_key": key, "route": route,
                  "request_hash": digest, "state": "in_flight", "created_at": now,
                  "updated_at": now}  # fmt: skip
    try:
        with db.write() as conn:
            conn.execute(insert(api_requests), row_values)
        return now
    except IntegrityError:
        pass
    with db.write() as conn:
        row = stored_requests(conn, program_id, [key]).get(key)
        if row is None:  # released meanwhile: claim it now
            conn.execute(insert(api_requests), row_values)
            return now
        replay = admit(row, digest, now, lease_seconds)
        if replay is not None and row.route != route and not route.startswith("DELETE "):
            # Same request (its hash matched), but an erasure has since rewritten the
            # member step of the stored route to the tombstone: the retry names a
            # reference no member holds any more and finds no such member, as a new
            # request would, rather than the anonymised answer (which would link the
            # reference to its tombstone). The erasure's own request (DELETE) replays
            # its record, as erasing the reference again answers it.
            (member,) = route_members(route) or {""}
            raise unknown_member(program_id, member)
        if replay is not None and kept(replay.status, replay.body):
            return replay
        # A crashed request's key past its lease, or a refusal stored by an older
        # version that is no longer stored (NOT_STORED): take the key over and run.
        # Only the row as read: a retry that took it over meanwhile makes this one wait.
        taken = conn.execute(update(api_requests).where(
            api_requests.c.program_id == program_id, api_requests.c.idem_key == key,
            api_requests.c.state == row.state, api_requests.c.updated_at == row.updated_at,
        ).values(state="in_flight", updated_at=now))  # fmt: skip
        if taken.rowcount != 1:
            raise in_flight()
    return now


def store_answer(
    conn: Connection, program_id: str, key: str | None, status: int, body: Any
) -> None:
    """Record the answer to ``key`` (claimed by :func:`run_once`) in the caller's
    transaction, with the change it answers: for an operation that is not idempotent on
    a key of its own (e.g. issuing random coupon codes), so a crash after it commits
    leaves the answer for the retry, never a second run. A key answered meanwhile (a
    retry that took over after the lease) raises: the transaction, and the change with
    it, must roll back. No key: nothing to record."""
    if key is None:
        return
    done = conn.execute(update(api_requests).where(
        api_requests.c.program_id == program_id, api_requests.c.idem_key == key,
        api_requests.c.state == "in_flight",
    ).values(state="done", status_code=status, body=_storable(body),
             updated_at=datetime.now(UTC)))  # fmt: skip
    if done.rowcount != 1:
        raise ConcurrentUpdateError(f"Idempotency-Key {key!r} was answered meanwhile")


def _store_in(
    conn: Connection,
    program_id: str,
    key: str,
    route: str,
    status: int,
    payload: Any,
    claimed: datetime,
) -> None:
    """Store the answer to ``key`` (a request to ``route``), claimed at ``claimed``:
    anonymised for a member it or the route names who was erased since
    (:func:`~fidelite.privacy.answers.erased_meanwhile`), whom the erasure could not find
    in an answer not yet stored (a refusal naming the member only in its ``detail``
    included; the erasure already rewrote the claimed row's route)."""
    body = erased_meanwhile(conn, program_id, _storable(payload), claimed, route=route)
    conn.execute(update(api_requests).where(
        api_requests.c.program_id == program_id, api_requests.c.idem_key == key
    ).values(state="done", status_code=status, body=body,
             updated_at=datetime.now(UTC)))  # fmt: skip


def _release(db: Database, program_id: str, key: str, claimed: datetime) -> None:
    """Free the key this request claimed at ``claimed``: not a key another request took
    over meanwhile (after the lease), which is that request's to answer or free."""
    with db.write() as conn:
        conn.execute(delete(api_requests).where(
            api_requests.c.program_id == program_id, api_requests.c.idem_key == key,
            api_requests.c.state == "in_flight", api_requests.c.updated_at == claimed,
        ))  # fmt: skip


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
