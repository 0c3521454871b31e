"""Where members see or spend their points — the API on 127.0.0.1 and the installed
``fidelite`` script — apply the program's inactivity policy before the expiry job runs."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import uvicorn

from fidelite.api import Settings, create_app
from fidelite.api.keys import create_key
from fidelite.program import parse_program
from fidelite.store import Database
from tests.api.conftest import Running, free_port
from tests.cli.test_ledger_cli import as_json, cafe, cli, dump
from tests.conftest import BACKENDS, make_database
from tests.support import snapshot

PROGRAM = """\
id: shop
name: Shop
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
rewards:
  - {id: ten, name: Ten points off, kind: discount_amount, value: 1, cost: 10}
expiry: {mode: inactivity, months: 1}
"""


@dataclass
class Server:
    url: str
    db: Database
    token: str

    def client(self) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.token}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)


@pytest.fixture(params=BACKENDS)
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    db = make_database(request.param, request, tmp_path)
    app = create_app(db.url, parse_program(PROGRAM), Settings())
    port = free_port()
    uv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not uv.started:
        assert time.monotonic() < deadline, "the API server did not start"
        time.sleep(0.02)
    running = Running(uv, thread)
    yield Server(f"http://127.0.0.1:{port}", db, create_key(db, "shop", "admin")[1])
    running.stop()
    db.dispose()


def test_api_balance_redemption_and_debit_leave_lapsed_points_out(server: Server) -> None:
    # the API answers as of now: ann last bought 70 days ago (lapsed), bob yesterday
    now = datetime.now(UTC)
    with server.client() as c:
        for ref, days, amount in (("ann", 70, "42"), ("bob", 1, "15")):
            sale = {"id": f"p-{ref}", "type": "purchase", "member": ref, "amount": amount,
                    "at": (now - timedelta(days=days)).isoformat()}  # fmt: skip
            assert c.post("/v1/events", json=sale).status_code == 201
        balances = [c.get(f"/v1/members/{ref}/balance").json()["balances"][0]
                    for ref in ("ann", "bob")]  # fmt: skip
        assert [(b["available"], b["pending"], b["debt"]) for b in balances] == [
            (0, 0, 0),
            (15, 0, 0),
        ]
        before = snapshot(server.db)
        redeem = c.post("/v1/redemptions", json={"member": "ann", "reward": "ten"},
                        headers={"Idempotency-Key": "r1"})  # fmt: skip
        assert (redeem.status_code, redeem.json()["code"]) == (422, "insufficient_points")
        debit = c.post("/v1/members/ann/adjustments", json={"points": -5, "reason": "fix"},
                       headers={"Idempotency-Key": "a1"})  # fmt: skip
        assert (debit.status_code, debit.json()["code"]) == (422, "insufficient_points")
        assert snapshot(server.db) == before
        done = c.post("/v1/redemptions", json={"member": "bob", "reward": "ten"},
                      headers={"Idempotency-Key": "r2"})  # fmt: skip
        assert (done.status_code, done.json()["points"]) == (201, 10)


def test_cli_balance_and_spend_with_the_program_file_leave_lapsed_points_out(
    tmp_path: Path,
) -> None:
    db, program = cafe(tmp_path, "e1,purchase,ann,2026-10-10T10:00:00+00:00,42",
                       "e2,purchase,bob,2026-11-25T10:00:00+00:00,10")  # fmt: skip
    file = ["--program-file", str(program)]
    balance = ["ledger", "balance", "--as-of", "2026-12-01", "-f", "json"]
    assert as_json(cli(*balance, "ann", "-p", "cafe", db=db))["available"] == 42  # no policy
    assert as_json(cli(*balance, "ann", *file, db=db))["available"] == 0
    assert as_json(cli(*balance, "bob", *file, db=db))["available"] == 10
    before = dump(db)
    spend = ["ledger", "spend", "ann", "5", "--key", "s1", "--at", "2026-12-01", *file]
    refused = cli(*spend, "-f", "json", db=db, ok=False)
    assert refused.returncode == 1
    assert as_json(refused)["error"] == {
        "code": "insufficient_points", "field": "points",
        "message": "member 'ann' has 0 points available, 5 requested; 42 lapsed at "
        "2026-11-10T10:00:00+00:00 after no activity since 2026-10-10T10:00:00+00:00",
        "detail": {"available": 0, "requested": 5, "lapsed": 42,
                   "lapsed_at": "2026-11-10T10:00:00+00:00"},
    }  # fmt: skip
    assert dump(db) == before
    job = ["ledger", "expire", "--as-of", "2026-12-01", *file, "-f", "json"]
    assert as_json(cli(*job, db=db))["points"] == {"points": 42}
    assert as_json(cli(*job, db=db))["points"] == {}
