"""Double-spend storm: 1,000 points, 64 workers x 50 spends of 10; exactly 100 succeed."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import text

from fidelite.ledger import Rejected, RejectionCode, assert_invariants
from tests.support import T0, CheckedLedger

# Dozens of database connections at once: never beside another such test (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("one_at_a_time")

WORKERS, ATTEMPTS, PRICE = 64, 50, 10


@pytest.mark.parametrize("round_", range(3))
def test_concurrent_spends_never_overspend(ledger: CheckedLedger, round_: int) -> None:
    ledger.earn("shop", "alice", "points", 1000, key="seed", at=T0)
    inner = ledger.inner
    lowest = [1000]
    lock = threading.Lock()
    start = threading.Barrier(WORKERS)

    def worker(w: int) -> tuple[int, int, list[str]]:
        start.wait()
        ok = refused = 0
        other: list[str] = []
        for i in range(ATTEMPTS):
            try:
                r = inner.spend("shop", "alice", "points", PRICE, key=f"w{w}-{i}", at=T0)
            except Rejected as rejected:
                if rejected.code is RejectionCode.INSUFFICIENT_POINTS:
                    refused += 1
                else:
                    other.append(rejected.code.value)
            else:
                ok += 1
                with lock:
                    lowest[0] = min(lowest[0], r.available_after)
        return ok, refused, other

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        results = list(pool.map(worker, range(WORKERS)))

    assert sum(r[0] for r in results) == 100
    assert sum(r[1] for r in results) == WORKERS * ATTEMPTS - 100
    assert [code for r in results for code in r[2]] == []
    assert lowest[0] == 0
    assert ledger.balance("shop", "alice", "points", as_of=T0).available == 0
    with ledger.db.read() as conn:
        spends = conn.execute(
            text("SELECT COUNT(*), SUM(points) FROM ledger_transactions WHERE kind = 'spend'")
        ).one()
    assert tuple(spends) == (100, 1000)
    assert_invariants(ledger.db)
