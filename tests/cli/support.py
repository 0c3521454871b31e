"""Running the installed ``fidelite`` script as a user does, for the CLI tests."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

FIDELITE = shutil.which("fidelite") or str(Path(sys.executable).parent / "fidelite")


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
