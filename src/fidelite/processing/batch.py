"""Earning events processed a batch at a time: the fast path of bulk import.

The result is the one :meth:`EventProcessor.process` gives one event at a time, row for
row (``tests/processing/test_batch.py`` imports the same files both ways and compares
the databases), in three steps per batch instead of about twenty statements per event:

1. **read**: which events are recorded already; the members (on PostgreSQL: the
   batch's references no member holds yet locked, after the enrolled members' rows, so
   that two batches enrolling the same new members run one after the other; then the
   members, locked in id order), their states and rule counters, their purchases
   inside the tier window; the campaign budgets (locked after the members, as the
   single path does) and the coupons presented;
2. **decide** in memory, in file order: each event is evaluated against the member as
   the batch's earlier events left them (counters, purchases, tier, budgets, coupons),
   after the member's tier steps due by its date (re-qualification, end of a grace
   period or of a manual assignment: the daily job's, applied first as the single path
   applies them; the tier-window read reaches back to a due date earlier than the
   batch's first event, in one more read for those members).
   An event the ledger would refuse, or dated after the time of processing plus the
   program's tolerance (``event_in_future``, :mod:`fidelite.processing.future`: the
   processor's clock is read once per batch), is rejected alone and changes nothing;
3. **write**: enrol the new members, the ledger's :class:`~fidelite.ledger.batch.
   EarnBatch`, then events, earnings, counters, coupons, member states, tier changes
   and webhook events, one multi-row statement per table.

Refunds are not taken here (they read the lots of the purchase): the importer ends a
batch before each refund and applies the refund on its own. Whatever the fast path
does not expect (a member known to the ledger but not to the program, a key recorded
meanwhile by another writer) rolls the batch's savepoint back and the events are
processed one at a time instead, so this path can only be faster, never different.
(An amount finer than the 4 decimal places the database keeps never reaches it: the
event is refused at validation, see :mod:`fidelite.engine.event`.)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import islice
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from fidelite.engine import CouponStatus, Decision, Event, MemberState, ProgramState
from fidelite.engine.calendar import local_bounds
from fidelite.engine.coupon import normalise
from fidelite.engine.event import PURCHASE, REFUND
from fidelite.engine.member_id import member_id_problem
from fidelite.engine.tiers import (
    Activity,
    TierChange,
    TierState,
    due_at,
    last_step,
    on_activity,
    retired,
    review,
    window_start,
)
from fidelite.ledger import Rejected, member_erased
from fidelite.ledger.batch import AccountsRead, EarnBatch, IdsRead, enrol_many
from fidelite.ledger.earning import EarnOrder, earn_order
from fidelite.processing.erased import (
    ErasedRef,
    erased_history,
    erased_in_script,
    of_erased_history,
)
from fidelite.processing.processor import (
    MEMBER_ERASED,
    EventProcessor,
    Outcome,
    ProcessingError,
    Result,
    activity,
    coupon_status,
    in_future,
    initial_state_row,
    qualifies,
    recorded_steps,
    step_key,
    unknown_event_type,
)
from fidelite.processing.queries import queries, window_activity
from fidelite.processing.tables import earnings, events, member_states, rule_usage, tier_changes
from fidelite.program.tier import WindowKind
from fidelite.store.locking import (
    ConcurrentUpdateError,
    lock_member_refs,
    lock_refs,
    lock_shared,
)
from fidelite.store.script import Rows, Script
from fidelite.webhooks import events as hooks
from fidelite.webhooks.outbox import outbox_row
from fidelite.webhooks.tables import outbox

Answer = Result | ProcessingError | Rejected
"""What became of one event: its result, or the rejection that left it unrecorded."""

Finish = Callable[[Script, list[Answer]], None]
"""Adds to ``script`` what must be written with the events, given every event's answer
(see :func:`process_events`)."""

_IN_CHUNK = 500
_UNIT = Decimal("0.0001")  # the events.amount column keeps 4 decimal places
_UNIT_EXPONENT = -4
_UNITS_PER_MONEY = 10_000


class Fallback(Exception):
    """This batch cannot take the fast path: process its events one at a time."""


class _AssignmentEnds(Fallback):
    """Members' manual assignments end before their events at ``slots`` (ascending):
    those events alone go through the single path (raised before the first write)."""

    def __init__(self, slots: Sequence[int] = ()) -> None:
        super().__init__("a manual assignment ends before an event")
        self.slots = list(slots)


def can_batch(event: Event) -> bool:
    """Whether ``event`` may go in a batch (refunds are applied on their own)."""
    return event.type != REFUND


@dataclass
class _Finishing:
    """The caller's :data:`Finish`, and whether its statements have run yet."""

    add: Finish
    done: bool = False


