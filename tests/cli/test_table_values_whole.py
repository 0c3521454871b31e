"""A table at a terminal never cuts a number, a date or an id.

Rich fitted tables to the terminal by cutting values: at 100 columns ``metrics mrr``
showed ``19…`` for 190.0, at 120 ``190…`` (1900? 190.0?), ``ledger history`` cut dates
to ``2026-…``, and at 40 columns the table was empty. Now a table fits by wrapping its
headers at ``_`` and its free text at spaces only; when even that cannot fit, each row is
a block of ``column: value`` lines. A ``TERM=dumb`` terminal gets its real width.
"""

from __future__ import annotations

import fcntl
import io
import os
import pty
import struct
import subprocess
import termios
from pathlib import Path

import pytest

from fidelite.cli import output
from fidelite.cli.output import OutputFormat, print_rows
from tests.cli.support import FIDELITE

ROWS = [
    {"period": "2025-01", "start": "2025-01-01", "customers_end": 6, "new_mrr": 190.0,
     "ending_mrr": 1900.0, "gross_mrr_churn_rate": 2.857142857142857,
     "occurred_at": "2026-12-01T00:00:00+01:00",
     "reason": "pending points released after the return window"},
    {"period": "2025-02", "start": "2025-02-01", "customers_end": 13, "new_mrr": 1000.0,
     "ending_mrr": 100.0, "gross_mrr_churn_rate": None,
     "occurred_at": "2026-12-02T00:00:00+01:00", "reason": "outage"},
]  # fmt: skip
VALUES = ["2025-01", "2025-01-01", "190.0", "1900.0", "2.857142857142857", "1000.0",
          "100.0", "2026-12-01T00:00:00+01:00", "2026-12-02T00:00:00+01:00", "outage"]  # fmt: skip


def _render(width: int, monkeypatch: pytest.MonkeyPatch) -> str:
    buffer = io.StringIO()
    monkeypatch.setenv("COLUMNS", str(width))
    monkeypatch.setattr(output.console, "_file", buffer)
    monkeypatch.setattr(output.console, "_width", width)
    print_rows(ROWS, OutputFormat.table, title="mrr")
    return buffer.getvalue()


def _tokens(text: str) -> set[str]:
    return {t.strip("│┃") for t in text.split()}


@pytest.mark.parametrize("width", [40, 80, 100, 120, 200])
def test_every_value_is_whole_at_any_width(width: int, monkeypatch: pytest.MonkeyPatch) -> None:
    out = _render(width, monkeypatch)
    assert "…" not in out
    assert set(VALUES) <= _tokens(out), out
    assert {"pending", "points", "released", "after", "the", "return", "window"} <= _tokens(out)


def test_too_narrow_for_a_table_each_row_is_a_block(monkeypatch: pytest.MonkeyPatch) -> None:
    out = _render(40, monkeypatch)
    lines = out.splitlines()
    assert lines[0] == "mrr"
    assert "new_mrr: 190.0" in lines
    assert "gross_mrr_churn_rate: 2.857142857142857" in lines
    assert "gross_mrr_churn_rate: " in lines  # the second row's empty value
    assert lines.count("") == 1


def test_wide_enough_it_is_a_table(monkeypatch: pytest.MonkeyPatch) -> None:
    out = _render(200, monkeypatch)
    assert "┏" in out and max(len(line) for line in out.splitlines()) <= 200


def test_term_dumb_gets_the_terminals_width(tmp_path: Path) -> None:
    tx = tmp_path / "tx.csv"
    tx.write_text("customer_id,timestamp,amount\nclient-with-a-long-reference-0001,"
                  "2024-01-05,12345678.91\n", encoding="utf-8")  # fmt: skip
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 160, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    proc = subprocess.Popen([FIDELITE, "metrics", "rfm", "--input", str(tx)], stdout=follower,
                            stderr=subprocess.DEVNULL, env=env | {"TERM": "dumb"})  # fmt: skip
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    assert proc.wait(timeout=300) == 0
    os.close(leader)
    out = b"".join(chunks).decode()
    widest = max(len(line) for line in out.splitlines())
    assert 80 < widest <= 160, out
    assert "┏" in out and "client-with-a-long-reference-0001" in out
