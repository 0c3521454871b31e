"""Running the installed ``fidelite`` script as a user does, for the CLI tests."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
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
) -> subprocess.CompletedProcess[str]:
    """Run ``fidelite args`` (``FIDELITE_DB`` = ``db``); with ``ok``, assert it succeeded.
    ``before`` runs in the child before the script starts (e.g. to set a resource limit)."""
    env = {k: v for k, v in os.environ.items() if k != "FIDELITE_DB"} | {"COLUMNS": "200"}
    if db is not None:
        env["FIDELITE_DB"] = db
    proc = subprocess.run([FIDELITE, *map(str, args)], capture_output=True, text=True, env=env,
                          timeout=300, preexec_fn=before)  # fmt: skip
    if ok:
        assert proc.returncode == 0, proc.stderr + proc.stdout
    return proc


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
            started = [pool.submit(fidelite, *args, "-f", "json", db=database.url)
                       for args in runs]  # fmt: skip
            assert waits_on_a_row_lock(holder, len(runs))
        finally:
            holder.rollback()
            holder.close()
        answers = [as_json(run.result(timeout=60)) for run in started]
    return sorted(answers, key=lambda answer: bool(answer["replayed"]))
