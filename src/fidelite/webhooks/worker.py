"""The delivery worker: claim due deliveries, POST them signed, record the outcome.

Claiming is one conditional ``UPDATE`` that sets a lease (a random token and an
expiry) on up to ``limit`` due deliveries and returns them. The lease is long enough to
send the whole batch one by one at the timeout each (plus a margin), a delivery is
only sent while its lease has at least one timeout left, and the timeout bounds the
whole attempt (connection, request, the answer's headers and body: see
:class:`Deadline`), so a slow receiver can never make two workers send the same
delivery. On PostgreSQL the rows
are picked with ``FOR UPDATE SKIP LOCKED``, so concurrent workers take disjoint
batches without waiting on each other; on SQLite the claim runs in a ``BEGIN
IMMEDIATE`` transaction, so claims are serial. A claimed delivery is invisible to
other workers until its lease expires, and the
outcome is written only ``WHERE lease_token = <ours>``: a worker that lost its lease
(stalled past it, or the delivery was replayed meanwhile) cannot overwrite a newer
state. A claimed delivery whose event a member's erasure anonymised (a replay that ran
as the erasure did) is never sent: it is stopped ``dead`` with ``member erased``.

A member's erasure also stops the deliveries a worker has claimed and not sent yet:
it takes their lease (``dead``, ``member erased``), and the worker reads each
delivery's lease again right before sending it (:meth:`DeliveryWorker.sendable`), so
a delivery claimed before an erasure is not sent after it, whenever in the batch its
turn comes. The one window left is an erasure committing while the POST is in flight
(after that read): the receiver gets the event as it was (with the reference, as it
would a moment earlier), the attempt is recorded as sent, and its answer's body is not
kept (:meth:`DeliveryWorker.record`). An attempt is in the log exactly when it was
sent.

Delivery is at least once: a worker that crashes after the receiver answered but
before recording it leaves the delivery to be sent again after the lease (each
attempt is recorded, in its own transaction, as soon as it ends). A worker asked to
stop mid-pass finishes the attempt in progress, records it, and releases the rest of
its batch (:meth:`DeliveryWorker.run_once`). Receivers
de-duplicate on ``Fidelite-Event-Id``. HTTP happens outside any database transaction.
"""

from __future__ import annotations

import codecs
import contextlib
import email.utils
import json
import random
import socket
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import Connection, bindparam, func, insert, or_, select, text, update

from fidelite.store import Database
from fidelite.store.tables import UTCDateTime
from fidelite.webhooks.deliveries import anonymised
from fidelite.webhooks.destination import Destination, Resolver, pin, system_resolver
from fidelite.webhooks.errors import UnsafeURL
from fidelite.webhooks.outbox import body_of, dispatch
from fidelite.webhooks.retry import RetryPolicy
from fidelite.webhooks.signature import HEADER, sign
from fidelite.webhooks.tables import attempts, deliveries, outbox, subscriptions

Clock = Callable[[], datetime]
USER_AGENT = "fidelite-webhooks/1"

_CLAIM = (
    "UPDATE webhook_deliveries SET lease_token = :token, lease_until = :until "
    "WHERE id IN (SELECT id FROM webhook_deliveries "
    "WHERE state IN ('pending', 'failed') AND next_attempt_at <= :now "
    "AND (lease_until IS NULL OR lease_until <= :now) "
    "ORDER BY next_attempt_at, id LIMIT :n{lock}) "
    "RETURNING id"
)


@dataclass(frozen=True)
class Claim:
    """A delivery this worker holds the lease on, with what it needs to send it."""

    id: int
    token: str
    lease_until: datetime
    attempt: int  # the number of the attempt about to be made (1-based)
    subscription_id: int
    url: str
    secret: str
    active: bool
    allow_private: bool  # the subscription was added allowing private destinations
    event_id: int
    event_type: str
    body: bytes


@dataclass
class Report:
    """What one pass of the worker did."""

    claimed: int = 0
    delivered: int = 0
    failed: int = 0
    dead: int = 0
    lost: int = 0  # not sent (lease too short) or outcome not written (lease lost)
    released: int = 0  # given back unsent: the pass was asked to stop
    postponed: int = 0  # not sent: an earlier one to its subscription failed (held back)
    ids: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "claimed": self.claimed,
            "delivered": self.delivered,
            "failed": self.failed,
            "dead": self.dead,
            "lost": self.lost,
            "released": self.released,
            "postponed": self.postponed,
        }


