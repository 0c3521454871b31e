"""Shared helpers: write small transaction files by hand."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def write_csv(tmp_path: Path) -> Callable[..., Path]:
    """Write ``text`` (stripped of indentation) to a CSV file and return its path."""

    def write(text: str, name: str = "tx.csv") -> Path:
        path = tmp_path / name
        lines = [line.strip() for line in text.strip().splitlines()]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path

    return write


@pytest.fixture
def metrics_json() -> Callable[..., dict[str, Any]]:
    """Run ``fidelite metrics ARGS --format json`` in-process; the parsed output."""
    from typer.testing import CliRunner

    from fidelite.cli.main import _register, app

    _register()

    def run(*args: str) -> dict[str, Any]:
        result = CliRunner().invoke(app, ["metrics", *args, "-f", "json"])
        assert result.exit_code == 0, result.output
        out: dict[str, Any] = json.loads(result.stdout)
        return out

    return run
