"""Receivers that answer slowly or at length, over real HTTP on 127.0.0.1.

The worker's timeout bounds the whole attempt (connection, request, the answer's headers
and all of its body), so an attempt always ends within the delivery's lease; the answer's
body is read in chunks, keeping only what the log stores.
"""

from __future__ import annotations

import gzip
import threading
import time
import tracemalloc
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from fidelite.store import Database
from fidelite.webhooks import DeliveryWorker, attempts_of, dispatch, log
from fidelite.webhooks import subscriptions as subs
from fidelite.webhooks.worker import _Start
from tests.webhooks.support import Clock, processor, purchase


class SlowReceiver:
    """Answers 200 at once, then its body ``byte`` a byte every ``pause`` seconds."""

    def __init__(self, size: int, pause: float) -> None:
        self.hits: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.hits.append(self.headers["Fidelite-Delivery-Id"])
                self.send_response(200)
                self.send_header("Content-Length", str(size))
                self.end_headers()
                try:
                    for _ in range(size):
                        self.wfile.write(b"x")
                        self.wfile.flush()
                        time.sleep(pause)
                except OSError:  # the worker gave up and closed the connection
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def trickle() -> Iterator[SlowReceiver]:
    r = SlowReceiver(size=6, pause=0.35)  # 200 headers at once, the body in 2.1 s
    yield r
    r.close()


def test_an_answer_slower_than_the_timeout_is_a_failed_attempt_at_the_timeout(
    wdb: Database, trickle: SlowReceiver
) -> None:
    """Each read is quicker than the timeout (0.35 s) but the whole answer takes 2.1 s:
    with a 0.5 s timeout the attempt fails at 0.5 s (its socket is shut then), not a
    success after 2.1 s that outlived its lease."""
    processor(wdb)
    subs.add(wdb, "shop", trickle.url, ["member.created"], allow_private=True)
    processor(wdb).process(purchase("p1", "ann", "10.00"))
    clock = Clock()
    worker = DeliveryWorker(wdb, allow_private=True, clock=clock, timeout=0.5)
    tick = time.monotonic()
    report = worker.run_once(limit=1)
    took = time.monotonic() - tick
    worker.close()
    assert report.as_dict() == {
        "claimed": 1,
        "delivered": 0,
        "failed": 1,
        "dead": 0,
        "lost": 0,
        "released": 0,
        "postponed": 0,
    }
    assert took < 1.5
    (entry,) = log(wdb, "shop")
    assert (entry["state"], entry["attempts"], entry["last_status"]) == ("failed", 1, 200)
    assert entry["last_error"] == "Timeout: no complete answer within 0.5 s"
    (attempt,) = attempts_of(wdb, "shop", entry["id"])
    assert (attempt["status"], attempt["error"]) == (200, entry["last_error"])
    assert 450 <= attempt["duration_ms"] < 1000
    assert trickle.hits == [str(entry["id"])]


