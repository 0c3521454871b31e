"""Processing events: the application service between the engine and the ledger.

Owns the tables the engine's inputs and outputs live in (processed events with their
trace, the points each event earned, per-member rule usage, rule budgets, member state
with tier, tier timeline, coupons, redemptions) and the code that, for one event,
assembles the engine's inputs, asks the engine for a decision, applies it through the
ledger and records it. The API and bulk import both go through
:class:`EventProcessor`, so an event gives the same result whichever way it arrives.

Idempotency: every ledger call carries a key derived from the event id, and an event
is recorded (primary key on program and event id) only after its postings; a retry
after a crash replays the postings (the ledger returns the first receipts) and then
records the event once.
"""

from fidelite.processing.processor import (
    EventProcessor,
    MemberChange,
    MemberProfile,
    Outcome,
    ProcessingError,
    Redemption,
    Result,
)

__all__ = [
    "EventProcessor",
    "MemberChange",
    "MemberProfile",
    "Outcome",
    "ProcessingError",
    "Redemption",
    "Result",
]
