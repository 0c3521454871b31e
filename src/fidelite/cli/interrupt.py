"""Ctrl-C or SIGTERM during a long command: finish the unit of work in progress, then stop.

A bulk import commits a chunk of rows at a time. Stopped by an exception in the middle
of a chunk, the command could not tell which rows are committed (the interrupt may
land after the commit, before the count). So the first Ctrl-C (SIGINT) or SIGTERM (what
a service manager, `kill` or a container's stop sends) only asks the command to stop at
its next check, between two chunks, where what is committed is known exactly; a second
one raises :class:`KeyboardInterrupt` at once (the chunk in progress is rolled back),
for a user who cannot wait for the chunk. Once nothing is left to abort (every row
committed, or the import stopped), the command :meth:`~Interrupt.hold` s them: they are
noted, never raised, so the summary and the rejects file are written whole.

The exit status of a stopped command is 128 + the number of the first signal (130 for
Ctrl-C, 143 for SIGTERM), as shells report a process those signals end.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from types import FrameType

from fidelite.cli.output import err_console

SIGNALS = (signal.SIGINT, signal.SIGTERM)
"""The signals a long command stops on: Ctrl-C, and what `kill` or a service manager sends."""


class Interrupt:
    """What Ctrl-C or SIGTERM asked so far; calling it answers whether the command
    should stop."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.signum: int | None = None  # the first signal received (None: none yet)
        self.held: str | None = None  # the note a held signal prints (None: not held)

    def __call__(self) -> bool:
        return self.signum is not None

    @property
    def exit_status(self) -> int:
        """128 + the first signal's number (130 for Ctrl-C, 143 for SIGTERM)."""
        return 128 + (self.signum if self.signum is not None else signal.SIGINT)

    def hold(self, note: str) -> None:
        """From now on a signal only sets the flag and prints ``note`` (what the command
        finishes first), never raises: there is nothing left a second signal could
        abort, and raising would lose what is still to be written (the rejects file)."""
        self.held = note

    def handle(self, signum: int, _frame: FrameType | None) -> None:
        """The SIGINT and SIGTERM handler: a flag and a note, or
        :class:`KeyboardInterrupt` for a second signal while not held."""
        first = self.signum is None
        if first:
            self.signum = signum
        if self.held is not None:
            err_console.print(f"Interrupted: {self.held}", highlight=False, soft_wrap=True)
            return
        if not first:
            raise KeyboardInterrupt
        by, again = ("", "Ctrl-C") if signum == signal.SIGINT else (" by SIGTERM", "SIGTERM")
        err_console.print(f"Interrupted{by}: stopping after {self.what} ({again} again to "
                          "abort it)")  # fmt: skip


@contextmanager
def stop_on_interrupt(what: str) -> Iterator[Interrupt]:
    """While the block runs, Ctrl-C and SIGTERM set the flag of the returned
    :class:`Interrupt`; the note printed says what the command will finish first
    (``what``). The previous handlers come back afterwards. A signal that is ignored
    (SIGINT in a background job of a non-interactive shell) stays ignored; where no
    handler can be set (not the main thread) nothing changes: the flag stays down."""
    interrupt = Interrupt(what)
    with ExitStack() as restore:
        for signum in SIGNALS:
            previous = signal.getsignal(signum)
            if previous is signal.SIG_IGN:
                continue
            try:
                signal.signal(signum, interrupt.handle)
            except ValueError:  # not the main thread
                break
            restore.callback(signal.signal, signum, previous)
        yield interrupt