def encode(document: dict[str, Any]) -> bytes:
    """The exact bytes POSTed (and signed): compact JSON with sorted keys."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


class DeliveryWorker:
    """Sends due deliveries of every program in one database."""

    def __init__(
        self,
        db: Database,
        *,
        policy: RetryPolicy | None = None,
        allow_private: bool = False,  # every subscription's private destinations too
        timeout: float = 10.0,
        clock: Clock | None = None,
        rand: Callable[[], float] = random.random,
        resolve: Resolver = system_resolver,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.db = db
        self.policy = policy or RetryPolicy()
        self.allow_private = allow_private
        self.timeout = timeout
        self.margin = timedelta(seconds=30)
        self.clock = clock or (lambda: datetime.now(UTC))
        self.rand = rand
        self.resolve = resolve
        self._after: dict[int, datetime | None] = {}  # delivery -> next try, as recorded
        self.holding: dict[int, Hold] = {}  # subscription -> held back until (failing)
        self.client = httpx.Client(
            timeout=timeout, follow_redirects=False, transport=transport,
            headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"},
            limits=httpx.Limits(max_keepalive_connections=0),  # see Deadline
        )  # fmt: skip

    def close(self) -> None:
        self.client.close()

    # ------------------------------------------------------------------ passes

    def run_once(self, limit: int = 100, *, stop: Callable[[], bool] = lambda: False) -> Report:
        """Dispatch new events, then claim up to ``limit`` due deliveries and send each once,
        recording each attempt as soon as it ends.

        One failing destination does not hold up the others: once an attempt to a
        subscription fails as a destination that takes nothing now (no complete answer,
        ``408``, ``429``, ``5xx``: :meth:`_hold_until`), that subscription's other
        waiting deliveries, this pass's and those no worker holds, are postponed to the
        failed one's next try (:meth:`postpone`: no attempt counted or logged), and the
        pass goes on with the other subscriptions. So a hanging receiver costs a pass
        one timeout, not one per delivery; its deliveries are tried again together,
        in order, once its back-off has passed. The worker remembers the time
        (:attr:`holding`): a delivery of a new event to that subscription it claims
        before then (its first attempt) is postponed with the rest, not sent, so a
        steady flow of new events does not cost each pass a timeout either; a replayed
        delivery is sent (it probes the receiver). The hold never outlives what the
        database says (:meth:`_still_held`): a delivery to the subscription that
        succeeds, a replay or stop of the failed one, or a new URL ends it.

        ``stop()`` is asked before each send: once it is true, the deliveries not sent yet
        are released (their lease cleared, attempts unchanged: any worker may take them at
        once) and the pass ends, so a stop waits for one attempt at most (the timeout).
        An exception (a second Ctrl-C) releases them too, then propagates: the attempt in
        progress is not recorded, its delivery is sent again once its lease runs out.
        """
        report = Report()
        dispatch(self.db, at=self.clock())
        claims = self.claim(limit)
        now = self.clock()
        for sid in [sid for sid, hold in self.holding.items() if hold.until <= now]:
            del self.holding[sid]  # its back-off has passed: try it again
        held: set[int] = set()  # subscriptions postponed in this pass
        done = 0
        try:
            for claim in claims:
                if stop():
                    break
                done += 1
                report.claimed += 1
                report.ids.append(claim.id)
                sid = claim.subscription_id
                fresh = claim.attempt == 1  # a new event's (a replayed one probes)
                if sid not in held and fresh and self._still_held(claim):  # failed before
                    held.add(sid)
                    self.postpone(sid, claim.token, self.holding[sid].until)
                if sid in held:
                    report.postponed += 1  # postponed in the database
                    continue
                state, attempt, after = self._deliver(claim)
                setattr(report, state, getattr(report, state) + 1)
                if state == "delivered":
                    self.holding.pop(sid, None)  # the receiver takes deliveries again
                until = self._hold_until(state, attempt, after)
                if until is not None and attempt is not None:
                    held.add(sid)
                    self.holding[sid] = Hold(until, claim.id, claim.url)
                    self.postpone(sid, claim.token, until)
        except BaseException:
            with contextlib.suppress(Exception):  # the leases then simply run out
                self.release(claims[done:])
            raise
        rest = claims[done:]
        report.postponed += sum(1 for c in rest if c.subscription_id in held)
        report.released = self.release([c for c in rest if c.subscription_id not in held])
        report.claimed += len(rest)
        report.ids.extend(claim.id for claim in rest)
        return report

    def _hold_until(
        self, state: str, attempt: Attempt | None, after: datetime | None
    ) -> datetime | None:
        """When the rest of a subscription's deliveries may be tried after ``attempt``
        (None: not held back). Only an attempt that says the destination cannot take
        deliveries now holds them back: no complete answer (timeout, connection refused
        or reset, a URL refused at delivery), or ``408``, ``429`` or a ``5xx``; another
        ``4xx`` is about that one event. The time is the failed delivery's next try
        (its ``Retry-After`` included); a delivery that died of it (its last attempt)
        holds nothing back: the others are tried, and the first that fails holds the
        rest."""
        if attempt is None or attempt.error is None or attempt.dead:
            return None
        if state != "failed" or not _unavailable(attempt):
            return None
        return after

    def _still_held(self, claim: Claim) -> bool:
        """Whether the worker's remembered hold on ``claim``'s subscription still stands:
        the database, not memory, decides. The hold is dropped (False) once the delivery
        whose failure set it is no longer failed with that next try (it was delivered,
        replayed or stopped since), or the subscription's URL changed."""
        hold = self.holding.get(claim.subscription_id)
        if hold is None:
            return False
        if hold.url == claim.url:
            with self.db.lookup() as conn:
                standing = conn.execute(
                    select(deliveries.c.id).where(
                        deliveries.c.id == hold.delivery_id,
                        deliveries.c.state == "failed",
                        deliveries.c.next_attempt_at >= _time("until"),
                    ),
                    {"until": hold.until},
                ).first()
            if standing is not None:
                return True
        del self.holding[claim.subscription_id]
        return False

    def postpone(self, subscription_id: int, token: str, until: datetime) -> int:
        """Move the subscription's waiting deliveries due before ``until`` to ``until``:
        those of this pass (our lease, cleared) and those no worker holds. Nothing else
        changes (no attempt is counted or logged); how many moved."""
        now = self.clock()
        free = or_(
            deliveries.c.lease_token == token,
            deliveries.c.lease_until.is_(None),
            deliveries.c.lease_until <= now,
        )
        with self.db.write() as conn:
            moved = conn.execute(
                update(deliveries)
                .where(deliveries.c.subscription_id == subscription_id,
                       deliveries.c.state.in_(("pending", "failed")),
                       deliveries.c.next_attempt_at < until, free)
                .values(next_attempt_at=until, lease_token=None, lease_until=None)
            )  # fmt: skip
        return int(moved.rowcount)

    def release(self, claims: list[Claim]) -> int:
        """Give back claimed deliveries not sent: their lease cleared where still ours
        (nothing else changes); how many."""
        if not claims:
            return 0
        token = claims[0].token
        with self.db.write() as conn:
            conn.execute(
                update(deliveries)
                .where(deliveries.c.id.in_([c.id for c in claims]),
                       deliveries.c.lease_token == token)
                .values(lease_token=None, lease_until=None)
            )  # fmt: skip
        return len(claims)

    def run_forever(
        self,
        *,
        idle_seconds: float = 1.0,
        limit: int = 100,
        stop: Callable[[], bool] = lambda: False,
        on_error: Callable[[Exception], None] | None = None,
    ) -> None:
        """Keep delivering until ``stop()``; sleep ``idle_seconds`` when nothing is due.

        A pass that fails (database restarting, network down) is reported to
        ``on_error`` and retried after the idle pause: its leases simply run out, so
        nothing is lost or sent twice by this worker.
        """
        while not stop():
            try:
                claimed = self.run_once(limit, stop=stop).claimed
            except Exception as exc:
                if on_error is None:
                    raise
                on_error(exc)
                claimed = 0
            if claimed == 0:
                time.sleep(idle_seconds)

    # ------------------------------------------------------------------- steps

    def claim(self, limit: int) -> list[Claim]:
        """Lease up to ``limit`` due deliveries to this worker (see the module docstring)."""
        now = self.clock()
        until = now + timedelta(seconds=self.timeout * limit) + self.margin
        token = uuid.uuid4().hex
        lock = " FOR UPDATE SKIP LOCKED" if self.db.is_postgres else ""
        statement = text(_CLAIM.format(lock=lock)).bindparams(
            *(_time(name) for name in ("now", "until"))
        )
        with self.db.write() as conn:
            ids = [
                int(i)
                for i in conn.execute(
                    statement, {"token": token, "until": until, "now": now, "n": limit}
                ).scalars()
            ]
            if not ids:
                return []
            claims, erased = _load(conn, ids, token, until)
            if erased:
                _stop_erased(conn, erased, token)
            return claims

    def deliver(self, claim: Claim) -> str:
        """Send one claimed delivery and record the attempt; return its new state
        (``lost`` when it was not sent or the outcome lost to a newer lease).

        Checked right before the send (:meth:`sendable`): a delivery whose lease is no
        longer ours (a member's erasure stopped it since the claim, or it was replayed)
        is not sent and nothing is recorded."""
        return self._deliver(claim)[0]

    def _deliver(self, claim: Claim) -> tuple[str, Attempt | None, datetime | None]:
        """:meth:`deliver`, with the attempt made (None: not sent) and the delivery's
        next try as recorded."""
        checked = self.sendable(claim)
        if checked is not None:
            return checked, None, None
        attempt = self.send(claim)
        if attempt is None:
            return "lost", None, None
        state = self.record([attempt])[claim.id]
        return state, attempt, self._after.pop(claim.id, None)

    def sendable(self, claim: Claim) -> str | None:
        """None when ``claim`` may be sent now: its lease is still ours and its event is
        not anonymised. Else the delivery's state for the report, nothing sent: ``lost``
        (the lease was taken: an erasure that committed since the claim stopped the
        delivery ``dead``, ``member erased``, or it was replayed), or ``dead`` (the event
        was anonymised under our lease: stopped here, as :meth:`claim` stops one). One
        read by primary key: a batch's last delivery may be sent minutes after its
        claim (the lease is the timeout times the batch), and an erasure during that
        time must stop it. It is one statement, so it needs no transaction of its own
        (:meth:`~fidelite.store.Database.lookup`: one round trip on PostgreSQL): it sees
        every erasure committed before it, whose lease-taking and anonymised event
        commit together."""
        with self.db.lookup() as conn:
            row = conn.execute(
                select(deliveries.c.lease_token, outbox.c.payload)
                .join(outbox, outbox.c.id == deliveries.c.outbox_id)
                .where(deliveries.c.id == claim.id)
            ).one_or_none()
        if row is None or row.lease_token != claim.token:
            return "lost"
        if not anonymised(row.payload):
            return None
        with self.db.write() as conn:
            _stop_erased(conn, [claim.id], claim.token)
        return "dead"

    def send(self, claim: Claim) -> Attempt | None:
        """POST one claimed delivery (None: not sent, too little lease left).

        The attempt, from the destination check to the last byte of the answer, ends
        within the timeout (:class:`Deadline`): an answer not complete by then, even a
        2xx, is a failed attempt, so the attempt always ends within the lease."""
        started = self.clock()
        if started + timedelta(seconds=self.timeout) > claim.lease_until:
            return None
        if not claim.active:
            return Attempt(claim, started, None, "subscription removed", None, 0, dead=True)
        status: int | None = None
        error: str | None = None
        response: str | None = None
        hint: str | None = None
        tick = time.perf_counter()
        deadline = Deadline(self.timeout)
        try:
            allow = self.allow_private or claim.allow_private
            target = pin(claim.url, allow_private=allow, resolve=self.resolve)
            status, response, hint = self._post(claim, target, deadline)
            if not 200 <= status < 300:
                error = f"HTTP {status}"
        except UnsafeURL as exc:
            error = f"refused: {exc.message}"
        except _Late as exc:
            status, error = exc.status, self._late()
        except httpx.HTTPError as exc:
            late = deadline.passed()
            error = self._late() if late else f"{type(exc).__name__}: {exc}"[:500]
            error = error or type(exc).__name__
        finally:
            deadline.finish()
        elapsed = int((time.perf_counter() - tick) * 1000)
        wait = None
        if status in RETRY_AFTER_STATUSES and error:
            with contextlib.suppress(Exception):  # unreadable: the back-off alone applies
                wait = retry_after(hint, started)
        gone = status == 410 and error == "HTTP 410"
        return Attempt(claim, started, status, error, response, elapsed, dead=gone, wait=wait)

    def _late(self) -> str:
        return f"Timeout: no complete answer within {self.timeout:g} s"

    def _post(
        self, claim: Claim, target: Destination, deadline: Deadline
    ) -> tuple[int, str, str | None]:
        """POST ``claim`` to ``target`` within ``deadline``: the status, the start of the
        answer's body and its ``Retry-After`` header (raises :class:`_Late` when the time
        runs out)."""
        left = deadline.left()
        if left <= 0:
            raise _Late(None)
        extensions: dict[str, Any] = {"trace": deadline.trace}
        if target.tls_name:
            extensions["sni_hostname"] = target.tls_name
        request = self.client.build_request(
            "POST", target.connect_url, content=claim.body,
            headers={**self._headers(claim), "Host": target.host_header},
            extensions=extensions, timeout=httpx.Timeout(left),
        )  # fmt: skip
        reply = self.client.send(request, stream=True)
        try:
            kept, chunks = _body(reply)
            for chunk in chunks:  # read whole, within the deadline
                if deadline.passed():
                    raise _Late(reply.status_code)
                kept.add(chunk)
            if deadline.passed():
                raise _Late(reply.status_code)
            return reply.status_code, kept.text(), reply.headers.get("Retry-After")
        except httpx.HTTPError:
            if deadline.passed():
                raise _Late(reply.status_code) from None
            raise
        finally:
            deadline.finish()  # before the connection closes
            reply.close()

    def _headers(self, claim: Claim) -> dict[str, str]:
        now = int(self.clock().timestamp())
        return {
            "Content-Type": "application/json",
            HEADER: sign(claim.secret, claim.body, now),
            "Fidelite-Event-Id": str(claim.event_id),
            "Fidelite-Event-Type": claim.event_type,
            "Fidelite-Delivery-Id": str(claim.id),
            "Fidelite-Delivery-Attempt": str(claim.attempt),
        }

    def record(self, done: list[Attempt]) -> dict[int, str]:
        """Log the attempts and move their deliveries on, in one transaction.

        Returns each delivery's new state, or ``lost`` where its lease had passed to
        someone else (the attempt is still logged: it was sent).

        A member's erasure that committed while the attempt was in flight (after
        :meth:`sendable`, before the answer: the one window no check can close, as the
        POST holds no database lock) has stopped the delivery ``dead``, ``member
        erased``, and taken its lease. The attempt was sent all the same, so it is
        recorded, and the delivery says so: ``delivered`` if the receiver took it (it
        holds the event), else still ``dead``, ``member erased``, with the attempt
        counted; the answer's body is not kept (the erasure blanks every stored answer
        about the member: it may quote the reference).
        """
        if not done:
            return {}
        states: dict[int, str] = {}
        with self.db.write() as conn:
            last, erased = _numbered(conn, [a.claim.id for a in done])
            numbers = {a.claim.id: last.get(a.claim.id, 0) + 1 for a in done}
            conn.execute(
                insert(attempts),
                [
                    {**a.log_row(numbers[a.claim.id]),
                     **({"response": None} if a.claim.id in erased else {})}
                    for a in done
                ],
            )  # fmt: skip
            for attempt in done:
                values = self._next(attempt)
                if len(done) == 1:  # read back by _deliver
                    self._after[attempt.claim.id] = values["next_attempt_at"]
                claim = attempt.claim
                moved = conn.execute(
                    update(deliveries)
                    .where(deliveries.c.id == claim.id, deliveries.c.lease_token == claim.token)
                    .values(**values)
                )
                if moved.rowcount == 1:
                    states[claim.id] = str(values["state"])
                    continue
                states[claim.id] = _erased_in_flight(conn, attempt, numbers[claim.id])
        return states

    def _next(self, attempt: Attempt) -> dict[str, Any]:
        """The delivery's columns after ``attempt``: delivered, retry later, or dead."""
        number = attempt.claim.attempt
        values: dict[str, Any] = {
            "attempts": number,
            "last_attempt_at": attempt.at,
            "last_status": attempt.status,
            "last_error": attempt.error,
            "lease_token": None,
            "lease_until": None,
        }
        if attempt.error is None:
            values.update(state="delivered", delivered_at=attempt.at, next_attempt_at=None)
        elif attempt.dead or self.policy.is_last(number):
            values.update(state="dead", next_attempt_at=None)
        else:
            wait = self.policy.delay(number, self.rand())
            if attempt.wait is not None:  # the receiver's Retry-After, at most the cap
                cap = timedelta(seconds=self.policy.cap_seconds)
                wait = max(wait, min(attempt.wait, cap))
            values.update(state="failed", next_attempt_at=attempt.at + wait)
        return values


