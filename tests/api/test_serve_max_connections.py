"""`fidelite serve --max-connections N`: a worker serves at most N connections at once; a
request arriving while it holds more (its own included) is answered 503, and served
again once connections closed. uvicorn's default was no limit: any number of requests
in flight, each holding its body (up to --max-body-bytes) in memory. Over real TCP on
127.0.0.1 against ``fidelite serve`` (one worker), on a SQLite file.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import PROGRAM, free_port

pytestmark = pytest.mark.slow
FIDELITE = shutil.which("fidelite") or str(Path(sys.executable).parent / "fidelite")


def _serve(tmp: Path, *options: str) -> tuple[subprocess.Popen[bytes], int]:
    program = tmp / "program.yaml"
    program.write_text(PROGRAM)
    port = free_port()
    command = [FIDELITE, "serve", "--program", str(program), "--db",
               f"sqlite:///{tmp / 'api.db'}", "--port", str(port), *options]  # fmt: skip
    proc = subprocess.Popen(command, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return proc, port
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "fidelite serve did not become ready"
        time.sleep(0.1)


def test_a_request_beyond_the_connections_a_worker_serves_is_answered_503(
    tmp_path: Path,
) -> None:
    proc, port = _serve(tmp_path, "--max-connections", "1", "--header-timeout", "60")
    try:
        url = f"http://127.0.0.1:{port}/healthz"
        with socket.create_connection(("127.0.0.1", port)) as holder:  # says nothing yet
            holder.settimeout(60)
            refused = httpx.get(url, timeout=60)
            assert refused.status_code == 503
            assert refused.text == "Service Unavailable"
            holder.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            answer = b""
            while chunk := holder.recv(65536):
                answer += chunk
            assert answer.startswith(b"HTTP/1.1 200 ")  # the one it holds is served
        deadline = time.monotonic() + 60  # the server sees the holder gone
        while (status := httpx.get(url, timeout=60).status_code) == 503:
            assert time.monotonic() < deadline, "still 503 with no other connection"
            time.sleep(0.1)
        assert status == 200
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def test_the_limit_is_checked_when_serve_starts(tmp_path: Path) -> None:
    program = tmp_path / "program.yaml"
    program.write_text(PROGRAM)
    for value in ("0", "100001", "many"):
        done = subprocess.run([FIDELITE, "serve", "--program", str(program), "--db",
                               f"sqlite:///{tmp_path / 'api.db'}", "--max-connections", value],
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        assert done.returncode == 2, (value, done.stderr)
        assert "Invalid value for '--max-connections'" in done.stderr