class LongReceiver:
    """Answers 200 with ``size`` bytes of ``é`` (UTF-8), written 65535 bytes at a time
    (characters are cut between the chunks)."""

    def __init__(self, size: int) -> None:
        body = memoryview(("é" * (size // 2)).encode())  # made before memory is traced

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                for start in range(0, len(body), 65535):
                    self.wfile.write(body[start : start + 65535])

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks"


def test_a_long_answer_is_read_whole_but_only_its_start_is_kept(tmp_path: Path) -> None:
    """A 2xx with a 16 MB body is delivered; the log keeps its first 500 characters,
    and reading it never holds the body in memory (the peak stays under 2 MB)."""
    db = Database(f"sqlite:///{tmp_path / 'long.db'}")
    db.upgrade()
    processor(db)
    receiver = LongReceiver(size=16 * 1024 * 1024)
    subs.add(db, "shop", receiver.url, ["member.created"], allow_private=True)
    processor(db).process(purchase("p1", "ann", "10.00"))
    worker = DeliveryWorker(db, allow_private=True, clock=Clock(), timeout=30)
    dispatch(db)
    (claim,) = worker.claim(1)
    tracemalloc.start()
    try:
        attempt = worker.send(claim)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        receiver.server.shutdown()
        receiver.server.server_close()
    assert attempt is not None
    assert (attempt.status, attempt.error, attempt.response) == (200, None, "é" * 500)
    assert peak < 2_000_000
    assert worker.record([attempt]) == {claim.id: "delivered"}
    worker.close()
    db.dispose()


class GzipReceiver:
    """Answers 200 with ``size`` bytes of ``x`` gzip-compressed (whatever the request's
    Accept-Encoding), and keeps the Accept-Encoding asked for."""

    def __init__(self, size: int) -> None:
        body = gzip.compress(b"x" * size, 9)  # made before memory is traced
        self.accept: list[str | None] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.accept.append(self.headers.get("Accept-Encoding"))
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Encoding", "gzip")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks"


def test_a_compressed_answer_is_inflated_only_as_far_as_its_kept_start(tmp_path: Path) -> None:
    """The worker asks for answers uncompressed; a receiver that gzips a 50 MB answer
    anyway (about 50 KB sent) is read whole, its first 500 characters are kept, and it
    is never inflated in memory (the peak stays under 2 MB)."""
    db = Database(f"sqlite:///{tmp_path / 'gzip.db'}")
    db.upgrade()
    processor(db)
    receiver = GzipReceiver(size=50 * 1024 * 1024)
    subs.add(db, "shop", receiver.url, ["member.created"], allow_private=True)
    processor(db).process(purchase("p1", "ann", "10.00"))
    worker = DeliveryWorker(db, allow_private=True, clock=Clock(), timeout=30)
    dispatch(db)
    (claim,) = worker.claim(1)
    tracemalloc.start()
    try:
        attempt = worker.send(claim)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        receiver.server.shutdown()
        receiver.server.server_close()
    assert receiver.accept == ["identity"]
    assert attempt is not None
    assert (attempt.status, attempt.error, attempt.response) == (200, None, "x" * 500)
    assert peak < 2_000_000
    assert worker.record([attempt]) == {claim.id: "delivered"}
    worker.close()
    db.dispose()


@pytest.mark.parametrize(
    ("coding", "compress"),
    [("gzip", gzip.compress), ("deflate", zlib.compress), ("br", None)],
)
def test_the_kept_start_of_a_compressed_answer(coding: str, compress: Any) -> None:
    """gzip and deflate are inflated (a short answer whole, fed a byte at a time); another
    content coding is kept as sent."""
    body = "ok é".encode() * 3
    sent = compress(body) if compress is not None else b"raw"
    start = _Start("utf-8", coding)
    for n in range(len(sent)):
        start.add(sent[n : n + 1])
    assert start.text() == ("ok é" * 3 if compress is not None else "raw")


def test_an_answer_a_transport_holds_in_memory_is_kept(tmp_path: Path) -> None:
    """A transport answering with its body already read (httpx's MockTransport) still
    gives the attempt its status and the start of that body."""
    db = Database(f"sqlite:///{tmp_path / 'mock.db'}")
    db.upgrade()
    processor(db)
    subs.add(db, "shop", "http://127.0.0.1:9/hooks", ["member.created"], allow_private=True)
    processor(db).process(purchase("p1", "ann", "10.00"))
    asked: list[str | None] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(request.headers.get("Accept-Encoding"))
        return httpx.Response(503, text="busy " + "z" * 600)

    worker = DeliveryWorker(
        db, allow_private=True, clock=Clock(), transport=httpx.MockTransport(answer)
    )
    dispatch(db)
    (claim,) = worker.claim(1)
    attempt = worker.send(claim)
    worker.close()
    db.dispose()
    assert asked == ["identity"]
    assert attempt is not None
    assert (attempt.status, attempt.error) == (503, "HTTP 503")
    assert attempt.response == "busy " + "z" * 495
