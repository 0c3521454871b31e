"""Tables written into a pipe or a file keep every value whole.

Rich takes 80 columns when stdout is not a terminal: an RFM table came out with both
customer ids cut to ``clien…`` (two customers impossible to tell apart) and amounts to
``12345…``. A terminal still gets a table fitted to its width, and ``COLUMNS`` is
obeyed when set, without cutting a value either.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.cli.support import FIDELITE

ROWS = (
    "customer_id,timestamp,amount\n"
    "client-with-a-long-reference-0001,2024-01-05,12345678.91\n"
    "client-with-a-long-reference-0002,2024-02-05,98765432.10\n"
)


def _run(tmp_path: Path, columns: str | None) -> str:
    tx = tmp_path / "tx.csv"
    tx.write_text(ROWS, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "FIDELITE_DB")}
    if columns is not None:
        env["COLUMNS"] = columns
    proc = subprocess.run(
        [FIDELITE, "metrics", "rfm", "--input", str(tx)],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_a_table_into_a_pipe_keeps_every_value_whole(tmp_path: Path) -> None:
    out = _run(tmp_path, None)
    for value in (
        "client-with-a-long-reference-0001",
        "client-with-a-long-reference-0002",
        "12345678.91",
        "98765432.1",
    ):
        assert value in out
    assert "…" not in out


def test_columns_when_set_is_obeyed(tmp_path: Path) -> None:
    out = _run(tmp_path, "80")
    assert max(len(line) for line in out.splitlines()) <= 80
    # fitted to 80 columns, yet no value cut (tests/cli/test_table_values_whole.py)
    assert "client-with-a-long-reference-0001" in out
    assert "…" not in out
