"""Output whose reader has gone ends the command quietly with status 141.

``fidelite metrics rfm -f csv | head -1`` exited 1 with nothing on stderr, like a real
error under ``set -o pipefail``, for csv and table output (json exited 0). Now every
format ends as ``yes | head`` does: status 141 (128 + SIGPIPE), nothing more on stderr
than a complete run prints there (csv's ``#`` lines), no traceback and no 'Exception
ignored' at interpreter exit. The pipe's reading end is closed before the command
starts, so every write meets a closed pipe, whatever the machine's speed.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.cli.support import FIDELITE, fidelite

TX = "customer_id,timestamp,amount\n" + "".join(
    f"c{i},2024-0{1 + i % 9}-1{i % 10},{10 + i}.5\n" for i in range(40)
)


def _env(db: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "FIDELITE_DB")}
    return env | ({"FIDELITE_DB": db} if db else {})


def _into_closed_pipe(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    read, write = os.pipe()
    os.close(read)
    try:
        return subprocess.run([FIDELITE, *args], stdout=write, stderr=subprocess.PIPE,
                              text=True, env=env, timeout=300, check=False)  # fmt: skip
    finally:
        os.close(write)


def _complete(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([FIDELITE, *args], capture_output=True, text=True, env=env,
                          timeout=300, check=False)  # fmt: skip


@pytest.mark.parametrize("fmt", ["csv", "json", "table"])
def test_a_metric_into_a_closed_pipe_ends_with_141_and_says_nothing(
    tmp_path: Path, fmt: str
) -> None:
    tx = tmp_path / "tx.csv"
    tx.write_text(TX, encoding="utf-8")
    args = ["metrics", "rfm", "--input", str(tx), "--format", fmt]
    whole = _complete(args, _env())
    assert whole.returncode == 0, whole.stderr
    assert "c39" in whole.stdout
    cut = _into_closed_pipe(args, _env())
    assert cut.returncode == 141
    assert cut.stderr == whole.stderr  # csv's definition lines, nothing else
    assert ("# metric: rfm" in cut.stderr) is (fmt == "csv")


@pytest.mark.parametrize("fmt", ["csv", "json", "table"])
def test_ledger_history_into_a_closed_pipe_ends_with_141(tmp_path: Path, fmt: str) -> None:
    db = f"sqlite:///{tmp_path / 'shop.db'}"
    fidelite("db", "upgrade", db=db)
    fidelite("ledger", "open", "shop", db=db)
    fidelite("member", "add", "ann", "-p", "shop", db=db)
    fidelite("ledger", "earn", "ann", "5", "-k", "k1", "-p", "shop", db=db)
    cut = _into_closed_pipe(["ledger", "history", "ann", "-p", "shop", "-f", fmt], _env(db))
    assert (cut.returncode, cut.stderr) == (141, "")
    # nothing was written by reading
    rows = fidelite("ledger", "history", "ann", "-p", "shop", "-f", "json", db=db).stdout
    assert '"kind": "earn"' in rows and rows.count('"transaction_id"') == 1


def test_a_command_whose_output_is_read_exits_0(tmp_path: Path) -> None:
    tx = tmp_path / "tx.csv"
    tx.write_text(TX, encoding="utf-8")
    whole = _complete(["metrics", "rfm", "--input", str(tx), "-f", "csv"], _env())
    assert (whole.returncode, whole.stdout.count("\n")) == (0, 41)
