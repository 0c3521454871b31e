"""bench/cli.py: every timed command succeeds (``ledger history`` of an enrolled
member), a failing one ends the bench; sizes refused."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.bench.support import assert_usage_error, bench_module


def test_zero_runs_is_a_usage_error(tmp_path: Path) -> None:
    assert_usage_error(["cli.py", "--runs", "0"], "argument --runs: 0 must be at least 1", tmp_path)


@pytest.mark.slow  # runs the bench script end to end
def test_every_timed_command_succeeds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cli = bench_module("cli", monkeypatch)
    db = str(tmp_path / "bench.db")
    cli.prepare(db)
    for label, command in cli.lines(db).items():
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        assert done.returncode == 0, (label, done.stderr)


def test_a_failing_command_ends_the_bench(monkeypatch: pytest.MonkeyPatch) -> None:
    cli = bench_module("cli", monkeypatch)
    with pytest.raises(SystemExit) as ended:
        cli.run([*cli.FIDELITE, "ledger", "history", "nobody", "-p", "cafe", "--db",
                 "/nonexistent/x.db"])  # fmt: skip
    assert "failed with exit code 1" in str(ended.value.code)