@dataclass(frozen=True)
class Hold:
    """A subscription held back after a failed attempt (see :meth:`DeliveryWorker.run_once`):
    until when, the delivery whose failure set it and the URL it failed at."""

    until: datetime
    delivery_id: int
    url: str


@dataclass(frozen=True)
class Attempt:
    """One POST of a claimed delivery and what came of it."""

    claim: Claim
    at: datetime
    status: int | None
    error: str | None
    response: str | None
    duration_ms: int
    dead: bool = False  # final: the subscription was removed, or the receiver answered 410
    wait: timedelta | None = None  # the answer's Retry-After (429, 503), if it had one

    def log_row(self, number: int) -> dict[str, Any]:
        return {
            "delivery_id": self.claim.id,
            "number": number,
            "at": self.at,
            "status": self.status,
            "error": self.error,
            "duration_ms": self.duration_ms,
            "response": self.response,
        }


class _Late(Exception):
    """The attempt's time ran out (``status``: the answer's, if its headers came)."""

    def __init__(self, status: int | None) -> None:
        super().__init__("late")
        self.status = status


class Deadline:
    """The end of one attempt, enforced on its connection.

    httpx's timeout bounds each network operation (connecting, one read, one write),
    not the request: a receiver sending its answer a byte at a time would keep an
    attempt going as long as it likes, past the lease, and another worker would send
    the delivery again. So the attempt's socket is taken as it is connected (and again
    once TLS wraps it) through httpcore's ``trace`` extension, and a timer shuts it down
    at the deadline: a read or write blocked then ends at once. Connections are not kept
    alive between attempts (each attempt's socket is its own, and known). The body is
    also read against the clock, chunk by chunk, which bounds a transport with no socket.

    Invariant: once :meth:`finish` has returned, the timer touches no socket (it runs
    before the connection is closed, so a closed socket's number, reused, is never hit).
    """

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds
        self.expired = False
        self._finished = False
        self._socket: socket.socket | None = None
        self._lock = threading.Lock()
        self._timer = threading.Timer(max(seconds, 0.0), self._expire)
        self._timer.daemon = True
        self._timer.start()

    def left(self) -> float:
        """Seconds until the deadline (negative once past)."""
        return self.end - time.monotonic()

    def passed(self) -> bool:
        return self.expired or self.left() <= 0

    def finish(self) -> None:
        """The attempt is over: stop the timer and forget the socket."""
        self._timer.cancel()
        with self._lock:
            self._finished = True
            self._socket = None

    def trace(self, event: str, info: dict[str, Any]) -> None:
        """httpcore's trace hook: keep the socket of a new connection (or its TLS one)."""
        if not event.endswith((".connect_tcp.complete", ".start_tls.complete")):
            return
        stream = info.get("return_value")
        sock = stream.get_extra_info("socket") if stream is not None else None
        if not isinstance(sock, socket.socket):
            return
        with self._lock:
            if self._finished:
                return
            self._socket = sock
            if self.expired:
                _shut(sock)

    def _expire(self) -> None:
        with self._lock:
            if self._finished:
                return
            self.expired = True
            if self._socket is not None:
                _shut(self._socket)


