"""A command's one-line answer stays one line when stdout is a pipe or a file, however
long: Rich wrapped it at 80 columns there (no terminal, no COLUMNS)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.cli.support import FIDELITE, fidelite


def test_a_long_sentence_is_one_line_into_a_pipe(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'shop.db'}"
    fidelite("db", "upgrade", db=db)
    fidelite("ledger", "open", "shop", db=db)
    ref = "CARD-" + "7" * 95
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    done = subprocess.run([FIDELITE, "member", "add", ref, "-p", "shop"], capture_output=True,
                          text=True, env=env | {"FIDELITE_DB": db}, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"member {ref} enrolled in program shop (id 1)\n"
    assert done.stderr == ""
