"""Running the installed ``fidelite`` script as a user does, for the CLI tests."""

from __future__ import annotations

import gc
import json
import os
import shutil
import subprocess
import sys
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sqlalchemy import text

from fidelite.store import Database
from tests.support import waits_on_a_row_lock

FIDELITE = shutil.which("fidelite") or str(Path(sys.executable).parent / "fidelite")

# A program with tiers in Paris, and purchases making ann silver and leaving bob bronze.
TIER_PROGRAM = """\
id: shop
name: Shop
time_zone: Europe/Paris
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
tiers:
  grace_months: 1
  levels:
    - {id: bronze, name: Bronze, threshold: 0}
    - {id: silver, name: Silver, threshold: 100}
    - {id: gold, name: Gold, threshold: 500}
"""
TIER_EVENTS = """\
event_id,type,member,at,amount
p1,purchase,ann,2026-01-10T10:00:00+01:00,120
p2,purchase,bob,2026-01-10T10:00:00+01:00,20
"""


def fidelite(
    *args: str | Path,
    db: str | None = None,
    ok: bool = True,
    before: Callable[[], None] | None = None,
    separate: bool = False,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``fidelite args`` (``FIDELITE_DB`` = ``db``, ``input`` on its standard input);
    with ``ok``, assert it succeeded.

    The command runs in this process through Click's test runner (the same ``app`` the
    script starts, with every command registered), which spares a Python start-up and
    the imports per call: the CLI suite spent most of its time there. ``separate`` runs
    the installed script in a process of its own, as a user does: for runs started
    from threads (the runner swaps ``sys.stdout``), for what only a process shows (its
    exit on a signal, a resource limit) and for the tests of the script itself.
    ``before`` runs in the child before the script starts (e.g. to set a resource limit)
    and implies ``separate``.
    """
    if separate or before is not None:
        proc = _in_a_process(args, db, before, input)
    else:
        proc = _in_this_process(args, db, input)
    if ok:
        assert proc.returncode == 0, proc.stderr + proc.stdout
    return proc


def _in_a_process(
    args: Sequence[str | Path],
    db: str | None,
    before: Callable[[], None] | None,
    input: str | None,
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "FIDELITE_DB"} | {"COLUMNS": "200"}
    if db is not None:
        env["FIDELITE_DB"] = db
    return subprocess.run([FIDELITE, *map(str, args)], capture_output=True, text=True, env=env,
                          timeout=300, preexec_fn=before, input=input)  # fmt: skip


def _in_this_process(
    args: Sequence[str | Path], db: str | None, input: str | None
) -> subprocess.CompletedProcess[str]:
    from typer.testing import CliRunner

    from fidelite.cli import main as cli_main
    from fidelite.cli import output

    cli_main._register()
    # The script's consoles take their width from COLUMNS when created, once per
    # process; here they may have been created by an earlier test at another width.
    for console in (output.console, output.err_console):
        console.width = 200
    runner = CliRunner(env={"FIDELITE_DB": db, "COLUMNS": "200"})
    result = runner.invoke(cli_main.app, [str(arg) for arg in args], input=input)
    # A process's exit closes its database connections (and SQLite then removes its
    # -wal and -shm files); here the command's engine is closed when collected.
    gc.collect()
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        # What the script would print before exiting 1: the traceback, on stderr.
        stderr += "".join(traceback.format_exception(result.exception))
    return subprocess.CompletedProcess(
        [FIDELITE, *map(str, args)], result.exit_code, result.stdout, stderr
    )


def as_json(proc: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(proc.stdout)


def at_once_while_held(database: Database, member: str, *runs: Sequence[str | Path]) -> list[Any]:
    """Start the runs (``fidelite args --format json``) at once while another session
    holds ``member`` (PostgreSQL); let go once each waits on a lock. Their answers, the
    first run's (``"replayed": false``) first."""
    holder = database.writer.connect()
    holder.execute(text("SELECT id FROM members WHERE ref = :m FOR UPDATE"), {"m": member})
    with ThreadPoolExecutor(max_workers=len(runs)) as pool:
        try:
            started = [pool.submit(fidelite, *args, "-f", "json", db=database.url, separate=True)
                       for args in runs]  # fmt: skip
            assert waits_on_a_row_lock(holder, len(runs))
        finally:
            holder.rollback()
            holder.close()
        answers = [as_json(run.result(timeout=60)) for run in started]
    return sorted(answers, key=lambda answer: bool(answer["replayed"]))
