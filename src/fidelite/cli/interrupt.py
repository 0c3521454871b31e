"""Ctrl-C during a long command: finish the unit of work in progress, then stop.

A bulk import commits a chunk of rows at a time. Stopped by an exception in the middle
of a chunk, the command could not tell which rows are committed (the interrupt may
land after the commit, before the count). So the first Ctrl-C (SIGINT) only asks the
command to stop at its next check, between two chunks, where what is committed is
known exactly; a second Ctrl-C raises :class:`KeyboardInterrupt` at once (the chunk in
progress is rolled back), for a user who cannot wait for the chunk.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

from fidelite.cli.output import err_console

EXIT_INTERRUPTED = 130
"""The exit status of a command stopped by Ctrl-C (128 + SIGINT, as shells report it)."""


@contextmanager
def stop_on_interrupt(what: str) -> Iterator[Callable[[], bool]]:
    """While the block runs, Ctrl-C sets a flag the returned function reads; the note
    printed says what the command will finish first (``what``). The previous handler
    comes back afterwards. Where SIGINT is ignored (a background job of a
    non-interactive shell) or cannot be handled (not the main thread), nothing changes:
    the flag stays down."""
    asked = False

    def handler(_signum: int, _frame: FrameType | None) -> None:
        nonlocal asked
        if asked:
            raise KeyboardInterrupt
        asked = True
        err_console.print(f"Interrupted: stopping after {what} (Ctrl-C again to abort it)")

    previous = signal.getsignal(signal.SIGINT)
    if previous is signal.SIG_IGN:
        yield lambda: False
        return
    try:
        signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread
        yield lambda: False
        return
    try:
        yield lambda: asked
    finally:
        signal.signal(signal.SIGINT, previous)