def process_batch(
    processor: EventProcessor,
    conn: Connection,
    batch: Sequence[Event],
    *,
    savepoint: bool = True,
    finish: _Finishing | None = None,
) -> list[Answer]:
    """Apply ``batch`` (no refunds) inside the caller's transaction; one answer per event.

    Runs under a savepoint: on anything the fast path does not expect, the savepoint is
    rolled back and every event is processed one at a time instead. An event after the
    end of its member's manual assignment is processed alone, in its place, the events
    around it in the fast path (:class:`_AssignmentEnds`).

    ``savepoint=False`` is for a caller that can redo the whole transaction (the group
    commit applies a failed group's events again one by one): the fast path then saves
    the savepoint's two round trips. What makes it fall back before writing anything (a
    member known to the ledger but not to the program) still sends the events one at a
    time; a row refused while writing (a key recorded meanwhile by another writer)
    raises, and the caller must roll back.

    ``finish`` (from :func:`process_events`) adds the caller's statements to the write
    script and is marked done once they have run; a fallback leaves it not done.
    """
    if any(not can_batch(e) for e in batch):
        raise ValueError("refunds are processed one at a time, not in a batch")
    answers: list[Answer] = []
    while True:
        try:
            return answers + _fast_path(processor, conn, batch, savepoint, finish)
        except _AssignmentEnds as ends:
            # Only the events whose member's assignment ends go alone (its end plays
            # their whole history again), in their place: the events between them in the
            # fast path. The caller's statements go on their own.
            finish = None
            done = 0
            for slot in ends.slots:
                if slot > done:
                    answers += process_batch(processor, conn, batch[done:slot],
                                             savepoint=savepoint)  # fmt: skip
                answers.append(process_one(processor, conn, batch[slot]))
                done = slot + 1
            batch = batch[done:]
            if not batch:
                return answers


def _fast_path(
    processor: EventProcessor,
    conn: Connection,
    batch: Sequence[Event],
    savepoint: bool,
    finish: _Finishing | None,
) -> list[Answer]:
    """:func:`process_batch` on ``batch``; :class:`_AssignmentEnds` is raised, with
    nothing written, for the caller to split the batch."""
    if not savepoint:
        try:
            answers = _Batch(processor, conn, finish).run(batch)
        except _AssignmentEnds:
            raise
        except Fallback:  # raised before the first write: nothing to undo
            return [process_one(processor, conn, event) for event in batch]
        processor.remember_members(e.member for e in batch)
        return answers
    guard = conn.begin_nested()
    try:
        answers = _Batch(processor, conn, finish).run(batch)
    except _AssignmentEnds:
        guard.rollback()
        raise
    except (Fallback, IntegrityError, ConcurrentUpdateError):
        guard.rollback()  # the caller's statements too, if they went with the writes
        if finish is not None:
            finish.done = False
        return [process_one(processor, conn, event) for event in batch]
    except BaseException:
        guard.rollback()
        raise
    guard.commit()
    processor.remember_members(e.member for e in batch)
    return answers


def process_events(
    processor: EventProcessor,
    conn: Connection,
    batch: Sequence[Event],
    *,
    savepoint: bool = True,
    finish: Finish | None = None,
) -> list[Answer]:
    """Apply ``batch`` in order inside the caller's transaction; one answer per event.

    Consecutive earning events go through :func:`process_batch` (``savepoint`` is passed
    on: see there); each refund runs on its own in its place (it reads the lots its
    purchase created, which the batch before it has written by then).

    ``finish(script, answers)``, if given, is called once with every event's answer to
    add statements that must be written with the events (the API's stored answers):
    when the batch goes through the fast path in one piece they go in its write script,
    after its rows (one message on PostgreSQL, not one more), otherwise in a script of
    their own once every event is applied.
    """
    if finish is not None and batch and all(can_batch(e) for e in batch):
        finishing = _Finishing(finish)
        answers = process_batch(processor, conn, batch, savepoint=savepoint, finish=finishing)
        if not finishing.done:  # nothing written by the fast path, or fell back
            _finish_alone(conn, finish, answers)
        return answers
    answers = _process_events(processor, conn, batch, savepoint)
    if finish is not None:
        _finish_alone(conn, finish, answers)
    return answers


def _finish_alone(conn: Connection, finish: Finish, answers: list[Answer]) -> None:
    script = Script(conn)
    finish(script, answers)
    script.run()


