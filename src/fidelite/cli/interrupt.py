"""Ctrl-C during a long command: finish the unit of work in progress, then stop.

A bulk import commits a chunk of rows at a time. Stopped by an exception in the middle
of a chunk, the command could not tell which rows are committed (the interrupt may
land after the commit, before the count). So the first Ctrl-C (SIGINT) only asks the
command to stop at its next check, between two chunks, where what is committed is
known exactly; a second Ctrl-C raises :class:`KeyboardInterrupt` at once (the chunk in
progress is rolled back), for a user who cannot wait for the chunk. Once nothing is
left to abort (every row committed, or the import stopped), the command
:meth:`~Interrupt.holds` Ctrl-C: it is noted, never raised, so the summary and the
rejects file are written whole.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from fidelite.cli.output import err_console

EXIT_INTERRUPTED = 130
"""The exit status of a command stopped by Ctrl-C (128 + SIGINT, as shells report it)."""


class Interrupt:
    """What Ctrl-C asked so far; calling it answers whether the command should stop."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.asked = False
        self.held: str | None = None  # the note a held Ctrl-C prints (None: not held)

    def __call__(self) -> bool:
        return self.asked

    def hold(self, note: str) -> None:
        """From now on Ctrl-C only sets the flag and prints ``note`` (what the command
        finishes first), never raises: there is nothing left a second Ctrl-C could abort,
        and raising would lose what is still to be written (the rejects file)."""
        self.held = note

    def handle(self, _signum: int, _frame: FrameType | None) -> None:
        """The SIGINT handler: a flag and a note, or :class:`KeyboardInterrupt` for a
        second Ctrl-C while not held."""
        if self.held is not None:
            self.asked = True
            err_console.print(f"Interrupted: {self.held}", highlight=False, soft_wrap=True)
            return
        if self.asked:
            raise KeyboardInterrupt
        self.asked = True
        err_console.print(f"Interrupted: stopping after {self.what} (Ctrl-C again to abort it)")


@contextmanager
def stop_on_interrupt(what: str) -> Iterator[Interrupt]:
    """While the block runs, Ctrl-C sets the flag of the returned :class:`Interrupt`;
    the note printed says what the command will finish first (``what``). The previous
    handler comes back afterwards. Where SIGINT is ignored (a background job of a
    non-interactive shell) or cannot be handled (not the main thread), nothing changes:
    the flag stays down."""
    interrupt = Interrupt(what)
    previous = signal.getsignal(signal.SIGINT)
    if previous is signal.SIG_IGN:
        yield interrupt
        return
    try:
        signal.signal(signal.SIGINT, interrupt.handle)
    except ValueError:  # not the main thread
        yield interrupt
        return
    try:
        yield interrupt
    finally:
        signal.signal(signal.SIGINT, previous)
