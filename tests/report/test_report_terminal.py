"""What fidelite report prints when its standard error is a file, not a terminal."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CLI = [sys.executable, "-c", "from fidelite.cli.main import main; main()"]
# wide lines, and no variable that would make rich treat the pipe as a terminal
ENV = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE")}
ENV["COLUMNS"] = "300"


def test_a_redirected_stderr_gets_the_error_and_no_spinner_line(tmp_path: Path) -> None:
    src = tmp_path / "tx.csv"
    src.write_text("customer_id,timestamp,amount\nA,yesterday,1\n")
    run = subprocess.run(
        [*CLI, "report", str(src), "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        check=False,
        env=ENV,
    )
    assert run.returncode == 1
    assert run.stdout == ""
    assert run.stderr == (
        f"error [bad_input] {src}, line 2, column 'timestamp': unparsable date (tried ISO "
        "8601 and common day/month/year layouts): 'yesterday'\n"
    )


def test_a_report_written_with_stderr_redirected_prints_only_where(tmp_path: Path) -> None:
    src = tmp_path / "tx.csv"
    src.write_text("customer_id,timestamp,amount\nA,2024-01-01,1\nA,2024-02-01,2\n")
    out = tmp_path / "out"
    run = subprocess.run(
        [*CLI, "report", str(src), "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
        env=ENV,
    )
    assert run.returncode == 0, run.stderr
    assert run.stderr == ""
    assert run.stdout == f"Report written: {out}/report.html and {out}/report.json\n"
