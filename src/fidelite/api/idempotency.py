"""``Idempotency-Key``: the first response to a key is stored and replayed to retries.

Per program and key: the first request records ``in_flight`` with a hash of its route
and body, runs, and stores its status and body (business rejections included: a retry
gets the same answer). A retry with the same route and body gets the stored response
(header ``Idempotent-Replayed: true``); with a different route or body, ``422
idempotency_key_reused``; while the first is still running, ``409 request_in_flight``.

Crashes: a request whose server died mid-way leaves ``in_flight``; after the lease
(``lease_seconds``, default 30) a retry takes it over and runs again. That is safe:
every operation below is idempotent on its own key (event ids, redemption and ledger keys
derived from the Idempotency-Key), so running again replays, never posts twice. A 5xx
is not stored (the retry runs again).

Where the change runs in a transaction the route can reach (``POST /v1/events`` through
the group commit), the response is stored *in that transaction*
(:func:`run_once_keeping`): the change and its stored answer commit together, and the
request costs one transaction less.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from fidelite.api.problems import MEDIA_TYPE, Problem, from_exception
from fidelite.api.tables import api_requests
from fidelite.store import Database

LEASE_SECONDS = 30
MAX_KEY_LENGTH = 200
Outcome = tuple[int, Any]
Keep = Callable[[Connection, int, Any], None]
"""Stores a response (status, body) through the caller's transaction."""


def request_hash(route: str, body: Any) -> str:
    text = json.dumps([route, jsonable_encoder(body)], sort_keys=True, separators=(",", ":"))
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
) -> JSONResponse:
    """Run ``run`` (returning status and body) at most once per ``key``; replay after."""
    return run_once_keeping(db, program_id, key, route, body, lambda _keep: run(),
                            lease_seconds=lease_seconds)  # fmt: skip


def run_once_keeping(
    db: Database,
    program_id: str,
    key: str | None,
    route: str,
    body: Any,
    run: Callable[[Keep], Outcome],
    *,
    lease_seconds: float = LEASE_SECONDS,
) -> JSONResponse:
    """As :func:`run_once`, but ``run`` is given ``keep(conn, status, body)`` to store its
    response inside the transaction that makes its change. If ``run`` returns, the last
    call of ``keep`` is committed (a failed transaction raises out of ``run``); a ``run``
    that never calls it has its response stored afterwards, as :func:`run_once` does."""
    if key is None:
        return _answer(*_outcome(lambda: run(_keep_nothing)))
    if not key or len(key) > MAX_KEY_LENGTH:
        raise Problem("invalid_request", f"Idempotency-Key: 1 to {MAX_KEY_LENGTH} characters")
    digest = request_hash(route, body)
    replay = _claim(db, program_id, key, route, digest, lease_seconds)
    if replay is not None:
        return replay
    kept = False

    def keep(conn: Connection, status: int, payload: Any) -> None:
        nonlocal kept
        _store_in(conn, program_id, key, status, payload)
        kept = True

    try:
        status, payload = _outcome(lambda: run(keep))
    except BaseException:
        _release(db, program_id, key)
        raise
    if not kept:
        with db.write() as conn:
            _store_in(conn, program_id, key, status, payload)
    return _answer(status, payload)


def _keep_nothing(_conn: Connection, _status: int, _payload: Any) -> None:
    """No Idempotency-Key: there is no response to store."""


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
    headers = {"Idempotent-Replayed": "true"} if replayed else None
    media = MEDIA_TYPE if status >= 400 else "application/json"
    return JSONResponse(jsonable_encoder(payload), status, headers=headers, media_type=media)


def _claim(
    db: Database, program_id: str, key: str, route: str, digest: str, lease_seconds: float
) -> JSONResponse | None:
    """Record the key as in flight; or return the stored answer / raise 409 or 422."""
    now = datetime.now(UTC)
    try:
        with db.write() as conn:
            conn.execute(insert(api_requests), {
                "program_id": program_id, "idem_key": key, "route": route,
                "request_hash": digest, "state": "in_flight", "created_at": now,
                "updated_at": now,
            })  # fmt: skip
        return None
    except IntegrityError:
        pass
    with db.write() as conn:
        row = conn.execute(select(api_requests).where(
            api_requests.c.program_id == program_id, api_requests.c.idem_key == key
        )).first()  # fmt: skip
        if row is None:  # released meanwhile: claim it now
            conn.execute(insert(api_requests), {
                "program_id": program_id, "idem_key": key, "route": route,
                "request_hash": digest, "state": "in_flight", "created_at": now,
                "updated_at": now,
            })  # fmt: skip
            return None
        if row.request_hash != digest:
            raise Problem("idempotency_key_reused", "this Idempotency-Key was used for another "
                          "request (different route or body)", status=422)  # fmt: skip
        if row.state == "done":
            return _answer(int(row.status_code), row.body, replayed=True)
        if _aware(row.updated_at) > now - timedelta(seconds=lease_seconds):
            raise Problem("request_in_flight", "a request with this Idempotency-Key is still "
                          "running; retry later", status=409)  # fmt: skip
        conn.execute(update(api_requests).where(
            api_requests.c.program_id == program_id, api_requests.c.idem_key == key
        ).values(updated_at=now))  # fmt: skip
    return None


def _store_in(conn: Connection, program_id: str, key: str, status: int, payload: Any) -> None:
    conn.execute(update(api_requests).where(
        api_requests.c.program_id == program_id, api_requests.c.idem_key == key
    ).values(state="done", status_code=status, body=jsonable_encoder(payload),
             updated_at=datetime.now(UTC)))  # fmt: skip


def _release(db: Database, program_id: str, key: str) -> None:
    with db.write() as conn:
        conn.execute(delete(api_requests).where(
            api_requests.c.program_id == program_id, api_requests.c.idem_key == key,
            api_requests.c.state == "in_flight",
        ))  # fmt: skip


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
