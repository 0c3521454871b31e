"""Group commit: events sent at the same time by concurrent callers share one transaction.

An API server receives events one per request from many tills at once. Applied one per
transaction, each pays about twenty round trips to the database and a commit. Here each
caller's thread hands its event over and waits; one caller at a time *leads*: it takes
every event waiting (up to ``max_group``), applies them in arrival order with
:func:`~fidelite.processing.batch.process_events` (the bulk-import batch path) in one
transaction, gives every caller its own answer, then passes the lead to the first
caller that arrived meanwhile.

- **No added latency when idle**: nobody waits for a timer; a caller alone is a group
  of one. Groups grow only while a transaction is running, i.e. under load.
- **Same answers**: the batch path gives each event the result it would get alone
  (``tests/processing/test_batch.py``), business rejections included; a rejected event
  changes nothing and does not affect the others.
- **Failures stay with their caller**: if the group's transaction fails for another
  reason (a deadlock with another writer, a lost connection), every event of the group
  is applied again on its own transaction, so one caller's failure is never another's.
- **Durability**: a caller gets its answer only after the group's commit.
- **Along with the answer**: a caller may pass ``then``, called inside the transaction
  that applies its event, with the answer, to write something that must commit (or not)
  together with the event (the API stores the response of an ``Idempotency-Key`` so).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from fidelite.engine import Event
from fidelite.ledger import Rejected
from fidelite.processing.batch import Answer, process_events, process_one
from fidelite.processing.processor import EventProcessor, ProcessingError, Result

MAX_GROUP = 200
Then = Callable[[Connection, Answer], None]
"""Called with the event's answer inside the transaction that applies the event."""


@dataclass(eq=False)
class _Ticket:
    """One caller's event, and where its answer (or failure) is left for it."""

    event: Event
    then: Then | None = None
    ready: threading.Event = field(default_factory=threading.Event)
    answer: Answer | None = None
    error: BaseException | None = None


class GroupCommit:
    """Applies events from concurrent callers in shared transactions (thread-safe).

    Invariant: while ``_leading`` is false the queue is empty, so a caller that finds no
    leader is first in the queue and its own event is in the group it leads.
    """

    def __init__(self, processor: EventProcessor, max_group: int = MAX_GROUP) -> None:
        if max_group < 1:
            raise ValueError("max_group must be at least 1")
        self.processor = processor
        self.max_group = max_group
        self._lock = threading.Lock()
        self._queue: deque[_Ticket] = deque()
        self._leading = False
        self.groups = 0  # groups applied so far, and the events in them (events / groups
        self.events = 0  # is the mean group size: how much sharing the load allows)

    def process(self, event: Event, then: Then | None = None) -> Result:
        """Apply ``event``, as :meth:`EventProcessor.process` does (same result, same
        exceptions: :class:`ProcessingError` or ``Rejected`` for a refused event).

        ``then(conn, answer)`` runs in the transaction that applies the event, once
        that transaction's events are decided (again, in a new transaction, if the first
        one failed); if it raises, the transaction fails like any other failure.
        """
        ticket = _Ticket(event, then)
        with self._lock:
            self._queue.append(ticket)
            lead = not self._leading
            self._leading = True
        if not lead:
            ticket.ready.wait()
        if ticket.answer is None and ticket.error is None:  # we lead (first or handed over)
            self._lead()
        if ticket.error is not None:
            raise ticket.error
        if isinstance(ticket.answer, ProcessingError | Rejected):
            raise ticket.answer
        assert isinstance(ticket.answer, Result)
        return ticket.answer

    def _lead(self) -> None:
        """Apply the waiting events as one group, answer them, hand the lead on."""
        with self._lock:
            group = [self._queue.popleft() for _ in range(min(self.max_group, len(self._queue)))]
            self.groups += 1
            self.events += len(group)
        try:
            self._apply(group)
        finally:
            for ticket in group:  # interrupted (e.g. KeyboardInterrupt): fail, never hang
                if ticket.answer is None and ticket.error is None:
                    ticket.error = RuntimeError("the group was interrupted")
            with self._lock:
                successor = self._queue[0] if self._queue else None
                self._leading = successor is not None
            for ticket in group:
                ticket.ready.set()
            if successor is not None:
                successor.ready.set()  # unanswered: it leads the next group

    def _apply(self, group: list[_Ticket]) -> None:
        """Answer every ticket of ``group``: together if possible, else one by one."""
        try:
            with self.processor.db.write() as conn:
                answers = process_events(self.processor, conn, [t.event for t in group])
                for ticket, answer in zip(group, answers, strict=True):
                    if ticket.then is not None:
                        ticket.then(conn, answer)
        except Exception:  # e.g. a deadlock, or a duplicate recorded by another worker
            for ticket in group:
                self._apply_alone(ticket)
            return
        for ticket, answer in zip(group, answers, strict=True):
            ticket.answer = answer

    def _apply_alone(self, ticket: _Ticket) -> None:
        """The event on its own transaction: its own failure stays its own.

        Tried twice when the event's id was recorded meanwhile by another writer (the
        unique key refuses the second): the second try answers ``duplicate``.
        """
        for attempt in (1, 2):
            try:
                with self.processor.db.write() as conn:
                    answer = process_one(self.processor, conn, ticket.event)
                    if ticket.then is not None:
                        ticket.then(conn, answer)
            except IntegrityError as exc:
                if attempt == 2:
                    ticket.error = exc
                continue
            except Exception as exc:
                ticket.error = exc
                return
            ticket.answer = answer
            return
