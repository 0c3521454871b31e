"""Group commit: items sent at the same time by concurrent callers share one transaction.

An API server receives events one per request from many tills at once. Applied one per
transaction, each pays about twenty round trips to the database and a commit. Here
callers hand their item to a :class:`GroupCommit` and wait for its answer (a blocking
call, or a future an ``asyncio`` handler awaits); one writer thread takes every item
waiting (up to ``max_group``), applies them in arrival order with one ``apply(conn,
items)`` call in one transaction, and answers every caller after the commit.

- **No added latency when idle**: nobody waits for a timer; an item alone is a group of
  one. Groups grow only while a transaction is running, i.e. under load.
- **Failures stay with their caller**: if the group's transaction fails (a deadlock with
  another writer, a lost connection, a row the database refuses, an exception from
  ``apply``), every item of the group is applied again on a transaction of its own
  (``apply(conn, [item])``), so one caller's failure is never another's. An item whose
  own transaction meets a unique-key conflict (its key was recorded meanwhile by another
  writer) is tried once more: the second try sees the first writer's row.
- **Durability**: a caller gets its answer only after the commit of the transaction
  that applied its item.
- **One writer per instance**: groups of one instance never overlap, so they need no
  locks between themselves; several instances (server processes) still serialise on
  the database's own locks.

:class:`EventGroupCommit` is the instance for engine events: ``apply`` is the
bulk-import batch path (:func:`~fidelite.processing.batch.process_events`), which gives
each event the result it would get alone, business rejections included.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from fidelite.engine import Event
from fidelite.ledger import Rejected
from fidelite.processing.batch import Answer, process_events
from fidelite.processing.processor import EventProcessor, ProcessingError, Result
from fidelite.store import Database

MAX_GROUP = 200
log = logging.getLogger("fidelite.processing")
T = TypeVar("T")
R = TypeVar("R")
Apply = Callable[[Connection, Sequence[T]], list[R]]
"""Applies items inside the given transaction; one answer per item, in order."""


@dataclass(eq=False)
class _Ticket(Generic[T, R]):
    """An item, where its caller waits (a thread's future or an event loop's), and its
    answer or failure until they are handed over."""

    item: T
    future: Future[R] | None = None
    waiter: asyncio.Future[R] | None = None
    answer: R | None = None
    error: BaseException | None = None
    answered: bool = False

    def settle(self, answer: R | None, error: BaseException | None = None) -> None:
        self.answer, self.error, self.answered = answer, error, True


class GroupCommit(Generic[T, R]):
    """Applies items from concurrent callers in shared transactions (thread-safe).

    The writer thread starts with the first item (so a server process forked after
    building its application starts its own) and stops with :meth:`close`. Answers are
    handed over once per group: to each waiting thread, and to each event loop in one
    call for all of its callers (one wake-up of the loop per group, not per item).
    """

    def __init__(
        self,
        db: Database,
        apply: Apply[T, R],
        max_group: int = MAX_GROUP,
        *,
        after_commit: Callable[[int], None] | None = None,
    ) -> None:
        """``after_commit(n)``, if given, is called on the writer thread after each commit
        with the number of items it applied (e.g. to refresh statistics as tables grow);
        what it raises is logged, never given to a caller."""
        if max_group < 1:
            raise ValueError("max_group must be at least 1")
        self.db = db
        self.apply = apply
        self.max_group = max_group
        self.after_commit = after_commit
        self._ready = threading.Condition()
        self._queue: deque[_Ticket[T, R]] = deque()
        self._writer: threading.Thread | None = None
        self._closed = False
        self.groups = 0  # groups applied so far, and the items in them (items / groups
        self.items = 0  # is the mean group size: how much sharing the load allows)

    def submit(self, item: T) -> Future[R]:
        """Queue ``item``; the future holds its answer (or the exception that failed it)
        once the transaction that applied it has committed."""
        future: Future[R] = Future()
        self._enqueue(_Ticket(item, future=future))
        return future

    async def answer(self, item: T) -> R:
        """Apply ``item`` and return its answer, from a coroutine (raises what failed it).
        Cancelling the caller does not withdraw the item: it is applied all the same."""
        waiter: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._enqueue(_Ticket(item, waiter=waiter))
        return await waiter

    def run(self, item: T) -> R:
        """Apply ``item`` and wait for its answer (raises what failed it)."""
        return self.submit(item).result()

    def close(self) -> None:
        """Answer what is queued, then stop the writer thread."""
        with self._ready:
            self._closed = True
            self._ready.notify()
            writer = self._writer
        if writer is not None:
            writer.join()

    def _enqueue(self, ticket: _Ticket[T, R]) -> None:
        with self._ready:
            if self._closed:
                raise RuntimeError("this group commit is closed")
            self._queue.append(ticket)
            if self._writer is None or not self._writer.is_alive():
                self._writer = threading.Thread(
                    target=self._write_forever, name="fidelite-group-commit", daemon=True
                )
                self._writer.start()
            self._ready.notify()

    def _write_forever(self) -> None:
        while True:
            with self._ready:
                while not self._queue and not self._closed:
                    self._ready.wait()
                if not self._queue:  # closed and drained
                    return
                count = min(self.max_group, len(self._queue))
                group = [self._queue.popleft() for _ in range(count)]
                self.groups += 1
                self.items += len(group)
            try:
                self._answer(group)
            except BaseException as exc:  # interrupted: fail what is unanswered, never hang
                for ticket in group:
                    if not ticket.answered:
                        ticket.settle(None, exc)
                raise
            finally:
                _hand_over(group)

    def _answer(self, group: list[_Ticket[T, R]]) -> None:
        """Answer every ticket of ``group``: together if possible, else one by one."""
        try:
            with self.db.write() as conn:
                answers = self.apply(conn, [t.item for t in group])
                if len(answers) != len(group):
                    raise RuntimeError("apply must answer every item")
        except Exception:  # e.g. a deadlock, or a key recorded by another writer
            for ticket in group:
                self._answer_alone(ticket)
            return
        for ticket, answer in zip(group, answers, strict=True):
            ticket.settle(answer)
        self._committed(len(group))

    def _answer_alone(self, ticket: _Ticket[T, R]) -> None:
        """The item on its own transaction: its own failure stays its own."""
        for attempt in (1, 2):
            try:
                with self.db.write() as conn:
                    (answer,) = self.apply(conn, [ticket.item])
            except IntegrityError as exc:
                if attempt == 2:
                    ticket.settle(None, exc)
                continue
            except Exception as exc:
                ticket.settle(None, exc)
                return
            ticket.settle(answer)
            self._committed(1)
            return

    def _committed(self, items: int) -> None:
        if self.after_commit is None:
            return
        try:
            self.after_commit(items)
        except Exception:  # housekeeping: the items are committed and answered already
            log.exception("after-commit step failed")


def _hand_over(group: list[_Ticket[T, R]]) -> None:
    """Give every ticket its answer: threads through their futures, each event loop in
    one call for all its tickets."""
    loops: dict[asyncio.AbstractEventLoop, list[_Ticket[T, R]]] = {}
    for ticket in group:
        if ticket.future is not None:
            if ticket.error is not None:
                ticket.future.set_exception(ticket.error)
            else:
                ticket.future.set_result(ticket.answer)  # type: ignore[arg-type]
        elif ticket.waiter is not None:
            loops.setdefault(ticket.waiter.get_loop(), []).append(ticket)
    for loop, tickets in loops.items():
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
            loop.call_soon_threadsafe(_wake, tickets)


def _wake(tickets: list[_Ticket[Any, Any]]) -> None:
    """On the event loop: settle the awaiting futures (a cancelled caller is gone)."""
    for ticket in tickets:
        waiter = ticket.waiter
        if waiter is None or waiter.done():
            continue
        if ticket.error is not None:
            waiter.set_exception(ticket.error)
        else:
            waiter.set_result(ticket.answer)


Then = Callable[[Connection, Answer], None]
"""Called with the event's answer inside the transaction that applies the event."""


