"""Events as recorded: what the store keeps of a processed event, read back.

An event leaves its row in ``processed_events`` (its fields, its decision trace), its
points in ``event_earnings`` (earning events) or its reversals in the ledger (refunds,
keys ``refund:<id>:<transaction>``), and the tier changes it caused in
``tier_changes``. Read back, they answer two questions:

- an event id sent again (:func:`settle_duplicates`): the client gets what the event
  got the first time (points per currency, ledger transactions, tier changes, the
  decision trace), or, if the event sent differs from the one recorded under that id
  in what the store keeps (member, type, time, amount, refunded purchase, coupon),
  ``event_id_conflict`` naming the differences (a member erased since the event was
  recorded is stored as its tombstone: recognised through the erasure's digest of the
  reference sent, :func:`unerased`, it is the same member, answered as a duplicate with
  nothing of the erased account's history, and a conflict does not tell its recorded
  values; any other sent reference
  differs from it, and the answer names the recorded member as erased, never by its
  tombstone, which would link the event and the reference sent to the anonymised
  account);
- why a past event earned what it did (:func:`read_event`, for ``GET /v1/events/{id}``
  and ``fidelite event show``): the event as recorded, its trace, its points and the
  refunds applied to it since (a purchase), or what it refunded (a refund).

A tier change an event caused is shown by one function, :func:`tier_change_entry`, in
the answer to the event, in the answer to its id sent again and in the event as
recorded: the same change reads the same in all three.

What the store does not keep of an event (its items, channel, store and attributes)
cannot be compared: a duplicate that differs only there is answered as a duplicate.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, overload

from sqlalchemy import Connection, select

from fidelite.engine import Event
from fidelite.engine.coupon import normalise
from fidelite.engine.event import REFUND
from fidelite.engine.tiers import ChangeKind, TierChange
from fidelite.ledger import Receipt, Rejected
from fidelite.processing.erased import TOMBSTONE_PREFIX, ErasedRef, erased_refs, tombstones
from fidelite.processing.processor import Outcome, ProcessingError, Result
from fidelite.processing.tables import earnings, events, tier_changes
from fidelite.store.tables import LedgerTransaction

CONFLICT = "event_id_conflict"
_ERASED = object()  # a recorded member that is a tombstone, as a conflict names it
ERASED_MARK = "erased_history"
"""The key :func:`unerased` adds (True) to a record it puts back to the reference sent:
the record is the erased member's history, not compared, and never told."""
_UNIT = Decimal("0.0001")  # the events.amount column keeps 4 decimal places
_REASON = 300  # the tier_changes.reason column's length: a longer reason is kept cut
_CHUNK = 500


@dataclass(frozen=True)
class Repeated:
    """An event id sent again: what the event got when it was first processed."""

    event_id: str
    member: str
    at: datetime  # UTC, as stored (tier changes' times too)
    points: dict[str, int]  # per currency: earned > 0, reversed by a refund < 0
    transactions: list[int]
    tier_changes: list[TierChange]
    trace: list[dict[str, Any]] | None  # the rules' decision trace; None for a refund

    @classmethod
    def of(cls, event: Event, result: Result) -> Repeated:
        """What ``event``, processed into ``result`` (its rows maybe not written yet), got."""
        decision = result.decision.as_dict()["trace"] if result.decision else None
        points = signed_points(result.receipts)
        changes = [replace(c, at=c.at.astimezone(UTC)) for c in result.tier_changes]
        return cls(event.id, event.member, event.at.astimezone(UTC), points,
                   [r.transaction_id for r in result.receipts], changes, decision)  # fmt: skip


@dataclass(frozen=True)
class AppliedRefund:
    """A refund recorded against a purchase: when, how much, the points it took back."""

    event_id: str
    at: datetime
    amount: Decimal
    points: dict[str, int]  # per currency, < 0


