"""Answers that say when to come back, or not to: ``Retry-After`` on 429 and 503 sets
the earliest next try (seconds or an HTTP date, at most the back-off cap), and ``410
Gone`` is final (dead at once, in the log, replayable). Real receivers on 127.0.0.1."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from fidelite.store import Database
from fidelite.webhooks import DeliveryWorker, RetryPolicy, attempts_of, dispatch, log, replay
from fidelite.webhooks import subscriptions as subs
from fidelite.webhooks import worker as worker_module
from tests.webhooks.support import Clock, delivery, processor, purchase

POLICY = RetryPolicy(base_seconds=10, factor=2, cap_seconds=3600, jitter=0, max_attempts=5)


class Scripted:
    """Answers each POST with the next (status, headers) of its script (200 after)."""

    def __init__(self) -> None:
        self.script: deque[tuple[int, dict[str, str]]] = deque()
        self.hits = 0
        scripted = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                scripted.hits += 1
                status, headers = scripted.script.popleft() if scripted.script else (200, {})
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"no")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks"


@pytest.fixture
def scripted() -> Iterator[Scripted]:
    s = Scripted()
    yield s
    s.server.shutdown()
    s.server.server_close()


def one_delivery(db: Database, scripted: Scripted) -> int:
    processor(db)
    subs.add(db, "shop", scripted.url, ["member.created"], allow_private=True)
    processor(db).process(purchase("p1", "ann", "10.00"))
    dispatch(db)
    (entry,) = log(db, "shop")
    return int(entry["id"])


@pytest.mark.parametrize(
    ("status", "header", "wait"),
    [(429, "120", 120),  # longer than the back-off (10 s): the receiver's
     (503, "3", 10),  # shorter: the back-off
     (429, "86400", 3600),  # a day: the cap
     (503, "soon", 10),  # unreadable: the back-off
     (500, "120", 10)],  # not a 429 or 503: ignored
)  # fmt: skip
def test_retry_after_seconds_set_the_next_try(
    wdb: Database, scripted: Scripted, status: int, header: str, wait: int
) -> None:
    did = one_delivery(wdb, scripted)
    scripted.script.append((status, {"Retry-After": header}))
    clock = Clock()
    worker = DeliveryWorker(wdb, policy=POLICY, allow_private=True, clock=clock, timeout=5)
    try:
        assert worker.run_once().failed == 1
    finally:
        worker.close()
    row = delivery(wdb, did)
    assert (row["state"], row["attempts"], row["last_status"]) == ("failed", 1, status)
    assert row["next_attempt_at"] == clock.now + timedelta(seconds=wait)


def test_retry_after_as_an_http_date(wdb: Database, scripted: Scripted) -> None:
    did = one_delivery(wdb, scripted)
    clock = Clock()
    later = clock.now + timedelta(minutes=7)
    scripted.script.append((503, {"Retry-After": format_datetime(later, usegmt=True)}))
    worker = DeliveryWorker(wdb, policy=POLICY, allow_private=True, clock=clock, timeout=5)
    try:
        assert worker.run_once().failed == 1
        assert delivery(wdb, did)["next_attempt_at"] == later
        clock.now = later - timedelta(seconds=1)
        assert worker.run_once().claimed == 0  # not before the date
        clock.now = later
        assert worker.run_once().delivered == 1
    finally:
        worker.close()
    assert scripted.hits == 2


def test_410_gone_is_dead_at_once_and_can_be_replayed(wdb: Database, scripted: Scripted) -> None:
    did = one_delivery(wdb, scripted)
    scripted.script.append((410, {}))
    clock = Clock()
    worker = DeliveryWorker(wdb, policy=POLICY, allow_private=True, clock=clock, timeout=5)
    try:
        report = worker.run_once()
        assert (report.failed, report.dead) == (0, 1)
        row = delivery(wdb, did)
        assert (row["state"], row["attempts"], row["last_status"], row["last_error"]) == (
            "dead", 1, 410, "HTTP 410",
        )  # fmt: skip
        assert row["next_attempt_at"] is None
        assert [(d["id"], d["state"]) for d in log(wdb, "shop", state="dead")] == [(did, "dead")]
        clock.now += timedelta(hours=5)
        assert worker.run_once().claimed == 0  # never retried by itself
        replay(wdb, "shop", did)
        assert worker.run_once().delivered == 1  # the receiver is back: replayed
    finally:
        worker.close()
    assert [(a["number"], a["status"]) for a in attempts_of(wdb, "shop", did)] == [
        (1, 410), (2, 200),
    ]  # fmt: skip


def test_the_header_is_read_as_seconds_or_a_date() -> None:
    now = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    retry_after = worker_module.retry_after
    assert retry_after("30", now) == timedelta(seconds=30)
    assert retry_after(" 0 ", now) == timedelta(0)
    assert retry_after("Mon, 07 Dec 2026 12:05:00 GMT", now) == timedelta(minutes=5)
    assert retry_after("Mon, 07 Dec 2026 11:00:00 GMT", now) == timedelta(0)  # past
    assert retry_after("-5", now) is None
    assert retry_after("1.5", now) is None
    assert retry_after("", now) is None
    assert retry_after(None, now) is None
