"""bench/api.py: stops when the server ends before it is ready; removes its scratch
PostgreSQL database and temporary directory whatever happens; sizes refused."""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.bench.support import assert_usage_error, bench_module
from tests.conftest import PG_ADMIN_URL

UNREACHABLE = "postgresql://postgres@127.0.0.1:1/x"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["api.py", "--sqlite", "--workers", "0"], "argument --workers: 0 must be at least 1"),
        (["api.py", "--sqlite", "--events", "-1"], "argument --events: -1 must be at least 1"),
        (["api.py", "--pg", UNREACHABLE], f"--pg {UNREACHABLE}: cannot connect: "),
    ],
)
def test_a_size_or_url_that_cannot_be_measured_is_a_usage_error(
    args: list[str], message: str, tmp_path: Path
) -> None:
    assert_usage_error(args, message, tmp_path)


def test_fidelite_is_the_one_of_the_running_python(monkeypatch: pytest.MonkeyPatch) -> None:
    options = bench_module("options", monkeypatch)
    monkeypatch.setenv("PATH", "/nonexistent")
    assert options.fidelite_command() == [str(Path(sys.executable).parent / "fidelite")]


def test_the_bench_stops_when_the_server_ends_before_it_is_ready(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    api = bench_module("api", monkeypatch)
    server = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    began = time.monotonic()
    with pytest.raises(SystemExit) as ended:
        api.wait_ready(server, 1)
    assert time.monotonic() - began < 10
    assert ended.value.code == (
        "api bench: fidelite serve ended with exit code 3 before it was ready"
        " (its messages are above)"
    )


def _database_exists(name: str) -> bool:
    admin = create_engine(PG_ADMIN_URL.replace("postgresql://", "postgresql+psycopg://", 1))
    with admin.connect() as conn:
        found = conn.execute(
            text("SELECT count(*) FROM pg_database WHERE datname = :name"), {"name": name}
        ).scalar_one()
    admin.dispose()
    return bool(found)


@pytest.mark.slow  # runs the bench script end to end
@pytest.mark.postgres
@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_the_bench_cleans_up_after_a_failure(
    kind: str, pg_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = bench_module("api", monkeypatch)
    used: list[str] = []

    def fail(args: argparse.Namespace, tmp: Path, url: str) -> None:
        used.append(url)
        raise RuntimeError("the server failed")

    monkeypatch.setattr(api, "measure", fail)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    flags = ["--sqlite"] if kind == "sqlite" else ["--pg", PG_ADMIN_URL]
    monkeypatch.setattr(sys, "argv", ["api.py", *flags])
    with pytest.raises(RuntimeError, match="the server failed"):
        api.main()
    (url,) = used
    assert list(tmp_path.iterdir()) == []
    if kind == "postgresql":
        name = url.rsplit("/", 1)[1]
        assert name.startswith("fidelite_bench_")
        assert not _database_exists(name)