def _shut(sock: socket.socket) -> None:
    """End both directions of ``sock`` (a blocked read returns, a write fails); on a TLS
    socket the plain socket's call, which leaves the TLS object to the reading thread."""
    with contextlib.suppress(OSError):  # already closed or reset: nothing left to stop
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


RESPONSE_KEPT = 500
"""Characters of the answer's body kept in the attempt log (``response``)."""


class _Start:
    """The first :data:`RESPONSE_KEPT` characters of an answer's body, decoded as httpx
    decodes a response's text (undecodable bytes replaced), fed chunk by chunk as they
    come over the wire: what follows them is read (the answer must be complete) but not
    kept, so a receiver's long answer takes no more memory than a chunk.

    Answers are asked for uncompressed (``Accept-Encoding: identity``); one compressed
    anyway with gzip or deflate is inflated only as far as the kept characters need
    (:data:`_INFLATED` bytes at most), so a small compressed answer that inflates to
    gigabytes costs no more than a plain one. Another content coding is kept as sent.
    """

    def __init__(self, encoding: str | None, content_encoding: str | None = None) -> None:
        try:
            info = codecs.lookup(encoding or "utf-8")
        except LookupError:
            info = codecs.lookup("utf-8")
        if not getattr(info, "_is_text_encoding", True):  # rot13, base64...: not a charset
            info = codecs.lookup("utf-8")
        factory = info.incrementaldecoder
        self._decoder = factory(errors="replace")
        self._inflate = _inflater(content_encoding)
        self._inflated = 0
        self._parts: list[str] = []
        self._size = 0

    def add(self, chunk: bytes) -> None:
        if self._size >= RESPONSE_KEPT:
            return
        if self._inflate is not None:
            chunk = self._inflated_part(self._inflate, chunk)
        part = self._decoder.decode(chunk)[: RESPONSE_KEPT - self._size]
        self._parts.append(part)
        self._size += len(part)

    def _inflated_part(self, inflate: Any, chunk: bytes) -> bytes:
        """At most what is left of :data:`_INFLATED` of ``chunk`` inflated (nothing more
        once that much was; a body that does not inflate keeps nothing more)."""
        room = _INFLATED - self._inflated
        if room <= 0:
            return b""
        try:
            out: bytes = inflate.decompress(chunk, room)
        except zlib.error:
            self._inflated = _INFLATED
            return b""
        self._inflated += len(out)
        if inflate.unconsumed_tail:  # room is used up: the rest is read, not inflated
            self._inflated = _INFLATED
        return out

    def text(self) -> str:
        if self._size < RESPONSE_KEPT:  # the end: what the decoder still holds
            self._parts.append(self._decoder.decode(b"", final=True))
        return "".join(self._parts)[:RESPONSE_KEPT]


