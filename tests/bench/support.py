"""Running the benches in bench/ as a user does (``python bench/X.py``), at tiny sizes,
and importing their helpers as the scripts import each other."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


def bench_module(name: str, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(BENCH))
    return importlib.import_module(name)


def run_bench(
    *args: str, tmp: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``python bench/ARGS[0] ARGS[1:]``, with ``TMPDIR`` set to ``tmp`` if given."""
    env = dict(os.environ)
    if tmp is not None:
        env["TMPDIR"] = str(tmp)
    return subprocess.run(
        [sys.executable, str(BENCH / args[0]), *args[1:]],
        capture_output=True, text=True, timeout=timeout, env=env, check=False,
    )  # fmt: skip


def assert_usage_error(args: list[str], message: str, tmp: Path) -> None:
    """The bench refuses ``args`` with ``message`` (exit 2), before any work or file."""
    done = run_bench(*args, tmp=tmp, timeout=60)
    assert (done.returncode, done.stdout) == (2, "")
    assert f"{args[0]}: error: {message}" in done.stderr
    assert "Traceback" not in done.stderr
    assert list(tmp.iterdir()) == []
