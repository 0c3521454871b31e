"""Benchmark: how long a ``fidelite`` command takes to start, against named baselines.

Run:  .venv/bin/python bench/cli.py [--runs 5]

Each line starts a new Python process, as a shell does, and reports the median and the
fastest of ``--runs`` runs (they alternate, so a busy moment hits every line alike):

- baseline "python -c pass": the interpreter alone;
- baseline "every command registered": ``fidelite --help``, which imports every
  command's module (the analytics, the CLV models, the server) to list them all;
- ``fidelite --version``, ``fidelite ledger history`` of a member with no moves yet in
  a new database (a till operator's command), ``fidelite metrics --help``.

The ``fidelite`` timed is the one next to the Python running the bench (the checkout's
virtual environment), not another one found first on ``PATH``. Every command must
succeed: one that fails ends the bench with its output, rather than timing an error.

``fidelite`` imports only the module of the command it runs (``fidelite.cli.main``),
so a ledger command should cost a fraction of the "every command" line. Ratios to both
baselines are printed.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import machine  # bench/machine.py: how fast this machine is today
from options import fidelite_command, positive_int

FIDELITE = fidelite_command()


def lines(db: str) -> dict[str, list[str]]:
    return {
        "baseline: python -c pass": [sys.executable, "-c", "pass"],
        "baseline: every command registered (--help)": [*FIDELITE, "--help"],
        "fidelite --version": [*FIDELITE, "--version"],
        "fidelite ledger history (no moves yet)": [
            *FIDELITE, "ledger", "history", "nobody", "-p", "cafe", "--db", db,
        ],
        "fidelite metrics --help": [*FIDELITE, "metrics", "--help"],
    }  # fmt: skip


def run(command: list[str]) -> None:
    """Run ``command``; end the bench with its output if it fails."""
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(
            f"cli bench: {' '.join(command)} failed with exit code {done.returncode}:\n"
            f"{done.stdout}{done.stderr}"
        )


def prepare(db: str) -> None:
    """A new database with program ``cafe`` and member ``nobody`` (no moves yet)."""
    run([*FIDELITE, "db", "upgrade", "--db", db])
    run([*FIDELITE, "ledger", "open", "cafe", "--currency", "points", "--db", db])
    run([*FIDELITE, "member", "add", "nobody", "-p", "cafe", "--db", db])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=positive_int, default=5, help="runs of each command")
    args = parser.parse_args()
    print(machine.describe(None))
    with tempfile.TemporaryDirectory() as work:
        db = str(Path(work) / "bench.db")
        prepare(db)
        commands = lines(db)
        times: dict[str, list[float]] = {label: [] for label in commands}
        for _ in range(args.runs):
            for label, command in commands.items():
                began = time.perf_counter()
                run(command)
                times[label].append(time.perf_counter() - began)
    python = statistics.median(times["baseline: python -c pass"])
    everything = statistics.median(times["baseline: every command registered (--help)"])
    print(f"Command start-up ({args.runs} runs each, alternating)")
    for label, seconds in times.items():
        median = statistics.median(seconds)
        print(f"  {label:<45} median {median:5.2f} s  fastest {min(seconds):5.2f} s"
              f"  = {median / everything:4.2f} x every command, "
              f"{median / python:5.1f} x python")  # fmt: skip


if __name__ == "__main__":
    main()