_INFLATED = 4 * RESPONSE_KEPT
"""Bytes of a compressed answer inflated at most: :data:`RESPONSE_KEPT` characters of
any encoding (up to 4 bytes each)."""


def _inflater(content_encoding: str | None) -> Any:
    """A zlib decompressor for a gzip or deflate answer (None: kept as sent)."""
    coding = (content_encoding or "").strip().lower()
    if coding in ("gzip", "x-gzip"):
        return zlib.decompressobj(zlib.MAX_WBITS | 16)
    if coding == "deflate":
        return zlib.decompressobj(zlib.MAX_WBITS | 32)  # zlib-wrapped (raw is rare)
    return None


def _body(reply: httpx.Response) -> tuple[_Start, Iterator[bytes]]:
    """Where the start of ``reply``'s body is kept, and its bytes as they come over the
    wire (not inflated). A transport that answers with its body already in memory (a
    test transport) gives that body, as httpx decoded it."""
    if reply.is_stream_consumed:
        return _Start(reply.encoding), iter((reply.content,))
    return _Start(reply.encoding, reply.headers.get("Content-Encoding")), reply.iter_raw()


def _unavailable(attempt: Attempt) -> bool:
    """Whether ``attempt`` failed as a destination that takes nothing now fails: no
    complete answer, or ``408``, ``429`` or a ``5xx`` (see :meth:`DeliveryWorker.run_once`)."""
    if attempt.status is None or attempt.error != f"HTTP {attempt.status}":
        return True  # no answer, a late one, or the URL refused
    return attempt.status in (408, 429) or attempt.status >= 500


