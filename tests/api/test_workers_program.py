"""`fidelite serve --workers 2` runs one version of the program, the one read at start-up.

Over real processes and real TCP on 127.0.0.1 (a SQLite file). Each worker used to read
the program file when it started: after an edit of the file (1 -> 5 points per EUR),
a worker that died was started again with the new rules while the other kept the old
ones, and identical purchases earned 10 or 50 points depending on the connection; with
an invalid file the new worker crash-looped, a traceback a second. Now every worker
builds its application from the text ``serve`` read once, so both answer 10 points, and
the supervisor says once why a worker cannot start instead of spinning.
Linux only (reads /proc). Slow: it starts `fidelite serve`.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from fidelite.api.app import Settings
from fidelite.api.keys import create_key
from fidelite.api.server import ProgramText, serve_config
from fidelite.api.workers import Supervisor, WorkerStartError
from fidelite.store import Database
from tests.api.conftest import free_port
from tests.api.test_workers import (
    FIDELITE,
    _connections_of,
    _inodes,
    _wait_listening,
    _wait_ready,
    _workers,
)
from tests.api.test_workers import pytestmark as workers_marks

pytestmark = workers_marks  # slow, never beside another such test, Linux only

PROGRAM = """\
id: shop
name: Shop
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
"""
POOL = 32


@dataclass
class Serve:
    proc: subprocess.Popen[bytes]
    port: int
    token: str
    program: Path
    data: Path  # the directory of the SQLite file
    log: Path  # serve's standard error

    def stderr(self) -> str:
        return self.log.read_text()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    data = tmp_path / "data"
    data.mkdir()
    url = f"sqlite:///{data / 'api.db'}"
    db = Database(url)
    db.upgrade()
    token = create_key(db, "shop", "admin")[1]
    db.dispose()
    program = tmp_path / "program.yaml"
    program.write_text(PROGRAM)
    port, log = free_port(), tmp_path / "serve.log"
    with log.open("wb") as err:
        proc = subprocess.Popen([FIDELITE, "serve", "--program", str(program), "--db", url,
                                 "--port", str(port), "--workers", "2"],
                                stdout=subprocess.DEVNULL, stderr=err)  # fmt: skip
    try:
        _wait_ready(port, proc)
        _wait_listening(proc.pid, port, 2)
        yield Serve(proc, port, token, program, data, log)
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(60)


def _kill_and_wait(serve: Serve, pid: int) -> None:
    """SIGKILL worker ``pid``; wait until its replacement listens beside the other."""
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while pid in _workers(serve.proc.pid):
        assert time.monotonic() < deadline, f"worker {pid} still there"
        time.sleep(0.1)
    _wait_listening(serve.proc.pid, serve.port, 2)


def _purchases_over_both_workers(serve: Serve, prefix: str) -> list[object]:
    """A purchase of 10 EUR on each of ``POOL`` connections opened together, after
    checking that both workers hold some of them; the points of each answer."""
    pool = [http.client.HTTPConnection("127.0.0.1", serve.port, timeout=60) for _ in range(POOL)]
    for conn in pool:
        conn.connect()
    try:
        for conn in pool:  # each connection accepted by its worker
            conn.request("GET", "/healthz")
            assert conn.getresponse().read() == b'{"status":"ok"}'
        inodes = _inodes(serve.port, "01")
        held = [_connections_of(pid, inodes) for pid in _workers(serve.proc.pid)]
        assert len(held) == 2 and min(held) > 0, held  # 2^-31 odds of all on one
        points = []
        for n, conn in enumerate(pool):
            body = {"id": f"{prefix}-{n}", "type": "purchase", "member": "M1",
                    "at": "2026-01-01T00:00:00Z", "amount": "10"}  # fmt: skip
            conn.request("POST", "/v1/events", json.dumps(body),
                         {"Authorization": f"Bearer {serve.token}",
                          "Content-Type": "application/json"})  # fmt: skip
            answer = conn.getresponse()
            assert answer.status == 201
            points.append(json.loads(answer.read())["points"])
        return points
    finally:
        for conn in pool:
            conn.close()


def _available(serve: Serve) -> int:
    headers = {"Authorization": f"Bearer {serve.token}"}
    got = httpx.get(f"http://127.0.0.1:{serve.port}/v1/members/M1/balance",
                    headers=headers, timeout=60)  # fmt: skip
    assert got.status_code == 200
    return int(got.json()["balances"][0]["available"])


def test_a_worker_started_again_runs_the_program_read_at_start_up(serve: Serve) -> None:
    first, second = _workers(serve.proc.pid)
    assert _purchases_over_both_workers(serve, "before") == [{"points": 10}] * POOL
    serve.program.write_text(PROGRAM.replace("points: 1}", "points: 5}"))
    _kill_and_wait(serve, first)  # started again after the edit
    assert _purchases_over_both_workers(serve, "edited") == [{"points": 10}] * POOL
    serve.program.write_text("id: shop\nrules: [\n")  # not even YAML
    _kill_and_wait(serve, second)  # both workers now started after the edits
    assert _purchases_over_both_workers(serve, "invalid") == [{"points": 10}] * POOL
    assert _available(serve) == 3 * POOL * 10
    serve.proc.terminate()
    assert serve.proc.wait(60) == 0
    assert serve.stderr().splitlines() == [
        f"worker {first} exited with code -9; starting it again",
        f"worker {second} exited with code -9; starting it again",
    ]


def test_a_worker_that_cannot_start_again_is_told_once_not_in_a_loop(serve: Serve) -> None:
    first, _ = _workers(serve.proc.pid)
    away = serve.data.with_name("away")
    serve.data.rename(away)  # the database cannot be opened by a new worker
    os.kill(first, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while "could not start" not in serve.stderr():
        assert time.monotonic() < deadline, serve.stderr()
        time.sleep(0.1)
    time.sleep(8)  # tries again after 2 s and 4 s, more than once a second before
    said = serve.stderr().splitlines()
    assert said[0] == f"worker {first} exited with code -9; starting it again"
    assert len(said) == 2, said
    assert re.fullmatch(r"worker-[01] could not start: OperationalError: \(sqlite3\."
                        r"OperationalError\) unable to open database file; trying again "
                        r"after pauses doubling up to 60 s", said[1])  # fmt: skip
    url = f"http://127.0.0.1:{serve.port}/healthz"
    assert httpx.get(url, timeout=60).status_code == 200  # the other worker serves
    away.rename(serve.data)
    deadline = time.monotonic() + 90
    while "started again" not in serve.stderr():
        assert time.monotonic() < deadline, serve.stderr()
        time.sleep(0.2)
    _wait_listening(serve.proc.pid, serve.port, 2)
    assert _purchases_over_both_workers(serve, "back") == [{"points": 10}] * POOL
    assert serve.stderr().splitlines()[2:] == [said[1][:8] + " started again"]


def test_workers_that_cannot_start_stop_the_server_with_the_reason(tmp_path: Path) -> None:
    missing = tmp_path / "missing" / "api.db"
    config = serve_config(f"sqlite:///{missing}", ProgramText("shop.yaml", PROGRAM), Settings())
    supervisor = Supervisor("127.0.0.1", free_port(), 2, "warning", config)
    with pytest.raises(WorkerStartError) as raised:
        supervisor.run()
    assert str(raised.value) == (
        "OperationalError: (sqlite3.OperationalError) unable to open database file"
    )
    for worker in supervisor.slots:  # every worker stopped; nothing written
        assert worker is None or not worker.proc.is_alive()
    assert not missing.parent.exists()


def test_a_program_over_64_kib_does_not_block_the_supervisor(tmp_path: Path) -> None:
    """The configuration, program text included, reaches the workers in a file: passed as
    a worker's start arguments (a 64 KiB pipe) it blocked the supervisor for good when
    the workers died before reading them, as Ctrl-C in a terminal kills them while they
    start: no shutdown, and SIGTERM ignored."""
    url = f"sqlite:///{tmp_path / 'api.db'}"
    db = Database(url)
    db.upgrade()
    db.dispose()
    program = tmp_path / "program.yaml"
    padding = "".join(f"# note {n:06d} {'x' * 60}\n" for n in range(2_000))  # ~150 KB
    program.write_text(PROGRAM + padding)
    assert program.stat().st_size > 2 * 65_536
    proc = subprocess.Popen([FIDELITE, "serve", "--program", str(program), "--db", url,
                             "--port", str(free_port()), "--workers", "2"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not _workers(proc.pid):  # the workers are being started
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: to every process of the terminal
        assert proc.wait(60) is not None
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