@dataclass(frozen=True)
class RecordedEvent:
    """A processed event as the store keeps it, with what it moved."""

    event_id: str
    member: str
    type: str
    at: datetime
    amount: Decimal | None
    refund_of: str | None
    coupon: str | None
    coupon_accepted: bool | None
    recorded_at: datetime
    trace: list[dict[str, Any]]  # the rules' trace; for a refund, its reversals
    points: dict[str, int]  # per currency: earned > 0, reversed by this refund < 0
    transactions: list[int]  # the ledger transactions it wrote, in order
    tier_changes: list[TierChange]
    # a purchase: the part refunded since, and the points refunds took back (> 0);
    # a refund: the amount it refunded and the points it took back (> 0)
    refunded_amount: Decimal = Decimal(0)
    reversed: dict[str, int] = field(default_factory=dict)
    refunds: list[AppliedRefund] = field(default_factory=list)

    @property
    def outcome(self) -> Outcome:
        """Always ``processed``: only processed events are recorded."""
        return Outcome.processed

    def as_dict(self) -> dict[str, Any]:
        """Every field by name, the outcome, tier changes and refunds as dicts (times and
        amounts left as objects, for the caller's encoder, but in the tier changes:
        :func:`tier_change_entry` gives them as every answer shows them)."""
        return {
            "event_id": self.event_id, "outcome": self.outcome.value, "type": self.type,
            "member": self.member, "at": self.at, "amount": self.amount,
            "refund_of": self.refund_of, "coupon": self.coupon,
            "coupon_accepted": self.coupon_accepted, "recorded_at": self.recorded_at,
            "points": dict(self.points), "transactions": list(self.transactions),
            "tier_changes": [tier_change_entry(c, self.event_id) for c in self.tier_changes],
            "trace": list(self.trace), "refunded_amount": self.refunded_amount,
            "reversed": dict(self.reversed),
            "refunds": [{"event_id": r.event_id, "at": r.at, "amount": r.amount,
                         "points": dict(r.points)} for r in self.refunds],
        }  # fmt: skip

    def repeated(self) -> Repeated:
        trace = None if self.type == REFUND else self.trace
        return Repeated(self.event_id, self.member, self.at, self.points, self.transactions,
                        self.tier_changes, trace)  # fmt: skip

    def kept(self) -> dict[str, Any]:
        """The fields an event sent again is compared on (see :func:`kept`)."""
        return {"member": self.member, "type": self.type, "at": self.at,
                "amount": _money(self.amount), "refund_of": self.refund_of,
                "coupon": normalise(self.coupon) if self.coupon else None}  # fmt: skip


def tier_change_entry(change: TierChange, event_id: str | None) -> dict[str, Any]:
    """A tier change ``event_id`` caused, as every answer shows it (JSON-ready): as the
    store keeps it and reads it back, so an event's answer, the answer to its id sent
    again and the event as recorded give the same entry, key for key, character for
    character.

    Keys as the member's tier timeline names them (``at``, ``kind``, ``from``, ``to``,
    ``value``, ``reason``, ``event_id``, ``until``): ``at`` in UTC written with ``Z``
    (as the API writes every time of its models), ``value`` with its four decimal
    places, ``reason`` cut to the 300 characters the store keeps, ``until`` none (an
    event's change is never a manual assignment)."""
    at = change.at.astimezone(UTC).isoformat().removesuffix("+00:00") + "Z"
    return {"at": at, "kind": change.kind.value, "from": change.from_tier,
            "to": change.to_tier, "value": str(change.value), "reason": change.reason[:_REASON],
            "event_id": event_id, "until": None}  # fmt: skip


def kept(event: Event) -> dict[str, Any]:
    """What the store keeps of ``event``, comparable with :meth:`RecordedEvent.kept`:
    the time as an instant, the amount to the 4 decimal places the store keeps, the
    coupon as a cashier's typing is read."""
    return {"member": event.member, "type": event.type, "at": event.at.astimezone(UTC),
            "amount": _money(event.amount), "refund_of": event.refund_of,
            "coupon": normalise(event.coupon) if event.coupon else None}  # fmt: skip


