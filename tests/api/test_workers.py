"""`fidelite serve --workers N`: each worker on a listening socket of its own.

Over real processes and real TCP on 127.0.0.1 (a SQLite file): a pool of keep-alive
connections opened together is spread over the workers (with one shared socket it
often all went to one); a worker killed with SIGKILL is started again and the server
keeps answering; SIGTERM stops every worker; a port already taken is refused with a
clear error. Linux only (reads /proc to see which worker holds which connection).
Slow: it starts `fidelite serve`.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import PROGRAM, free_port

# Dozens of database connections at once: never beside another such test (tests/conftest.py).
pytestmark = [
    pytest.mark.slow,
    pytest.mark.usefixtures("one_at_a_time"),
    pytest.mark.skipif(
        not Path("/proc/net/tcp").exists() or not hasattr(socket, "SO_REUSEPORT"),
        reason="needs Linux (/proc and SO_REUSEPORT)",
    ),
]
FIDELITE = shutil.which("fidelite") or str(Path(sys.executable).parent / "fidelite")
POOL = 32


def _command(tmp: Path, port: int, workers: int) -> list[str]:
    program = tmp / "program.yaml"
    program.write_text(PROGRAM)
    return [FIDELITE, "serve", "--program", str(program), "--db", f"sqlite:///{tmp / 'api.db'}",
            "--port", str(port), "--workers", str(workers)]  # fmt: skip


def _wait_ready(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, "fidelite serve exited"
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError("fidelite serve did not become ready")


def _workers(supervisor: int) -> list[int]:
    """Worker processes of the supervisor (children started by multiprocessing spawn)."""
    children = Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()
    found = []
    for pid in children:
        with Path(f"/proc/{pid}/cmdline").open("rb") as cmd:
            if b"spawn_main" in cmd.read():
                found.append(int(pid))
    return sorted(found)


def _inodes(port: int, state: str) -> set[str]:
    """Socket inodes whose local port is ``port`` in ``state`` (01 established, 0A
    listening)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] == state:
                inodes.add(fields[9])
    return inodes


def _wait_listening(supervisor: int, port: int, workers: int) -> None:
    """Until every worker listens (the first to listen answers /readyz alone)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        pids = _workers(supervisor)
        listening = _inodes(port, "0A")
        if len(pids) == workers and all(_connections_of(p, listening) for p in pids):
            return
        time.sleep(0.1)
    raise AssertionError("not every worker listens")


def _connections_of(pid: int, inodes: set[str]) -> int:
    """How many of the sockets ``inodes`` process ``pid`` holds."""
    count = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in inodes:
            count += 1
    return count


def _open_pool(port: int, size: int) -> list[socket.socket]:
    """``size`` keep-alive connections opened together, each answered once."""
    pool = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(size)]
    for sock in pool:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
    for sock in pool:
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
    return pool


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    port = free_port()
    proc = subprocess.Popen(_command(tmp_path, port, 2), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)  # fmt: skip
    try:
        _wait_ready(port, proc)
        _wait_listening(proc.pid, port, 2)
        yield proc, port
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(60)


def test_a_pool_of_connections_is_spread_over_the_workers(
    server: tuple[subprocess.Popen[bytes], int],
) -> None:
    proc, port = server
    workers = _workers(proc.pid)
    assert len(workers) == 2
    pool = _open_pool(port, POOL)
    try:
        inodes = _inodes(port, "01")
        held = [_connections_of(pid, inodes) for pid in workers]
        assert sum(held) == POOL  # every connection is held by a worker, none elsewhere
        # spread by a hash of the addresses: all 32 on one of two has odds of 2^-31
        assert min(held) > 0, held
    finally:
        for sock in pool:
            sock.close()


def test_a_killed_worker_is_started_again_and_sigterm_stops_all(
    server: tuple[subprocess.Popen[bytes], int],
) -> None:
    proc, port = server
    first = _workers(proc.pid)
    os.kill(first[0], signal.SIGKILL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        now = _workers(proc.pid)
        if len(now) == 2 and first[0] not in now:
            break
        time.sleep(0.2)
    else:
        raise AssertionError(f"worker not started again: {first} -> {_workers(proc.pid)}")
    for _ in range(20):  # the replacement serves; every request is answered meanwhile
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=30).status_code == 200
    workers = _workers(proc.pid)
    proc.terminate()
    assert proc.wait(60) == 0
    for pid in workers:
        assert not Path(f"/proc/{pid}").exists() or _is_zombie(pid), f"worker {pid} left running"


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True


def test_a_port_in_use_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(_command(tmp_path, port, 2), capture_output=True, text=True,
                              timeout=120)  # fmt: skip
    assert done.returncode != 0
    assert "address_in_use" in done.stderr and f"127.0.0.1:{port}" in done.stderr