RETRY_AFTER_STATUSES = (429, 503)
"""Answers whose ``Retry-After`` header sets the earliest next try."""


def retry_after(value: str | None, now: datetime) -> timedelta | None:
    """The wait a ``Retry-After`` header asks for, from ``now``: delay-seconds (``120``)
    or an HTTP date (``Wed, 21 Oct 2026 07:28:00 GMT``; one past is no wait). None when
    absent, unreadable or absurd (more than :data:`RETRY_AFTER_DIGITS` digits: the
    back-off alone applies)."""
    if value is None or len(value) > 200:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        if len(text.lstrip("0")) > RETRY_AFTER_DIGITS:
            return None
        return timedelta(seconds=min(int(text), 10**9))
    try:
        when = email.utils.parsedate_to_datetime(text)
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return max(when - now, timedelta(0))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


RETRY_AFTER_DIGITS = 10
"""Digits a delay-seconds ``Retry-After`` may have (about 317 years); longer is ignored."""


def _time(name: str) -> Any:
    return bindparam(name, type_=UTCDateTime())


def _stop_erased(conn: Connection, ids: list[int], token: str) -> None:
    """Stop claimed deliveries whose event a member's erasure anonymised: ``dead`` with
    ``member erased``, as the erasure stops the ones waiting, with no attempt."""
    conn.execute(
        update(deliveries)
        .where(deliveries.c.id.in_(ids), deliveries.c.lease_token == token)
        .values(state="dead", last_error="member erased", next_attempt_at=None,
                lease_token=None, lease_until=None)
    )  # fmt: skip