def conflict(
    sent: Event, first: dict[str, Any], erased: Collection[str] = ()
) -> ProcessingError | None:
    """``event_id_conflict`` if ``sent`` differs from what was recorded under its id
    (``first``, from :func:`kept`), naming each field that differs; None if it does not.

    A recorded member among ``erased`` (tombstones,
    :func:`~fidelite.processing.erased.tombstones`) is named ``(erased)``: the message
    never shows a tombstone (it would link the event id, and the reference sent, to the
    anonymised account). What is compared is unchanged. A record put back to the
    reference sent by :func:`unerased` (marked :data:`ERASED_MARK`) is the erased
    member's history: the message names the fields that differ and the values sent,
    never the values recorded (an amount, a time of the erased account's history told to
    whoever sends the reference)."""
    mine = kept(sent)
    names = [name for name, value in first.items()
             if name != ERASED_MARK and mine[name] != value]  # fmt: skip
    if not names:
        return None
    if first.get(ERASED_MARK):  # the erased member's event: its values are not told
        told = "; ".join(f"{n} {_shown(mine[n])} sent" for n in names) + (
            ", not as recorded for a member erased since"
        )
    else:
        recorded = {**first, "member": _ERASED} if first["member"] in erased else first
        told = "; ".join(f"{n} {_shown(recorded[n])} recorded, {_shown(mine[n])} sent"
                         for n in names)  # fmt: skip
    return ProcessingError(
        CONFLICT, f"event {sent.id!r} is recorded with other values ({told}): a new event "
        "needs a new id; to repeat the event, send it as it was first sent",
    )  # fmt: skip


def unerased(
    sent: Event, first: dict[str, Any], erased: Mapping[str, ErasedRef]
) -> dict[str, Any] | None:
    """``first`` (what is recorded under ``sent``'s id, from :func:`kept`) with its member
    put back to ``sent``'s reference, if the recorded member is the tombstone an erasure
    of that reference left (``erased``: from :func:`~fidelite.processing.erased.erased_refs`);
    None if it is not. The event was the erased member's: sent again, it is the same
    event, and nothing of it is written again (the tombstone stays). The record given
    back is marked (:data:`ERASED_MARK`): :func:`conflict` then never tells its values."""
    found = erased.get(sent.member)
    if found is None or first["member"] == sent.member or not found.holds(first["member"]):
        return None
    return {**first, "member": sent.member, ERASED_MARK: True}


def may_be_erased(sent: Event, recorded_member: str) -> bool:
    """Whether the member an event id is recorded for may be ``sent``'s reference erased
    since (a tombstone, other than the reference sent): only those need the erasure
    records read."""
    return recorded_member != sent.member and recorded_member.startswith(TOMBSTONE_PREFIX)


def signed_points(receipts: Sequence[Receipt]) -> dict[str, int]:
    """Points an event's ledger receipts moved per currency: earned > 0, reversed < 0."""
    out: dict[str, int] = {}
    for r in receipts:
        out[r.currency] = out.get(r.currency, 0) + (
            r.points if r.direction == "credit" else -r.points
        )
    return out


Settled = Result | Repeated | ProcessingError | Rejected
"""An event's answer once duplicates are settled: a processed result, what a repeated
event got the first time, or why the event was refused (``event_id_conflict`` too)."""


def settle_duplicates(
    conn: Connection,
    program_id: str,
    batch: Sequence[Event],
    answers: Sequence[Result | ProcessingError | Rejected],
) -> list[Settled]:
    """``answers`` (one per event of ``batch``) with each duplicate replaced by what the
    event got the first time (:class:`Repeated`), or by ``event_id_conflict`` if the
    event sent differs from the recorded one.

    An event first processed earlier in the same batch is answered from that result
    (its rows may not be written yet); any other is read from the store (one query per
    table, only when there are duplicates). An event recorded for a member erased since
    (the tombstone of the reference sent, :func:`unerased`) is answered as a duplicate
    too, naming the reference sent, but with nothing of the erased account's history:
    no points, transactions, tier changes or decision (its transaction ids, points and
    tiers, stored with the reference under an Idempotency-Key or shown to whoever sends
    the reference, would link it to its tombstone again); sent with other values, the
    conflict names the values sent only (:func:`conflict`); sent
    for another reference, it is ``event_id_conflict`` naming the recorded member as
    erased, not by its tombstone. The erasure records are read only if a recorded member
    is named like a tombstone.
    """
    if not any(isinstance(a, Result) and a.outcome is Outcome.duplicate for a in answers):
        return list(answers)
    earlier: dict[str, tuple[Event, Result]] = {}
    wanted: list[str] = []
    for event, answer in zip(batch, answers, strict=True):
        if isinstance(answer, Result) and answer.outcome is Outcome.processed:
            if answer.decision is not None:  # an earning event: its result says it all
                earlier.setdefault(event.id, (event, answer))
        elif isinstance(answer, Result) and event.id not in earlier:
            wanted.append(event.id)
    stored = read_events(conn, program_id, wanted) if wanted else {}
    tombstoned = {e.member for e in batch if e.id in stored
                  and may_be_erased(e, stored[e.id].member)}  # fmt: skip
    erased = erased_refs(conn, program_id, tombstoned) if tombstoned else {}
    hidden = tombstones(conn, program_id, {stored[e.id].member for e in batch if e.id in stored
                        and may_be_erased(e, stored[e.id].member)})  # fmt: skip
    settled: list[Settled] = []
    for event, answer in zip(batch, answers, strict=True):
        if not isinstance(answer, Result) or answer.outcome is not Outcome.duplicate:
            settled.append(answer)
        elif event.id in earlier:
            first_event, result = earlier[event.id]
            settled.append(conflict(event, kept(first_event)) or Repeated.of(first_event, result))
        elif event.id in stored:
            record = stored[event.id]
            restored = unerased(event, record.kept(), erased)
            first = restored or record.kept()
            repeated = record.repeated()
            if restored is not None:  # the erased member's event: nothing of its history
                repeated = Repeated(event.id, event.member, record.at, {}, [], [], None)
            settled.append(conflict(event, first, hidden) or repeated)
        else:  # not found (recorded events are never deleted): the bare duplicate
            settled.append(answer)
    return settled


