"""``fidelite serve --port`` outside 1-65535 is a usage error, not an OverflowError
traceback; a --host that does not resolve is told apart from a port in use."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.cli.support import fidelite

PROGRAM = """\
id: shop
name: Shop
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
"""


@pytest.fixture
def program(tmp_path: Path) -> Path:
    path = tmp_path / "shop.yaml"
    path.write_text(PROGRAM, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("port", "message"),
    [("99999", "must be at most 65535, got 99999"),
     ("65536", "must be at most 65535, got 65536"),
     ("-1", "must be at least 1, got -1"),
     ("0", "must be at least 1, got 0")],
)  # fmt: skip
def test_a_port_outside_the_tcp_range_is_a_usage_error(
    tmp_path: Path, program: Path, port: str, message: str
) -> None:
    db = tmp_path / "api.db"
    proc = fidelite("serve", "--program", program, "--db", db, "--port", port, ok=False,
                    separate=True)  # fmt: skip
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert f"Invalid value for '--port': {message}" in " ".join(
        proc.stderr.replace("│", " ").split()
    )
    assert not db.exists()


def test_a_host_that_does_not_resolve_is_not_called_a_port_in_use(
    tmp_path: Path, program: Path
) -> None:
    proc = fidelite("serve", "--program", program, "--db", tmp_path / "api.db", "--host",
                    "999.1.1.1", ok=False, separate=True)  # fmt: skip
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr.startswith(
        "error [invalid_host] cannot listen on 999.1.1.1:8000: --host '999.1.1.1' is not an "
        "IP address nor a name that resolves ("
    )


def test_a_port_in_use_is_still_address_in_use(tmp_path: Path, program: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = fidelite("serve", "--program", program, "--db", tmp_path / "api.db", "--port",
                        str(port), ok=False, separate=True)  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr == (
        f"error [address_in_use] cannot listen on 127.0.0.1:{port}: Address already in use\n"
    )


def test_serve_takes_the_program_file_as_p_as_every_other_command(
    tmp_path: Path, program: Path
) -> None:
    db = tmp_path / "api.db"
    proc = fidelite("serve", "-p", program, "--db", db, "--host", "999.1.1.1", ok=False,
                    separate=True)  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr.startswith("error [invalid_host] cannot listen on 999.1.1.1:8000:")
    assert db.exists()  # the program file was read and the database migrated
