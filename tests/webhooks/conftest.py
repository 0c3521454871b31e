"""Webhook test fixtures: databases on both backends and a real HTTP receiver.

The receiver is a ``ThreadingHTTPServer`` on 127.0.0.1 and a free port: deliveries go
over real sockets. It answers each POST with the next status of its script (200 when
the script is empty) and keeps every request (headers and raw body).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from fidelite.store import Database
from tests.conftest import BACKENDS, make_database


@pytest.fixture(params=BACKENDS)
def wdb(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """An empty migrated database (SQLite file, then PostgreSQL)."""
    database = make_database(request.param, request, tmp_path)
    yield database
    database.dispose()


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    """A webhook endpoint on 127.0.0.1 answering with scripted statuses."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.script: deque[int] = deque()
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.lock:
                    receiver.requests.append(Received(self.path, dict(self.headers), body))
                    status = receiver.script.popleft() if receiver.script else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()
