"""The benches' modules (engine, api, cli...) are imported by their plain names, as the
scripts in bench/ import each other: each test forgets them afterwards."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.bench.support import BENCH


@pytest.fixture(autouse=True)
def forget_bench_modules() -> Iterator[None]:
    yield
    for name, module in list(sys.modules.items()):
        if Path(getattr(module, "__file__", None) or "/").parent == BENCH:
            del sys.modules[name]