def read_event(conn: Connection, program_id: str, event_id: str) -> RecordedEvent | None:
    """The event ``event_id`` as recorded, with the refunds applied to it (None: no such
    event in the program)."""
    found = read_events(conn, program_id, [event_id]).get(event_id)
    if found is None:
        return None
    rows = conn.execute(
        select(events.c.event_id, events.c.occurred_at, events.c.amount, events.c.trace)
        .where(events.c.program_id == program_id, events.c.member_ref == found.member,
               events.c.refund_of == event_id, events.c.type == REFUND)
        .order_by(events.c.occurred_at, events.c.recorded_at, events.c.event_id)
    ).all()  # fmt: skip
    refunds = [AppliedRefund(r.event_id, r.occurred_at, Decimal(r.amount).quantize(_UNIT),
                             _reversed_points(r.trace)) for r in rows]  # fmt: skip
    return replace(found, refunds=refunds)


def read_events(
    conn: Connection, program_id: str, ids: Collection[str]
) -> dict[str, RecordedEvent]:
    """The recorded events among ``ids``, by id (without their refunds)."""
    found: dict[str, RecordedEvent] = {}
    for part in _chunks(sorted(set(ids))):
        found.update(_read(conn, program_id, part))
    return found


def kept_fields(
    conn: Connection, program_id: str, ids: Collection[str]
) -> dict[str, dict[str, Any]]:
    """What the store keeps of each recorded event among ``ids`` (by id), as
    :func:`kept` gives it for an event sent: all :func:`conflict` needs, in one narrow
    query per 500 ids (no trace, points or tier changes), for a bulk re-run."""
    found: dict[str, dict[str, Any]] = {}
    for part in _chunks(sorted(set(ids))):
        for r in conn.execute(
            select(events.c.event_id, events.c.member_ref, events.c.type, events.c.occurred_at,
                   events.c.amount, events.c.refund_of, events.c.coupon)
            .where(events.c.program_id == program_id, events.c.event_id.in_(part))
        ):  # fmt: skip
            found[r.event_id] = {"member": r.member_ref, "type": r.type, "at": r.occurred_at,
                                 "amount": _money(r.amount), "refund_of": r.refund_of,
                                 "coupon": normalise(r.coupon) if r.coupon else None}  # fmt: skip
    return found


