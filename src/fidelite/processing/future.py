"""Events dated in the future: refused where the clock is read, never by the engine.

A till whose date is mistyped (2030-01-01 for 2026-12-06) would otherwise be applied as
if it had happened: a 5,000 EUR purchase "in 2030" makes the member gold today and
takes their first-purchase bonus, and nothing later undoes it. So an event whose
``at`` is later than the time of processing plus the program's
``future_tolerance_minutes`` (:attr:`~fidelite.program.ProgramDefinition.
future_tolerance`) is refused with :data:`EVENT_IN_FUTURE` before anything is read or
written for it.

Where the check lives: the engine is a functional core with time as an input and no
clock of its own (DESIGN.md), so it never decides what "now" is. The processor reads
its clock (:class:`~fidelite.processing.processor.EventProcessor`'s ``clock``, by
default the machine's) and passes the time to :func:`event_in_future`, on the single
path and on the batch path (bulk import, ``POST /v1/events``, ``POST
/v1/events:batch``) alike, so the API and the import refuse the same events. The
check is a pure function of the program, the event and that time, so a test or a
benchmark replaying history gives the processor a fixed clock instead of widening the
tolerance.

Invariants: the refusal is decided before anything is read for the member or written
(it changes nothing); an event at exactly now + tolerance is accepted; an event id
recorded already answers as it did (duplicate or conflict) whatever its date, as for
``unknown_event_type``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from fidelite.engine import Event
from fidelite.program import ProgramDefinition

EVENT_IN_FUTURE = "event_in_future"
"""An event dated later than the time of processing plus the program's tolerance."""

Clock = Callable[[], datetime]
"""The time of processing: an aware datetime (UTC by default)."""


def system_clock() -> datetime:
    """The machine's time, in UTC."""
    return datetime.now(UTC)


def event_in_future(program: ProgramDefinition, event: Event, now: datetime) -> Refusal | None:
    """:data:`EVENT_IN_FUTURE` for ``event`` if it is dated after ``now`` plus the
    program's tolerance, naming its date, the time of processing and the tolerance;
    None otherwise (an event at exactly the limit is accepted)."""
    # A difference, not now + tolerance: that sum overflows for a clock in 9999 (a
    # replay of history up to the calendar's end), a difference of two dates never does.
    if event.at - now <= program.future_tolerance:
        return None
    minutes = program.future_tolerance_minutes
    at, processed = _utc(event.at), _utc(now)
    return Refusal(
        f"event {event.id!r} is dated {at}, later than the time of processing ({processed}) "
        f"plus the program's tolerance of {minutes} minute(s) (future_tolerance_minutes): "
        "an event is sent once it has happened; check the date (a typo, or a till's "
        "clock set ahead)",
        {"at": at, "processed_at": processed, "tolerance_minutes": minutes},
    )


@dataclass(frozen=True)
class Refusal:
    """What :func:`event_in_future` found: the message and the figures a client can act
    on; the processor raises it as a ``ProcessingError`` with :data:`EVENT_IN_FUTURE`
    (this module does not import the processor, which imports it)."""

    message: str
    detail: dict[str, object]


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
