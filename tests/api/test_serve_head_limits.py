"""`fidelite serve` bounds each request's line and headers (the head): in size
(``--max-header-bytes``, 431 ``headers_too_large``) and in time (``--header-timeout``,
408 ``request_timeout``), and sends security headers with every answer.

uvicorn alone had neither bound: a connection sending one never-ending header field grew
the worker by the size sent, a client sending a header line a second held its
connection open for good. Over real TCP on 127.0.0.1 against ``fidelite serve`` (one
worker: uvicorn's own run; two: our supervisor's workers), on a SQLite file.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import PROGRAM, free_port

pytestmark = pytest.mark.slow
FIDELITE = shutil.which("fidelite") or str(Path(sys.executable).parent / "fidelite")
TIMEOUT = 2  # --header-timeout of the server under test
SECURITY = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "content-security-policy": "frame-ancestors 'none'",
}


@pytest.fixture(scope="module", params=[1, 2], ids=["one-worker", "two-workers"])
def port(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    tmp = tmp_path_factory.mktemp("serve")
    program = tmp / "program.yaml"
    program.write_text(PROGRAM)
    number = free_port()
    command = [FIDELITE, "serve", "--program", str(program), "--db",
               f"sqlite:///{tmp / 'api.db'}", "--port", str(number),
               "--workers", str(request.param), "--header-timeout", str(TIMEOUT)]  # fmt: skip
    proc = subprocess.Popen(command, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            try:
                if httpx.get(f"http://127.0.0.1:{number}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "fidelite serve did not become ready"
            time.sleep(0.1)
        yield number
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.settimeout(60)  # a hang fails the test instead of blocking the run
    return sock


def _answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Read one answer and then the connection's end: status, headers, body (the
    server must close the connection after it)."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, body


def _send_until_closed(sock: socket.socket, first: bytes, chunk: bytes, most: int) -> None:
    """Send ``first`` then ``chunk`` up to ``most`` times, stopping when the server has
    closed the connection."""
    sock.sendall(first)
    for _ in range(most):
        try:
            sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            return


def test_a_never_ending_header_field_is_answered_431_and_closed(port: int) -> None:
    with _connect(port) as sock:
        _send_until_closed(sock, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ",
                           b"a" * 1024, 2048)  # fmt: skip
        try:
            status, headers, body = _answer(sock)
        except ConnectionResetError:  # it refused while we were still sending
            pytest.fail("the server reset the connection without an answer")
    assert status == 431
    assert headers["content-type"] == "application/problem+json"
    assert headers["connection"] == "close"
    assert {k: headers[k] for k in SECURITY} == SECURITY
    assert json.loads(body) == {
        "type": "https://fidelite.dev/problems/headers_too_large",
        "title": "request header fields too large", "status": 431,
        "detail": "the request line and headers may be at most 65536 bytes",
        "code": "headers_too_large",
    }  # fmt: skip
    assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=60).json() == {"status": "ok"}


def test_a_client_still_sending_its_head_when_refused_reads_the_431(port: int) -> None:
    """The rest of what it sent is read and dropped before the connection closes: closing
    with it unread reset the connection, and the client could lose the answer."""
    with _connect(port) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 4_000_000)
        status, _headers, body = _answer(sock)
    assert (status, json.loads(body)["code"]) == (431, "headers_too_large")


def test_a_head_over_the_limit_in_one_write_is_refused_one_under_it_is_served(
    port: int,
) -> None:
    with _connect(port) as sock:
        field = b"X-Big: " + b"a" * 70_000 + b"\r\n"
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + field + b"\r\n")
        status, _headers, body = _answer(sock)
    assert (status, json.loads(body)["code"]) == (431, "headers_too_large")
    many = {f"X-Field-{i}": "b" * 1000 for i in range(60)}  # 60 KiB in 60 fields
    answer = httpx.get(f"http://127.0.0.1:{port}/healthz", headers=many, timeout=60)
    assert (answer.status_code, answer.json()) == (200, {"status": "ok"})


def test_a_large_body_is_not_counted_as_the_head(port: int) -> None:
    body = json.dumps({"events": [{"type": "purchase", "member_id": "m", "amount": 1}],
                       "pad": "x" * 900_000}).encode()  # fmt: skip
    answer = httpx.post(f"http://127.0.0.1:{port}/v1/events", content=body,
                        headers={"Content-Type": "application/json"}, timeout=60)  # fmt: skip
    assert answer.status_code == 401  # read whole, refused for its missing key
    assert {k: answer.headers[k] for k in SECURITY} == SECURITY  # the fast path too


def test_a_head_sent_a_line_at_a_time_too_slowly_is_answered_408_and_closed(port: int) -> None:
    with _connect(port) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        sock.settimeout(0.3)
        closed_after = None
        for line in range(200):  # at most 60 s
            try:
                sock.sendall(b"X-A: b\r\n")
                data = sock.recv(65536, socket.MSG_PEEK)
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
            closed_after = line
            break
        assert closed_after is not None, "the connection stayed open"
        sock.settimeout(60)
        status, headers, body = _answer(sock)
    assert data.startswith(b"HTTP/1.1 408 ")
    assert status == 408
    assert headers["connection"] == "close"
    assert json.loads(body) == {
        "type": "https://fidelite.dev/problems/request_timeout",
        "title": "request timeout", "status": 408,
        "detail": f"the request line and headers must arrive within {TIMEOUT} seconds",
        "code": "request_timeout",
    }  # fmt: skip


def test_a_connection_that_sends_nothing_is_closed_without_an_answer(port: int) -> None:
    with _connect(port) as sock:
        assert sock.recv(65536) == b""


def test_the_next_request_on_a_kept_alive_connection_has_the_same_deadline(port: int) -> None:
    with _connect(port) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        first = b""
        while not first.endswith(b'{"status":"ok"}'):
            first += sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 200 ")
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")  # and no more
        status, _headers, body = _answer(sock)
    assert (status, json.loads(body)["code"]) == (408, "request_timeout")


def test_every_answer_carries_the_security_headers(port: int) -> None:
    base = f"http://127.0.0.1:{port}"
    for path in ("/healthz", "/v1/members", "/openapi.json"):
        answer = httpx.get(f"{base}{path}", timeout=60)
        assert {k: answer.headers[k] for k in SECURITY} == SECURITY, answer.url


def test_the_limits_are_checked_when_serve_starts(tmp_path: Path) -> None:
    program = tmp_path / "program.yaml"
    program.write_text(PROGRAM)
    for option, value in (("--max-header-bytes", "1023"), ("--max-header-bytes", "1048577"),
                          ("--header-timeout", "0.5"), ("--header-timeout", "301")):  # fmt: skip
        done = subprocess.run([FIDELITE, "serve", "--program", str(program), "--db",
                               f"sqlite:///{tmp_path / 'api.db'}", option, value],
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        assert done.returncode == 2, (option, value, done.stderr)
        said = " ".join(done.stderr.split())
        assert f"Invalid value for '{option}'" in said
        assert f"got {value}" in said
