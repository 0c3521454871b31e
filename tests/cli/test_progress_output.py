"""Progress bars go to stderr, and never with ``--format json`` or ``csv``: stdout holds
the command's output only, byte for byte, so a pipe or a file can read it."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
from pathlib import Path

from tests.cli.support import FIDELITE, TIER_EVENTS, TIER_PROGRAM, fidelite


def _shop(tmp_path: Path) -> tuple[Path, str]:
    program = tmp_path / "shop.yaml"
    program.write_text(TIER_PROGRAM, encoding="utf-8")
    db = f"sqlite:///{tmp_path / 'shop.db'}"
    fidelite("db", "upgrade", db=db)
    (tmp_path / "events.csv").write_text(TIER_EVENTS, encoding="utf-8")
    fidelite("import", "events", tmp_path / "events.csv", "-p", program, db=db)
    return program, db


def test_tier_review_csv_and_json_stdout_is_the_output_only(tmp_path: Path) -> None:
    program, db = _shop(tmp_path)
    review = ("tier", "review", "-p", program, "--as-of", "2027-01-11")
    as_csv = fidelite(*review, "-f", "csv", db=db)
    assert as_csv.stdout == (
        "member,at,kind,from,to,value,reason\n"
        "ann,2027-01-10T09:00:00+00:00,grace_started,silver,silver,0.0000,"
        "spend 0 below 100; grace until 2027-02-10\n"
    )
    assert as_csv.stderr == ""
    as_json = fidelite(*review, "-f", "json", db=db)
    assert json.loads(as_json.stdout)["changes"] == []  # the csv run applied it
    assert as_json.stderr == ""


def test_ledger_jobs_json_stdout_is_the_output_only(tmp_path: Path) -> None:
    program, db = _shop(tmp_path)
    for job in ("release-due", "expire"):
        done = fidelite("ledger", job, "-p", program, "--as-of", "2026-01-11", "-f", "json",
                        db=db)  # fmt: skip
        assert json.loads(done.stdout)["points"] == {}, job
        assert done.stderr == "", job


def _on_a_terminal(*args: str | Path, db: str) -> tuple[str, str]:
    """Run ``fidelite args`` with stdout on a terminal (a pseudo-terminal) and stderr a
    pipe, as a user who sends errors to a log does; what each received."""
    leader, follower = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k != "FIDELITE_DB"}
    env |= {"FIDELITE_DB": db, "COLUMNS": "200", "TERM": "xterm", "NO_COLOR": "1"}
    with subprocess.Popen([FIDELITE, *map(str, args)], stdout=follower, stderr=subprocess.PIPE,
                          env=env) as proc:  # fmt: skip
        os.close(follower)
        received = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the terminal closed with the process
                break
            if not chunk:
                break
            received += chunk
        stderr = proc.stderr.read() if proc.stderr else b""
    os.close(leader)
    assert proc.returncode == 0, stderr
    return received.decode(), stderr.decode()


def test_on_a_terminal_the_progress_bar_is_not_drawn_on_stdout(tmp_path: Path) -> None:
    program, db = _shop(tmp_path)
    stdout, _ = _on_a_terminal("tier", "review", "-p", program, "--as-of", "2026-06-01", db=db)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", stdout)  # the styles (bold) only
    assert text == "0 tier change(s) for 0 member(s) due by 2026-05-31T22:00:00+00:00\r\n"
