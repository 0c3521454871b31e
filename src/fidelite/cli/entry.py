"""The ``fidelite`` console script: loads the command line, then runs it.

Kept apart from :mod:`fidelite.cli.main` so that a Ctrl-C while the command line is
still loading (Typer, Rich and the command modules take a moment to import on a busy
machine), or during a command without a handler of its own, ends the command with
status 130 and one line instead of a traceback. A command that writes in steps (an
import, the webhook worker) installs its own handler once it starts and says what it
finished; any other write is one database transaction, rolled back when interrupted.
"""

from __future__ import annotations

import sys

INTERRUPTED_STATUS = 130
"""Exit status of a command stopped by Ctrl-C (128 + SIGINT), as shells report it."""


def main() -> None:
    """Console-script entry point: :func:`fidelite.cli.main.main`, Ctrl-C-safe."""
    try:
        from fidelite.cli.main import main as run

        run()
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        raise SystemExit(INTERRUPTED_STATUS) from None