def _numbered(conn: Connection, ids: list[int]) -> tuple[dict[int, int], set[int]]:
    """Of the deliveries ``ids``, each one's last attempt number (numbering continues
    across replays and lost leases; none: absent) and apart those whose event a
    member's erasure anonymised (see :meth:`DeliveryWorker.record`), in one statement."""
    last = (
        select(func.max(attempts.c.number))
        .where(attempts.c.delivery_id == deliveries.c.id)
        .scalar_subquery()
    )
    rows = conn.execute(
        select(deliveries.c.id, outbox.c.payload, last.label("last"))
        .join(outbox, outbox.c.id == deliveries.c.outbox_id)
        .where(deliveries.c.id.in_(ids))
    ).all()
    numbers = {int(row.id): int(row.last) for row in rows if row.last is not None}
    return numbers, {int(row.id) for row in rows if anonymised(row.payload)}


def _erased_in_flight(conn: Connection, attempt: Attempt, number: int) -> str:
    """Record ``attempt`` (sent, its lease lost) on a delivery a member's erasure stopped
    while it was in flight (see :meth:`DeliveryWorker.record`): its new state, or
    ``lost`` when the lease went elsewhere (a replay, another worker after it ran out)."""
    claim = attempt.claim
    values: dict[str, Any] = {
        "attempts": claim.attempt,
        "last_attempt_at": attempt.at,
        "last_status": attempt.status,
    }
    if attempt.error is None:
        values.update(state="delivered", delivered_at=attempt.at, last_error=None)
    moved = conn.execute(
        update(deliveries)
        .where(deliveries.c.id == claim.id, deliveries.c.lease_token.is_(None),
               deliveries.c.state == "dead", deliveries.c.last_error == "member erased",
               deliveries.c.attempts == claim.attempt - 1)
        .values(**values)
    )  # fmt: skip
    if moved.rowcount != 1:
        return "lost"
    conn.execute(  # the erasure may have blanked the answers before this one was logged
        update(attempts)
        .where(attempts.c.delivery_id == claim.id, attempts.c.number == number)
        .values(response=None)
    )
    return "delivered" if attempt.error is None else "dead"