def _process_events(
    processor: EventProcessor, conn: Connection, batch: Sequence[Event], savepoint: bool
) -> list[Answer]:
    if len(batch) > 1 and not all(can_batch(e) for e in batch):
        # several units in one transaction: every member first (see lock_member_refs)
        lock_member_refs(conn, processor.program.id, {e.member for e in batch})
    answers: list[Answer] = []
    run: list[Event] = []
    for event in batch:
        if can_batch(event):
            run.append(event)
            continue
        if run:
            answers.extend(process_batch(processor, conn, run, savepoint=savepoint))
            run = []
        answers.append(process_one(processor, conn, event))
    if run:
        answers.extend(process_batch(processor, conn, run, savepoint=savepoint))
    return answers


def process_one(processor: EventProcessor, conn: Connection, event: Event) -> Answer:
    """One event under its own savepoint; a business rejection is returned, not raised."""
    try:
        return processor.process(event, conn=conn)
    except (ProcessingError, Rejected) as exc:
        return exc


@dataclass
class _Member:
    """A member as the batch's earlier events left them."""

    ref: str
    member_id: int | None  # None: not enrolled yet (enrolled when the batch is written)
    state: MemberState
    tier: TierState | None
    activities: list[Activity]
    joined_at: datetime | None = None  # set for members this batch enrols
    purchases: int = 0  # purchases added by the batch
    tier_changed: bool = False
    usage: dict[tuple[str, str], int] = field(default_factory=dict)  # points added per key


@dataclass
class _Accepted:
    """An event the batch will record, with its ledger orders and where its answer goes."""

    event: Event
    decision: Decision
    orders: list[EarnOrder]
    changes: list[TierChange]
    member: _Member
    slot: int
    due: list[TierChange] = field(default_factory=list)  # steps due by the event, first


