"""The foundation's double-spend storm through the HTTP API: one member holds 1,000
points; 64 concurrent clients each try 50 redemptions costing 10; exactly 100 succeed,
every other attempt is 422 insufficient_points, the balance ends at 0 and the books
balance (SQLite file and PostgreSQL)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from fidelite.ledger import assert_invariants
from tests.api.conftest import Live

# Dozens of database connections at once: never beside another such test (tests/conftest.py).
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_at_a_time")]
CLIENTS, ATTEMPTS = 64, 50


def test_sixty_four_clients_never_overspend(live: Live) -> None:
    with live.client("admin") as c:
        c.post("/v1/members", json={"id": "ann"})
        seeded = c.post(
            "/v1/members/ann/adjustments",
            json={"points": 1000, "reason": "seed"},
            headers={"Idempotency-Key": "seed"},
        )
        assert seeded.status_code == 201
    token = live.tokens["integration"]

    def client_run(worker: int) -> list[tuple[int, str]]:
        out = []
        with httpx.Client(
            base_url=live.url, headers={"Authorization": f"Bearer {token}"}, timeout=120
        ) as c:
            for attempt in range(ATTEMPTS):
                r = _post_retrying(c, {"Idempotency-Key": f"w{worker}-{attempt}"})
                out.append((r.status_code, r.json().get("code", "")))
        return out

    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        results = [r for batch in pool.map(client_run, range(CLIENTS)) for r in batch]
    ok = [r for r in results if r[0] == 201]
    refused = [r for r in results if r[0] != 201]
    assert len(ok) == 100
    assert set(refused) == {(422, "insufficient_points")} and len(refused) == 3100
    with live.client("admin") as c:
        balance = c.get("/v1/members/ann/balance").json()["balances"][0]
    assert (balance["available"], balance["debt"]) == (0, 0)
    assert_invariants(live.db, "shop")


def _post_retrying(client: httpx.Client, headers: dict[str, str]) -> httpx.Response:
    """One redemption, sent again with the same Idempotency-Key when the connection
    drops before an answer, as a till does. Under load a client thread may wait longer
    than the server keeps an idle connection open (uvicorn: 5 s), and its next request
    then meets a closed socket; the key makes the retry safe: it is applied once."""
    for _ in range(4):
        try:
            return client.post("/v1/redemptions", json={"member": "ann", "reward": "ten"},
                               headers=headers)  # fmt: skip
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.ConnectError):
            continue
    return client.post("/v1/redemptions", json={"member": "ann", "reward": "ten"},
                       headers=headers)  # fmt: skip
