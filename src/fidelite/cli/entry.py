"""The ``fidelite`` console script: loads the command line, then runs it.

Kept apart from :mod:`fidelite.cli.main` so that a Ctrl-C while the command line is
still loading (Typer, Rich and the command modules take a moment to import on a busy
machine), or during a command without a handler of its own, ends the command with
status 130 and one line instead of a traceback. A command that writes in steps (an
import, the webhook worker) installs its own handler once it starts and says what it
finished; any other write is one database transaction, rolled back when interrupted.

Output whose reader has gone (``fidelite metrics rfm -f csv | head -1``) ends the
command quietly with status 141, as ``yes | head`` or ``cat big | head`` report
(128 + SIGPIPE), whatever the format: no message, no traceback. Click ended it with
status 1 and nothing on stderr, indistinguishable from a real error under ``set -o
pipefail``, and only when the output was too long to be written before ``head`` left.
"""

from __future__ import annotations

import errno
import os
import select
import stat
import sys

INTERRUPTED_STATUS = 130
"""Exit status of a command stopped by Ctrl-C (128 + SIGINT), as shells report it."""

CLOSED_OUTPUT_STATUS = 141
"""Exit status of a command whose standard output was closed by its reader (128 +
SIGPIPE), as shells report it for ``yes | head``."""


def main() -> None:
    """Console-script entry point: :func:`fidelite.cli.main.main`, Ctrl-C-safe, and quiet
    with status 141 when the reader of standard output has gone."""
    try:
        from fidelite.cli.main import main as run

        run()
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        raise SystemExit(INTERRUPTED_STATUS) from None
    except BrokenPipeError:
        if _reader_gone():
            quit_closed_output()
        raise
    except SystemExit as exc:
        # click ends a command whose write met EPIPE with status 1, having swapped
        # sys.stdout for a wrapper that swallows the error of later flushes
        if (
            exc.code == 1
            and _reader_gone()
            and type(sys.stdout).__name__.endswith("PacifyFlushWrapper")
        ):
            quit_closed_output()
        _flush_or_quit()
        raise
    _flush_or_quit()


def _flush_or_quit() -> None:
    """Flush standard output now, while a closed one can still end the command quietly
    (at interpreter exit Python would print 'Exception ignored ... BrokenPipeError' and
    exit with status 120)."""
    try:
        sys.stdout.flush()
    except OSError as exc:
        if exc.errno != errno.EPIPE:
            raise
        quit_closed_output()


def quit_closed_output() -> None:
    """Exit with :data:`CLOSED_OUTPUT_STATUS`, standard output pointed at the null device
    first so that nothing left in its buffer is flushed into the closed pipe at exit (the
    recipe of Python's signal module documentation)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.__stdout__.fileno() if sys.__stdout__ else 1)
    except OSError:
        pass
    raise SystemExit(CLOSED_OUTPUT_STATUS) from None


def _reader_gone() -> bool:
    """Whether standard output is a pipe or socket nobody reads any more (a pipe's
    writing end with no reader polls as an error)."""
    try:
        fd = sys.__stdout__.fileno() if sys.__stdout__ else 1
        mode = os.fstat(fd).st_mode
    except (OSError, ValueError):
        return False
    if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)):
        return False
    if not hasattr(select, "poll"):
        return True  # no way to ask: the EPIPE came from stdout, the usual case
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    return any(event & (select.POLLERR | select.POLLHUP) for _, event in poller.poll(0))