class EventGroupCommit(GroupCommit[tuple[Event, Then | None], Answer]):
    """Engine events from concurrent callers, applied through the batch path.

    ``then(conn, answer)``, given with an event, runs in the transaction that applies it,
    once that transaction's events are decided: to write something that must commit (or
    not) together with the event. If it raises, the transaction fails like any other
    failure (and the event is applied again alone).
    """

    def __init__(self, processor: EventProcessor, max_group: int = MAX_GROUP) -> None:
        self.processor = processor
        super().__init__(processor.db, self._apply_events, max_group)

    def process(self, event: Event, then: Then | None = None) -> Result:
        """Apply ``event``, as :meth:`EventProcessor.process` does (same result, same
        exceptions: :class:`ProcessingError` or ``Rejected`` for a refused event)."""
        answer = self.run((event, then))
        if isinstance(answer, ProcessingError | Rejected):
            raise answer
        return answer

    def _apply_events(
        self, conn: Connection, items: Sequence[tuple[Event, Then | None]]
    ) -> list[Answer]:
        events = [event for event, _ in items]  # a failed group is redone: no savepoint
        answers = process_events(self.processor, conn, events, savepoint=False)
        for (_, then), answer in zip(items, answers, strict=True):
            if then is not None:
                then(conn, answer)
        return answers