def _load(
    conn: Connection, ids: list[int], token: str, until: datetime
) -> tuple[list[Claim], list[int]]:
    """The claimed deliveries with their subscription and event, in id order, and apart
    the ids of those whose event is anonymised (read in the same statement as the body,
    so a body is never a tombstone: see :mod:`fidelite.webhooks.deliveries`)."""
    rows = conn.execute(
        select(
            deliveries.c.id, deliveries.c.attempts, deliveries.c.subscription_id,
            subscriptions.c.url, subscriptions.c.secret, subscriptions.c.active,
            subscriptions.c.allow_private, outbox.c.id.label("event_id"),
            outbox.c.event_type, outbox.c.program_id,
            outbox.c.payload, outbox.c.created_at,
        )
        .join(subscriptions, subscriptions.c.id == deliveries.c.subscription_id)
        .join(outbox, outbox.c.id == deliveries.c.outbox_id)
        .where(deliveries.c.id.in_(ids))
        .order_by(deliveries.c.id)
    ).all()  # fmt: skip
    erased = [int(row.id) for row in rows if anonymised(row.payload)]
    claims = [
        Claim(
            id=int(row.id),
            token=token,
            lease_until=until,
            attempt=int(row.attempts) + 1,
            subscription_id=int(row.subscription_id),
            url=row.url,
            secret=row.secret,
            active=bool(row.active),
            allow_private=bool(row.allow_private),
            event_id=int(row.event_id),
            event_type=row.event_type,
            body=encode(body_of(row)),
        )
        for row in rows
        if int(row.id) not in erased
    ]
    return claims, erased
