"""A live API server on 127.0.0.1 (uvicorn in a thread) over a real database, with keys."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlalchemy import func, select

from fidelite.api import Settings, create_app
from fidelite.api.keys import ROLES, create_key
from fidelite.program import parse_program
from fidelite.store import Database
from fidelite.store.tables import LedgerTransaction
from tests.conftest import BACKENDS, make_database

PROGRAM = """\
id: shop
name: Shop
time_zone: Europe/Paris
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
rewards:
  - {id: ten, name: Ten points off, kind: discount_amount, value: 1, cost: 10}
  - {id: mug, name: Mug, kind: free_product, sku: MUG, cost: 100, stock: 1}
tiers:
  levels:
    - {id: bronze, name: Bronze, threshold: 0}
    - {id: silver, name: Silver, threshold: 1000}
coupons:
  - {id: welcome, name: Welcome, prefix: WELC}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Live:
    """A running server: its URL, its database and a token per role (plus outsiders)."""

    url: str
    db: Database
    tokens: dict[str, str]

    def client(self, role: str | None = "admin", **kwargs: object) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens[role]}"} if role else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60, **kwargs)  # type: ignore[arg-type]

    def ledger_rows(self) -> int:
        with self.db.read() as conn:
            return int(
                conn.execute(select(func.count()).select_from(LedgerTransaction)).scalar_one()
            )


class Running:
    """A uvicorn server in a thread; ``stop`` waits for it (and its connection pool) to close."""

    def __init__(self, server: uvicorn.Server, thread: threading.Thread) -> None:
        self.server, self.thread = server, thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def start_server(
    db: Database,
    settings: Settings | None = None,
    *,
    events_fast_path: bool = True,
    program: str | None = None,
) -> tuple[Running, str]:
    """A server of ``program`` (the YAML text; default: this module's ``PROGRAM``, read
    at the call, so a test may patch it) on ``db``, on a free port of 127.0.0.1."""
    text = PROGRAM if program is None else program
    app = create_app(db.url, parse_program(text), settings or Settings(),
                     events_fast_path=events_fast_path)  # fmt: skip
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the API server did not start")
        time.sleep(0.02)
    return Running(server, thread), f"http://127.0.0.1:{port}"


@pytest.fixture(params=BACKENDS)
def live(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Live]:
    db = make_database(request.param, request, tmp_path)
    server, url = start_server(db)
    tokens = {role: create_key(db, "shop", role)[1] for role in ROLES}
    tokens["other_program"] = create_key(db, "elsewhere", "admin")[1]
    yield Live(url, db, tokens)
    server.stop()
    db.dispose()