class _Batch:
    def __init__(
        self, processor: EventProcessor, conn: Connection, finish: _Finishing | None = None
    ) -> None:
        self.p = processor
        self.conn = conn
        self.finish = finish
        self.pid = processor.program.id
        self.members: dict[str, _Member] = {}
        self.usage_known: set[tuple[str, str, str]] = set()
        self.budgets: dict[str, int] = {}
        self.budget_added: dict[str, int] = {}
        self.coupons: dict[str, tuple[str, str | None]] = {}  # code: (status, member issued to)
        self.used_coupons: list[tuple[str, str]] = []
        self.recorded: set[str] = set()
        self.erased: dict[str, ErasedRef] = {}
        self.closed: set[str] = set()  # tombstones named: erased accounts, no new activity
        self.accepted: list[_Accepted] = []
        self.hooks: list[dict[str, Any]] = []
        self.now = processor.clock()  # the time of processing, read once per batch

    def run(self, batch: Sequence[Event]) -> list[Answer]:
        self._read(batch)
        ending = self._assignments_ending(batch)
        if ending:
            raise _AssignmentEnds(ending)
        answers: list[Answer | None] = []
        for slot, event in enumerate(batch):
            try:
                answers.append(self._decide(event, slot))
            except _AssignmentEnds as ends:
                ends.slots = [slot]
                raise
        self._write(answers)
        done = [a for a in answers if a is not None]
        assert len(done) == len(answers), "every accepted event has its result"
        return done

    def _assignments_ending(self, batch: Sequence[Event]) -> list[int]:
        """The slots of each member's first event dated at or after the end of the
        manual assignment they hold as read (the single path applies that end first)."""
        slots, seen = [], set()
        for slot, event in enumerate(batch):
            member = self.members.get(event.member)
            if member is None or event.member in seen or member.tier is None:
                continue
            until = member.tier.assigned_until
            if until is not None and event.at >= until:
                seen.add(event.member)
                slots.append(slot)
        return slots

    # -------------------------------------------------------------------- read

    def _read(self, batch: Sequence[Event]) -> None:
        """What the batch's decisions need, in one script (one round trip on PostgreSQL):
        on PostgreSQL, the enrolled members locked, then the batch's references no
        member holds yet (:func:`~fidelite.store.locking.lock_refs`); the events recorded
        already; the members, locked in id order; the campaign budgets, locked after
        them; the members' states, rule counters, accounts and tier-window purchases;
        the budgets used and the coupons presented; the erasure records of the batch's
        references (by digest: one indexed query, in the same round trip), so that an
        event of an erased member's history is refused as the single path refuses it."""
        script = Script(self.conn)
        q = queries(script.is_postgres)
        pid = {"pid": self.pid}
        refs = list(dict.fromkeys(e.member for e in batch))
        if script.is_postgres and refs:
            # The enrolled members' rows, then the references of new members (see
            # lock_refs): a batch enrolling some of the same new members commits first;
            # the members are locked and read again below, with those it enrolled.
            script.select(q.locked_members, {**pid, "refs": refs})
            lock_refs(script, self.pid, refs)
        recorded = [script.select(q.recorded, {**pid, "ids": part})
                    for part in self._parts([e.id for e in batch])]  # fmt: skip
        members = [script.select(q.locked_members, {**pid, "refs": part})
                   for part in self._parts(refs)]  # fmt: skip
        types = {e.type for e in batch}
        rules = [r for r in self.p.program.rules if r.budget]
        budgeted = [r.id for r in rules if any(r.may_spend_budget(e.type, e.at) for e in batch)]
        lock_shared(script, *(f"budget:{self.pid}:{rule}" for rule in budgeted))
        states = [script.select(q.states, {**pid, "refs": p}) for p in self._parts(refs)]
        # The rule counters serve per-member caps only: a batch no capped rule handles
        # needs none (one statement less per batch: most of an API group's cost is per
        # statement, not per event).
        capped = any(r.cap_per_member for r in self.p.program.rules if types & set(r.on))
        usage = [script.select(q.usage, {**pid, "refs": p}) for p in self._parts(refs) if capped]
        times = [e.at for e in batch]
        activities = self._activities(script, refs, min(times), max(times))
        last: dict[str, datetime] = {}  # each member's latest event: steps due by then apply
        for e in batch:
            last[e.member] = max(e.at, last.get(e.member, e.at))
        self.accounts = AccountsRead(script, self.pid, refs)
        currencies = len(self.p.program.currencies)
        self.ids = IdsRead(script, len(batch) * currencies) if script.is_postgres else None
        has_budgets = any(rule.budget for rule in self.p.program.rules)
        budget_rows = script.select(q.budgets, pid) if has_budgets else None
        codes = sorted({normalise(e.coupon) for e in batch if e.coupon})
        coupon_rows = [script.select(q.coupons, {**pid, "codes": p}) for p in self._parts(codes)]
        erased = erased_in_script(script, self.pid, refs, self._parts)
        script.run()

        self.erased = erased()
        self.recorded = {row[0] for rows in recorded for row in rows}
        ledger_ids = {str(r[0]): int(r[1]) for rows in members for r in rows}
        self.closed = {str(r[0]) for rows in members for r in rows if r[2] == "erased"}
        found = {row.member_ref: row for rows in states for row in rows}
        if found.keys() != ledger_ids.keys():
            raise Fallback("a member is known to the ledger or to the program, not both")
        if self.p.program.tiers is None and any(r.tier is not None for r in found.values()):
            # a level of a tiers: section removed since: the single path moves the member
            # to no tier first (``_apply_due``), once
            raise Fallback("a member holds a level and the program has no tiers any more")
        if self.p.program.tiers is not None and any(r.tier is None for r in found.values()):
            # enrolled while the program had no tiers: the single path puts the member
            # on the ladder first (``_apply_due``), once
            raise Fallback("a member holds no level and the program has tiers now")
        counters = self._usage(usage)
        purchases = activities()
        early = self._due_early(found, last, min(times))
        if early:  # their windows at a due date before the batch: read for them from there
            again = Script(self.conn)
            wider = self._activities(again, sorted(early), min(early.values()), max(times))
            again.run()
            read = wider()
            purchases.update({ref: read.get(ref, []) for ref in early})
        for ref, row in found.items():
            self.members[ref] = _member(row, ledger_ids[ref], counters.get(ref, {}),
                                        purchases.get(ref, []))  # fmt: skip
        self.budgets = {} if budget_rows is None else {r.rule_id: int(r.used) for r in budget_rows}
        for rows in coupon_rows:
            self.coupons.update({r.code: (r.status, r.member_ref) for r in rows})

    def _parts(self, values: list[Any]) -> list[list[Any]]:
        """``values`` for one list parameter: whole on PostgreSQL (an array: also what
        keeps member locks in one id order), by chunks on SQLite (its parameter limit)."""
        if not values:
            return []
        return [values] if self.conn.dialect.name == "postgresql" else list(_chunks(values))

    def _usage(self, usage: list[Rows]) -> dict[str, dict[tuple[str, str], int]]:
        found: dict[str, dict[tuple[str, str], int]] = {}
        for rows in usage:
            for r in rows:
                found.setdefault(r.member_ref, {})[(r.rule_id, r.period)] = int(r.points)
                self.usage_known.add((r.member_ref, r.rule_id, r.period))
        return found

    def _activities(
        self, script: Script, refs: list[str], earliest: datetime, latest: datetime
    ) -> Callable[[], dict[str, list[Activity]]]:
        """Queries of each member's purchases that an event of the batch can count in its
        tier window; the returned function gives them, by member, once ``script`` ran.

        Same figures as :meth:`EventProcessor._activities`, in fewer rows: the purchases
        inside *every* event's window (after the latest window start of the batch's span,
        before its earliest event) count the same for every event and every step due by
        them, so each member's are summed into one activity (at the last of them, which
        every window contains, a step's too: a step due at an instant judges the window
        just before it, which an activity at the earliest event's instant is not in). Only
        the purchases near the window edges are read one by one; purchases before every
        window are left out (a day's margin on the window's start).
        """
        policy = self.p.program.tiers
        if policy is None or not refs:
            return dict
        if earliest.year <= 1 or latest.year >= 9999:
            raise Fallback("an event dated at the calendar's ends (its window has no start)")
        rolling = policy.window is WindowKind.rolling  # (start, at]; else [1 January, at]
        edges, totals, earned = window_activity(script.is_postgres, rolling)
        # Window starts follow local time, which goes back on a fall-back night (an event
        # at 02:50+02:00 has a later window start than one at 02:10+01:00 after it): the
        # bounds are taken at the lowest and highest local times of the batch's span.
        low, high = local_bounds(earliest, latest, self.p.program.zone)
        # From the window a step due at the lowest judges (the year before it when that
        # instant opens a calendar year), which starts no later than any event's.
        since = self._window_start(low, step=True).astimezone(UTC) - timedelta(days=1)
        # After every window's start, before the earliest event: a step due at it judges
        # the window just before it.
        core_from, core_to = self._window_start(high), earliest - timedelta(microseconds=1)
        window = {"pid": self.pid, "since": since, "core_from": core_from, "core_to": core_to}
        readers: list[Callable[[], Iterable[tuple[str, Activity]]]] = []
        for part in self._parts(refs):
            params = {**window, "refs": part}
            readers.append(_each_event(script.select(edges, params)))
            if core_from < core_to:
                summed = (script.select(totals, params), script.select(earned, params))
                readers.append(_summed_events(*summed))

        def found() -> dict[str, list[Activity]]:
            by_member: dict[str, list[Activity]] = {}
            for read in readers:
                for ref, found_activity in read():
                    by_member.setdefault(ref, []).append(found_activity)
            return by_member

        return found

    def _due_early(
        self, found: dict[str, Any], last: dict[str, datetime], earliest: datetime
    ) -> dict[str, datetime]:
        """The members with a tier step due before the batch's earliest event and by their
        own latest one in it, with its date: the step is judged on the window at that
        date, which the batch's read does not reach back to."""
        if self.p.program.tiers is None:
            return {}
        early: dict[str, datetime] = {}
        for ref, row in found.items():
            if row.tier is None or row.tier_since is None:
                continue
            due = due_at(TierState(row.tier, row.tier_since, row.review_at, row.grace_until,
                                   row.assigned_until))  # fmt: skip
            if due is not None and due < earliest and due <= last[ref]:
                early[ref] = due
        return early

    def _window_start(self, at: datetime, *, step: bool = False) -> datetime:
        """Where the tier window of an event at ``at`` starts (``window_start``, which
        ``window_value`` counts from; ``step``: the window of a step due at ``at``)."""
        policy = self.p.program.tiers
        assert policy is not None
        start = window_start(policy, at, self.p.program.zone, step=step)
        if start is None:
            raise Fallback("a tier window that would start before the calendar")
        return start

    # ------------------------------------------------------------------ decide

    def _decide(self, event: Event, slot: int) -> Answer | None:
        """Evaluate one event; None stands for a result filled in once written."""
        if event.id in self.recorded:
            return Result(event.id, Outcome.duplicate)
        unknown = unknown_event_type(self.p.program, event)
        if unknown is not None:
            return unknown
        future = in_future(self.p.program, event, self.now)
        if future is not None:
            return future
        refused = self._erased_history(event)
        if refused is not None:
            return refused
        if event.member in self.closed:  # the single path's lock refuses it alike
            return member_erased(self.pid, event.member)
        known = self.members.get(event.member)
        member = known or self._newcomer(event)
        tier, due = self._due(member, event.at)
        policy = self.p.program.tiers
        if policy is not None and tier is not None and tier.assigned_until is None:
            taken = last_step(policy, tier, self.p.program.zone, enrolled=member.state.joined_at)
            if taken is not None and event.at < taken:
                # dated before a step already taken: the single path plays the history again
                raise Fallback("an event dated before a tier step already taken")
        state = replace(member.state, tier=tier.tier) if tier is not None else member.state
        status = self._coupon_status(event.coupon, event.member)
        decision = self.p.evaluator.evaluate(event, state, ProgramState(self.budgets),
                                             status)  # fmt: skip
        try:
            orders = [
                earn_order(event.member, e.currency, e.points, key=f"event:{event.id}:{e.currency}",
                           at=event.at, at_given=True, expires_at=e.expires_at,
                           pending_until=e.pending_until, reason=event.type, source=event.id,
                           detail=None)
                for e in decision.earnings
            ]  # fmt: skip
        except Rejected as rejected:
            return rejected
        self.members[event.member] = member
        self.recorded.add(event.id)
        if due:  # kept with the event: a rejected one leaves them to the next
            member.tier, member.tier_changed, member.state = tier, True, state
        changes = self._count(event, decision, member)
        self.accepted.append(_Accepted(event, decision, orders, changes, member, slot, due))
        return None

    def _due(self, member: _Member, at: datetime) -> tuple[TierState | None, list[TierChange]]:
        """The member's tier after the steps due at or before ``at`` (the single path's
        ``_apply_due``: the daily job's :func:`review` on the member's activity so far),
        and those steps."""
        policy, tier = self.p.program.tiers, member.tier
        if policy is None or tier is None:
            return tier, []
        due = due_at(tier)
        if (due is None or at < due) and not retired(policy, tier):
            return tier, []
        if tier.assigned_until is not None and not retired(policy, tier):
            # its end plays the member's whole history again, which the batch does not read
            raise _AssignmentEnds
        return review(policy, tier, member.activities, at, self.p.program.zone)

    def _erased_history(self, event: Event) -> ProcessingError | None:
        """``member_erased`` for an event of an erased reference dated at or before its
        latest erasure (:func:`~fidelite.processing.erased.of_erased_history`, as the
        single path and the import refuse it): whether no member holds the reference
        (enrolling it would bring the erased member back) or one enrolled again since
        does, whatever its join date."""
        found = of_erased_history(self.erased, event.member, event.at)
        if found is None:
            return None
        return ProcessingError(
            MEMBER_ERASED, erased_history(event.member, found.last_erased_at, "an event")
        )

    def _newcomer(self, event: Event) -> _Member:
        """A member first seen in this batch, as the single path would enrol them."""
        row = initial_state_row(self.p.program, event.member, event.at)
        tier = TierState(row["tier"], event.at) if row["tier"] is not None else None
        state = MemberState(ref=event.member, tier=row["tier"], joined_at=event.at)
        return _Member(event.member, None, state, tier, [], joined_at=event.at)

    def _coupon_status(self, code: str | None, member_ref: str) -> CouponStatus:
        """As the single path's: the code's status, as the batch's earlier events left it."""
        found = self.coupons.get(normalise(code)) if code else None
        if found is None:
            return CouponStatus.not_found
        return coupon_status(*found, member_ref)

    def _count(self, event: Event, decision: Decision, member: _Member) -> list[TierChange]:
        """Move the member's and the program's counters on, as the single path's writes would."""
        points = dict(member.state.rule_points)
        for use in decision.usage:
            key = (use.rule, use.period)
            points[key] = points.get(key, 0) + use.points
            member.usage[key] = member.usage.get(key, 0) + use.points
        for rule_id, spent in decision.budget_spent.items():
            self.budgets[rule_id] = self.budgets.get(rule_id, 0) + spent
            self.budget_added[rule_id] = self.budget_added.get(rule_id, 0) + spent
        if decision.coupon is not None and decision.coupon.accepted:
            self.used_coupons.append((decision.coupon.code, event.id))
            owner = self.coupons[decision.coupon.code][1]
            self.coupons[decision.coupon.code] = (CouponStatus.used.value, owner)
        purchases = member.state.purchases
        if event.type == PURCHASE:
            member.purchases += 1
            purchases += 1
        member.state = replace(member.state, rule_points=points, purchases=purchases)
        return self._tier(event, decision, member)

    def _tier(self, event: Event, decision: Decision, member: _Member) -> list[TierChange]:
        """The member's activity and tier after ``event``, as the single path reads them
        back from the tables (see :func:`~fidelite.processing.processor.activity`)."""
        policy = self.p.program.tiers
        if policy is None or member.tier is None or not qualifies(event, decision):
            return []
        earned = sum(e.points for e in decision.earnings)
        if event.type == PURCHASE:
            assert event.amount is not None
            spend = event.amount.quantize(_UNIT)  # as read back from the events table
            member.activities.append(Activity(event.at, spend=spend, points=earned, purchases=1))
        else:
            member.activities.append(Activity(event.at, points=earned))
        new, changes = on_activity(policy, member.tier, member.activities, event.at,
                                   self.p.program.zone)  # fmt: skip
        if changes:
            member.tier, member.tier_changed = new, True
            member.state = replace(member.state, tier=new.tier)
        return changes

    # ------------------------------------------------------------------- write

    def _write(self, answers: list[Answer | None]) -> None:
        """Enrol the new members (their ids are needed first), then every row of the
        batch in one script: ledger, events, earnings, counters, member states, tier
        changes and webhook events (one round trip on PostgreSQL)."""
        if not self.accepted:
            return
        script = Script(self.conn)
        self._enrol(script)
        ledger = EarnBatch(self.conn, self.pid, self.p.ledger.now, self.accounts, self.ids)
        for item in self.accepted:
            for order in item.orders:
                assert item.member.member_id is not None
                ledger.add(item.member.member_id, order)
        receipts = iter(ledger.write(script))
        now = datetime.now(UTC)
        event_rows, earning_rows, tier_rows = [], [], []
        due_refs = [item.event.member for item in self.accepted if item.due]
        known = recorded_steps(self.conn, self.pid, due_refs)  # none written twice
        for item in self.accepted:
            event, decision = item.event, item.decision
            mine = [next(receipts) for _ in item.orders]
            event_rows.append(_event_row(self.pid, event, decision, now))
            for c in item.due:  # the steps due by the event: the job's entries, before it
                if step_key(event.member, c) in known:
                    continue
                tier_rows.append(_tier_row(self.pid, event.member, c, None))
                self._announce(hooks.TIER_CHANGED, event.member, {
                    "from_tier": c.from_tier, "to_tier": c.to_tier, "kind": c.kind.value,
                    "reason": c.reason, "at": c.at.astimezone(UTC).isoformat(), "event_id": None,
                })  # fmt: skip
            for earning, receipt in zip(decision.earnings, mine, strict=True):
                earning_rows.append({"program_id": self.pid, "event_id": event.id,
                                     "currency": earning.currency,
                                     "transaction_id": receipt.transaction_id,
                                     "points": earning.points})  # fmt: skip
                self._announce(hooks.POINTS_EARNED, event.member, {
                    "currency": earning.currency, "points": earning.points,
                    "transaction_id": receipt.transaction_id, "event_id": event.id,
                    "event_type": event.type, "occurred_at": event.at.isoformat(),
                    "expires_at": _iso(earning.expires_at),
                    "pending_until": _iso(earning.pending_until),
                })  # fmt: skip
            for c in item.changes:
                tier_rows.append(_tier_row(self.pid, event.member, c, event.id))
                self._announce(hooks.TIER_CHANGED, event.member, {
                    "from_tier": c.from_tier, "to_tier": c.to_tier, "kind": c.kind.value,
                    "reason": c.reason, "at": c.at.isoformat(), "event_id": event.id,
                })  # fmt: skip
            answers[item.slot] = Result(event.id, Outcome.processed, decision, mine, item.changes)
        script.insert(events, event_rows)
        script.insert(earnings, earning_rows)
        self._write_counters(script)
        self._write_members(script)
        script.insert(tier_changes, tier_rows)
        script.insert(outbox, self.hooks)
        if self.finish is not None:
            done = [a for a in answers if a is not None]
            assert len(done) == len(answers), "every event has its answer before the writes"
            self.finish.add(script, done)
        script.run()
        if self.finish is not None:
            self.finish.done = True

    def _enrol(self, script: Script) -> None:
        """Enrol the batch's new members, in the order of their first recorded event (the
        ledger's rows now: their ids are needed; their states go with ``script``)."""
        new = [m for m in dict.fromkeys(a.member.ref for a in self.accepted)
               if self.members[m].member_id is None]  # fmt: skip
        for ref in new:
            if member_id_problem(ref) is not None:  # refused there, naming it
                raise Fallback("a member reference the ledger refuses")
        ids = enrol_many(self.conn, self.pid, new, self.p.ledger.now())
        rows = []
        for ref in new:
            member = self.members[ref]
            assert member.joined_at is not None
            member.member_id = ids[ref]
            rows.append(initial_state_row(self.p.program, ref, member.joined_at))
            self._announce(hooks.MEMBER_CREATED, ref, {"joined_at": member.joined_at.isoformat()})
        script.insert(member_states, rows)

    def _write_counters(self, script: Script) -> None:
        usage_new: list[dict[str, Any]] = []
        usage_more: list[dict[str, Any]] = []
        for member in self.members.values():
            for (rule, period), points in member.usage.items():
                row = {"r": member.ref, "u": rule, "q": period, "d": points}
                known = (member.ref, rule, period) in self.usage_known
                (usage_more if known else usage_new).append(row)
        script.increment("rule_usage", "points",
                         {"member_ref": "text", "rule_id": "text", "period": "text"},
                         [((r["r"], r["u"], r["q"]), r["d"]) for r in usage_more],
                         fixed={"program_id": self.pid})  # fmt: skip
        script.insert(rule_usage, [
            {"program_id": self.pid, "member_ref": r["r"], "rule_id": r["u"],
             "period": r["q"], "points": r["d"]} for r in usage_new
        ])  # fmt: skip
        q = queries(script.is_postgres)
        for rule_id, spent in self.budget_added.items():
            script.execute(q.budget_spent, {"pid": self.pid, "rule": rule_id, "spent": spent})
        for code, event_id in self.used_coupons:
            script.execute(q.coupon_used, {"pid": self.pid, "coupon": code, "event": event_id})

    def _write_members(self, script: Script) -> None:
        bought = [((m.ref,), m.purchases) for m in self.members.values() if m.purchases]
        script.increment("member_states", "purchases", {"member_ref": "text"}, bought,
                         fixed={"program_id": self.pid})  # fmt: skip
        moved = queries(script.is_postgres).tier_moved
        for m in self.members.values():
            if m.tier_changed and m.tier is not None:
                script.execute(moved, {
                    "pid": self.pid, "ref": m.ref, "new_tier": m.tier.tier, "since": m.tier.since,
                    "review": m.tier.review_at, "grace": m.tier.grace_until,
                    "assigned": m.tier.assigned_until,
                })  # fmt: skip

    def _announce(self, event_type: str, member_ref: str, data: dict[str, Any]) -> None:
        if self.p.announce:
            self.hooks.append(outbox_row(self.pid, event_type, {"member": member_ref, **data},
                                         member_ref=member_ref))  # fmt: skip