def _read(conn: Connection, program_id: str, ids: list[str]) -> dict[str, RecordedEvent]:
    rows = conn.execute(
        select(events).where(events.c.program_id == program_id, events.c.event_id.in_(ids))
    ).all()
    if not rows:
        return {}
    earned: dict[str, list[Any]] = {}
    for r in conn.execute(
        select(earnings)
        .where(earnings.c.program_id == program_id, earnings.c.event_id.in_(ids))
        .order_by(earnings.c.transaction_id)
    ):
        earned.setdefault(r.event_id, []).append(r)
    changes: dict[str, list[TierChange]] = {}
    for r in conn.execute(
        select(tier_changes)
        .where(tier_changes.c.program_id == program_id, tier_changes.c.event_id.in_(ids))
        .order_by(tier_changes.c.id)
    ):
        change = TierChange(r.at, ChangeKind(r.kind), r.from_tier, r.to_tier, Decimal(r.value),
                            r.reason)  # fmt: skip
        changes.setdefault(r.event_id, []).append(change)
    reversals = _refund_transactions(conn, program_id, [r for r in rows if r.type == REFUND])
    found: dict[str, RecordedEvent] = {}
    for r in rows:
        if r.type == REFUND:
            moved = reversals.get(r.event_id, [])
            points: dict[str, int] = {}
            for tx in moved:
                points[tx.currency] = points.get(tx.currency, 0) - int(tx.points)
            transactions = [int(tx.id) for tx in moved]
            # what it refunded, as its answer told it (its amount, its points < 0): its
            # refunded_amount 0 would read as if it had refunded nothing
            refunded = _money(r.amount or 0)
            taken_back = {currency: -p for currency, p in points.items() if p}
        else:
            mine = earned.get(r.event_id, [])
            points = {e.currency: int(e.points) for e in mine}
            transactions = [int(e.transaction_id) for e in mine]
            taken_back = {e.currency: int(e.reversed) for e in mine if e.reversed}
            refunded = _money(r.refunded_amount or 0)
        accepted = None if r.coupon_accepted is None else bool(r.coupon_accepted)
        found[r.event_id] = RecordedEvent(
            event_id=r.event_id, member=r.member_ref, type=r.type, at=r.occurred_at,
            amount=_money(r.amount), refund_of=r.refund_of,
            coupon=r.coupon, coupon_accepted=accepted, recorded_at=r.recorded_at,
            trace=_trace(r.type, r.trace), points=points, transactions=transactions,
            tier_changes=changes.get(r.event_id, []),
            refunded_amount=refunded, reversed=taken_back,
        )  # fmt: skip
    return found


def _refund_transactions(
    conn: Connection, program_id: str, refunds: list[Any]
) -> dict[str, list[Any]]:
    """The ledger transactions each refund wrote (one per reversed earn transaction,
    key ``refund:<refund id>:<earn transaction id>``, and one per earn transaction of a
    later event whose tier bonus it took back, ``tier-bonus:<refund id>:<transaction>``),
    in order."""
    keys = {f"{'tier-bonus' if 'tier_bonus_of' in line else 'refund'}:{r.event_id}:"
            f"{line['transaction_id']}": r.event_id
            for r in refunds for line in (r.trace or [])}  # fmt: skip
    if not keys:
        return {}
    tx = LedgerTransaction
    found: dict[str, list[Any]] = {}
    for part in _chunks(sorted(keys)):
        for row in conn.execute(
            select(tx.id, tx.idempotency_key, tx.currency, tx.points)
            .where(tx.program_id == program_id, tx.idempotency_key.in_(part))
            .order_by(tx.id)
        ):
            found.setdefault(keys[row.idempotency_key], []).append(row)
    return found


def _trace(event_type: str, trace: Any) -> list[dict[str, Any]]:
    """The recorded trace; a refund's reversal lines name their earn transaction by its
    integer id, as the event's ``transactions`` do (refunds recorded before said it as
    text, "6": read back as 6)."""
    lines = list(trace or [])
    if event_type != REFUND:
        return lines
    return [{**line, "transaction_id": int(line["transaction_id"])}
            if "transaction_id" in line else line for line in lines]  # fmt: skip


def _reversed_points(trace: Any) -> dict[str, int]:
    """A refund's points per currency (< 0), from its recorded reversals."""
    points: dict[str, int] = {}
    for line in trace or []:
        points[line["currency"]] = points.get(line["currency"], 0) - int(line["points"])
    return points


@overload
def _money(amount: None) -> None: ...
@overload
def _money(amount: Decimal | int) -> Decimal: ...
def _money(amount: Decimal | int | None) -> Decimal | None:
    """``amount`` to the 4 decimal places the store keeps (half away from zero, as
    PostgreSQL rounds), whatever the database gave back (SQLite: any scale)."""
    return None if amount is None else Decimal(amount).quantize(_UNIT, ROUND_HALF_UP)


def _shown(value: Any) -> str:
    if value is _ERASED:
        return "(erased)"
    if isinstance(value, datetime):
        return value.isoformat()
    return "none" if value is None else repr(str(value))


def _chunks(values: list[str]) -> list[list[str]]:
    return [values[i : i + _CHUNK] for i in range(0, len(values), _CHUNK)]
