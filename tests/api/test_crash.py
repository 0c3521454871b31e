"""Crash safety: kill -9 the server in the middle of a run of batches (a till sending
1,000 events as 20 batches of 50, each with its Idempotency-Key), start it again, replay
every batch with the same keys: the ledger ends exactly as after a clean run (SQLite
file and PostgreSQL). A batch is one transaction, so the kill leaves the batches before
it committed and the one it interrupts not at all. Slow: it starts `fidelite serve`."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text

from fidelite.api.keys import create_key
from fidelite.ledger import assert_invariants
from fidelite.processing.tables import events as processed_events
from fidelite.store import Database
from tests.api.conftest import PROGRAM, free_port
from tests.conftest import BACKENDS, make_database

# Dozens of database connections at once: never beside another such test (tests/conftest.py).
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_at_a_time")]
FIDELITE = shutil.which("fidelite") or str(Path(sys.executable).parent / "fidelite")
EVENTS = [
    {
        "id": f"e{i}",
        "type": "purchase",
        "member": f"m{i % 40}",
        "amount": f"{10 + i % 17}.50",
        "at": f"2026-11-{1 + i % 20:02d}T10:00:00+01:00",
    }
    for i in range(1000)
]
BATCHES = [EVENTS[i : i + 50] for i in range(0, len(EVENTS), 50)]
GATED = 8  # the crash run holds this batch back until the server is killed


def _serve(url: str, program: Path, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [
            FIDELITE,
            "serve",
            "--program",
            str(program),
            "--db",
            url,
            "--port",
            str(port),
            "--idempotency-lease",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("fidelite serve did not start")


def _processed(db: Database) -> int:
    with db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(processed_events)).scalar_one())


def _ledger_state(db: Database) -> list[Any]:
    """Everything that must match, without generated ids and wall-clock times."""
    with db.read() as conn:
        lots = conn.execute(
            text(
                "SELECT m.ref, l.currency, l.points, l.remaining, l.state, l.expires_at "
                "FROM lots l JOIN members m ON m.id = l.member_id ORDER BY 1, 2, 3, 4, 5, 6"
            )
        ).all()
        accounts = conn.execute(
            text(
                "SELECT m.ref, a.currency, a.kind, a.balance FROM accounts a "
                "LEFT JOIN members m ON m.id = a.member_id ORDER BY 1, 2, 3, 4"
            )
        ).all()
        txs = conn.execute(
            text("SELECT kind, idempotency_key FROM ledger_transactions ORDER BY 2")
        ).all()
    return [list(map(tuple, lots)), list(map(tuple, accounts)), list(map(tuple, txs))]


def _post_batches(
    port: int, token: str, gate: threading.Event | None = None
) -> list[httpx.Response]:
    """Every batch in turn, each with its own Idempotency-Key (what a till's retry sends).

    With ``gate``, batches from :data:`GATED` on wait until it is set: the events
    processed when the server is killed are then between 300 and 400 however slowly
    the test itself is scheduled."""
    answers = []
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=300) as c:
        for n, batch in enumerate(BATCHES):
            if gate is not None and n == GATED:
                gate.wait(120)
            answers.append(c.post(
                "/v1/events:batch",
                json={"events": batch},
                headers={"Authorization": f"Bearer {token}", "Idempotency-Key": f"batch-{n}"},
            ))  # fmt: skip
        return answers


@pytest.mark.parametrize("backend", BACKENDS)
def test_kill_mid_batch_then_replay_gives_the_clean_ledger(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    program = tmp_path / "program.yaml"
    program.write_text(PROGRAM)
    crashed = make_database(backend, request, tmp_path)
    token = create_key(crashed, "shop", "integration")[1]
    port = free_port()
    server = _serve(crashed.url, program, port)
    killed = threading.Event()
    sender = threading.Thread(target=lambda: _safe(_post_batches, port, token, killed), daemon=True)
    sender.start()
    deadline = time.monotonic() + 120
    while _processed(crashed) < 300 and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(server.pid, signal.SIGKILL)
    server.wait()
    killed.set()  # the held-back batches now meet a dead server, and the sender stops
    sender.join(60)
    assert not sender.is_alive()
    done_before = _processed(crashed)
    assert 300 <= done_before <= 50 * GATED, "the kill must land in the middle of the run"
    assert done_before % 50 == 0, "a batch is committed whole or not at all"
    time.sleep(1.5)  # past the idempotency lease: the retry may take the key over
    server = _serve(crashed.url, program, port)
    try:
        replay = _post_batches(port, token)
    finally:
        server.kill()
        server.wait()
    assert [r.status_code for r in replay] == [200] * len(BATCHES)
    replayed = [r.headers.get("Idempotent-Replayed") == "true" for r in replay]
    committed = done_before // 50
    # the batches answered before the kill are replayed from the store (the one whose
    # answer the kill may have cut off, after its commit, runs again: all duplicates)
    assert committed - 1 <= sum(replayed) <= committed
    outcomes = [r["outcome"] for answer in replay for r in answer.json()["results"]]
    assert outcomes.count("processed") + outcomes.count("duplicate") == 1000
    assert outcomes[done_before:].count("processed") == 1000 - done_before
    after_crash = _ledger_state(crashed)
    assert_invariants(crashed, "shop")

    clean_path = tmp_path / "clean"
    clean_path.mkdir()
    # SQLite: a new file; PostgreSQL: the scratch database emptied (its state was read above)
    clean = make_database(backend, request, clean_path)
    clean_token = create_key(clean, "shop", "integration")[1]
    server = _serve(clean.url, program, port)
    try:
        assert [r.status_code for r in _post_batches(port, clean_token)] == [200] * len(BATCHES)
    finally:
        server.kill()
        server.wait()
    assert _ledger_state(clean) == after_crash
    crashed.dispose()
    clean.dispose()


def _safe(fn: Any, *args: Any) -> None:
    with contextlib.suppress(httpx.HTTPError):  # the server is killed under it
        fn(*args)