def _each_event(rows: Rows) -> Callable[[], Iterable[tuple[str, Activity]]]:
    """The window-edge events read: one activity each (as the single path counts it)."""

    def read() -> Iterable[tuple[str, Activity]]:
        for r in rows:
            found = activity(r.type, r.occurred_at, r.amount, r.refunded_amount, r.net,
                             refunded_whole=bool(r.refunded_whole))  # fmt: skip
            if found is not None:
                yield r.member_ref, found

    return read


def _summed_events(totals: Rows, earned: Rows) -> Callable[[], Iterable[tuple[str, Activity]]]:
    """The core-window events read: one activity per member, their sums."""

    def read() -> Iterable[tuple[str, Activity]]:
        points = {r.member_ref: r.net for r in earned}
        for r in totals:
            spend = Decimal(int(r.units or 0)).scaleb(_UNIT_EXPONENT)
            earned_points = int(points.get(r.member_ref) or 0)
            bought = int(r.bought)
            yield r.member_ref, Activity(r.last, spend=spend, points=earned_points,
                                         purchases=bought)  # fmt: skip

    return read


def _member(row: Any, member_id: int, usage: dict[tuple[str, str], int],
            activities: list[Activity]) -> _Member:  # fmt: skip
    """An enrolled member from their ``member_states`` row (as ``_member_state`` reads it)."""
    state = MemberState(
        ref=row.member_ref,
        tier=row.tier,
        segments=frozenset(row.segments or []),
        attributes=dict(row.attributes or {}),
        purchases=int(row.purchases),
        joined_at=row.joined_at,
        birth_date=row.birth_date,
        rule_points=usage,
    )
    tier = None
    if row.tier is not None and row.tier_since is not None:
        tier = TierState(row.tier, row.tier_since, row.review_at, row.grace_until,
                         row.assigned_until)  # fmt: skip
    return _Member(row.member_ref, member_id, state, tier, activities)


def _event_row(pid: str, event: Event, decision: Decision, now: datetime) -> dict[str, Any]:
    coupon = decision.coupon
    return {
        "program_id": pid,
        "event_id": event.id,
        "member_ref": event.member,
        "type": event.type,
        "occurred_at": event.at,
        "amount": event.amount,
        "coupon": coupon.code if coupon else event.coupon,
        "coupon_accepted": None if coupon is None else int(coupon.accepted),
        "refund_of": event.refund_of,
        "trace": decision.as_dict()["trace"],
        "recorded_at": now,
    }


def _tier_row(pid: str, ref: str, change: TierChange, event_id: str | None) -> dict[str, Any]:
    return {
        "program_id": pid,
        "member_ref": ref,
        "at": change.at,
        "kind": change.kind.value,
        "from_tier": change.from_tier,
        "to_tier": change.to_tier,
        "value": change.value,
        "reason": change.reason[:300],
        "event_id": event_id,
    }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _chunks(values: Iterable[Any], size: int = _IN_CHUNK) -> Iterable[list[Any]]:
    iterator = iter(values)
    while part := list(islice(iterator, size)):
        yield part
