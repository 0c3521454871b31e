"""Applying a program to events, through the engine and the ledger.

Each event is one database transaction: for an earning event, lock the member, read
their state and counters, ask the engine for a decision, credit each currency through
the ledger (key ``event:<id>:<currency>``), record the event, its trace and the
counters. For a refund: compute the proportional reversals and reverse every currency
through the ledger with the program's shortfall policy (key
``refund:<id>:<transaction>``), then record; the refund that completes a purchase's
full refund gives back the single-use coupon code it used (``coupon_rollbacks``,
announced as ``coupon.restored``).
Either everything of an event commits or nothing does; a retry posts nothing twice
(ledger keys) and records the event once (primary key). Whether the event id is
recorded is checked first and again under the member's lock, so a copy sent at the
same time by another writer is answered as a duplicate, not refused. Bulk import runs
many events in one transaction, each under its own savepoint, so a rejected event
never leaves part of itself behind.

Rule budgets and reward stock are program-wide counters: events of different members
are not serialised by their member locks, so a writer that may spend from a budget
(:meth:`~fidelite.program.rule.Rule.may_spend_budget`) or take a reward from stock first
takes that counter's lock (:func:`~fidelite.store.locking.lock_shared`; SQLite's writers
are serial already) and reads the counter under it: concurrent members never overrun
them (``tests/processing/test_shared_limits.py``).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Connection,
    Row,
    Select,
    and_,
    case,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError

from fidelite.engine import CouponStatus, Decision, Evaluator, Event, MemberState, ProgramState
from fidelite.engine.coupon import generate_codes, normalise
from fidelite.engine.event import PURCHASE, REFUND
from fidelite.engine.expiry import Lapse
from fidelite.engine.refund import (
    CountersBack,
    EarnedTransaction,
    RefundError,
    check_refund_time,
    counters_given_back,
    refund_reversals,
)
from fidelite.engine.rewards import RedemptionRejection, check_redemption
from fidelite.engine.tier_bonus import (
    TIER_BONUS,
    BonusReversal,
    Earned,
    Later,
    bonus_reversals,
    levels_held,
)
from fidelite.engine.tier_bonus import bonus_taken as bonus_taken_of
from fidelite.engine.tiers import (
    Activity,
    Assignment,
    ChangeKind,
    TierChange,
    TierState,
    assign,
    due_at,
    enter_ladder,
    last_step,
    on_activity,
    on_late_activity,
    on_refund,
    recorded_threshold,
    refund_levels,
    retired,
    review,
)
from fidelite.ledger import Ledger, Receipt, Rejected, RejectionCode, no_member
from fidelite.ledger.inactivity import Inactivity, member_lapse
from fidelite.processing.erased import (
    TOMBSTONE_PREFIX,
    erased_history,
    erased_refs,
    of_erased_history,
)
from fidelite.processing.future import EVENT_IN_FUTURE, Clock, event_in_future, system_clock
from fidelite.processing.queries import refunded_whole
from fidelite.processing.tables import (
    coupon_rollbacks,
    coupons,
    earnings,
    events,
    member_states,
    redemptions,
    rule_budgets,
    rule_usage,
    tier_changes,
)
from fidelite.program import ProgramDefinition
from fidelite.program.campaign import CouponCampaign
from fidelite.program.tier import TierMetric
from fidelite.store import Database
from fidelite.store.locking import lock_shared
from fidelite.store.tables import UTCDateTime
from fidelite.webhooks import events as hooks
from fidelite.webhooks.outbox import record as announce


class Outcome(StrEnum):
    """What happened to an event."""

    processed = "processed"
    duplicate = "duplicate"  # already recorded: nothing done


class MemberChange(StrEnum):
    """What saving a member did."""

    created = "created"
    updated = "updated"
    unchanged = "unchanged"


_MEMBER_ID = text("SELECT id FROM members WHERE program_id = :p AND ref = :r")

# The member's transactions in the currency after a cancellation, at its very time: the
# expiry entries it wrote with it (and releases of ended holds they wrote first).
_SAME_TIME_MOVES = text(
    "SELECT n.id, n.kind, n.detail FROM ledger_transactions c "
    "JOIN ledger_transactions n ON n.member_id = c.member_id AND n.currency = c.currency "
    "AND n.id > c.id AND n.occurred_at = c.occurred_at WHERE c.id = :t ORDER BY n.id"
).columns(detail=JSON())

# A cancellation's entry: its points and detail (what it restored to the write-off).
_CANCEL_ENTRY = text("SELECT points, detail FROM ledger_transactions WHERE id = :t").columns(
    detail=JSON()
)

# The lots an expiry entry drew from.
_EXPIRED_LOTS = text(
    "SELECT DISTINCT p.lot_id FROM postings p JOIN accounts a ON a.id = p.account_id "
    "WHERE p.transaction_id = :t AND a.kind = 'available' AND p.lot_id IS NOT NULL"
)

# Where a cancellation's points went back: each lot, its points, dates and the time.
_REFILLED = text(
    "SELECT p.lot_id, SUM(p.points) AS points, l.expires_at, l.earned_at, "
    "t.occurred_at FROM postings p JOIN accounts a ON a.id = p.account_id "
    "JOIN lots l ON l.id = p.lot_id "
    "JOIN ledger_transactions t ON t.id = p.transaction_id "
    "WHERE p.transaction_id = :t AND a.kind = 'available' "
    "GROUP BY p.lot_id, l.expires_at, l.earned_at, t.occurred_at"
).columns(expires_at=UTCDateTime(), earned_at=UTCDateTime(), occurred_at=UTCDateTime())

MEMBER_ERASED = "member_erased"
"""An event of an erased member's history (dated at or before the erasure): refused."""


UNKNOWN_EVENT_TYPE = "unknown_event_type"
"""An event of a type the program does not handle (:attr:`ProgramDefinition.event_types`):
refused, as a typo would otherwise be recorded with 0 points under the real event's id."""


class ProcessingError(Exception):
    """An event refused for a business reason; ``code`` is stable (e.g. ``unknown_purchase``).

    ``detail``: figures a client can act on (e.g. a redemption short of points: what is
    available, what was requested, what lapsed and when), given with the code."""

    def __init__(self, code: str, message: str, *, detail: dict[str, Any] | None = None) -> None:
        self.code = code
        self.message = message
        self.detail = detail or {}
        super().__init__(f"{code}: {message}")


@dataclass(frozen=True)
class MemberProfile:
    """What a client may set on a member: never balances, tiers or counters."""

    segments: list[str] | None = None
    attributes: dict[str, Any] | None = None
    birth_date: date | None = None

    def values(self) -> dict[str, Any]:
        """Only the fields given (None = leave as is)."""
        fields = {"segments": self.segments, "attributes": self.attributes,
                  "birth_date": self.birth_date}  # fmt: skip
        return {k: v for k, v in fields.items() if v is not None}


@dataclass(frozen=True)
class Result:
    """The outcome of one event: its decision (earning events) and ledger receipts."""

    event_id: str
    outcome: Outcome
    decision: Decision | None = None
    receipts: list[Receipt] = field(default_factory=list)
    tier_changes: list[TierChange] = field(default_factory=list)


@dataclass(frozen=True)
class Redemption:
    """A reward redeemed: the spend transaction and the code given to the member.

    ``replayed``: this is an earlier answer given again (a redeem retried with its key,
    a cancellation of a redemption already cancelled), and nothing changed this time.
    It says how the redemption was reached, not what it is, so equality ignores it.
    """

    id: int
    member_ref: str
    reward_id: str
    points: int
    transaction_id: int
    code: str
    status: str
    redeemed_at: datetime
    cancel_transaction_id: int | None = None
    replayed: bool = field(default=False, compare=False)
    returned: CancelReturn | None = None


@dataclass(frozen=True)
class CancelReturn:
    """Where a cancelled redemption's points went back: ``spendable`` into lots still
    valid at the cancellation, ``expired`` into lots already past their date then (they
    keep it: expired at once, as of the cancellation, recorded as expired points), with
    ``expired_lots`` the expiry date of each such lot and its points, earliest first;
    ``debt_repaid`` paid the member's debt first; ``written_off_restored`` went back to
    the write-off they had become (points spent, then taken back as written off by a
    refund of their purchase under ``shortfall: within_balance``: never spendable
    again, as under ``debt``). The four add up to the points."""

    spendable: int
    expired: int
    expired_lots: tuple[tuple[datetime, int], ...] = ()
    debt_repaid: int = 0
    written_off_restored: int = 0

    def as_dict(self) -> dict[str, Any]:
        """The fields a cancellation's answers and its webhook event give."""
        return {
            "points_spendable": self.spendable,
            "points_expired": self.expired,
            "debt_repaid": self.debt_repaid,
            "written_off_restored": self.written_off_restored,
            "expired_lots": [
                {"expires_at": when.astimezone(UTC).isoformat(), "points": points}
                for when, points in self.expired_lots
            ],
        }


class EventProcessor:
    """Processes events of one program against one database."""

    def __init__(
        self,
        db: Database,
        program: ProgramDefinition,
        ledger: Ledger | None = None,
        *,
        announce: bool = True,
        clock: Clock | None = None,
    ):
        """``announce=False`` writes no webhook events (e.g. loading history).

        ``clock`` is the time of processing (default: the machine's, read at each event
        or batch): an event dated later than it plus the program's
        ``future_tolerance_minutes`` is refused (``event_in_future``,
        :mod:`fidelite.processing.future`). Replaying history dated after today (tests, a
        benchmark's synthetic years) gives a fixed clock rather than a wider tolerance."""
        self.db = db
        self.program = program
        self.announce = announce
        self.clock: Clock = clock or _machine_time
        self.ledger = ledger or Ledger(db)
        self.evaluator = Evaluator(program)
        self.ledger.open_program(program.id, [c.id for c in program.currencies])
        self._known_members: set[str] = set()

    # ------------------------------------------------------------------ events

    def remember_members(self, refs: Iterable[str]) -> None:
        """Note members whose enrolment has been written (and not rolled back)."""
        self._known_members.update(refs)

    def process(self, event: Event, *, conn: Connection | None = None) -> Result:
        """Apply one event atomically (raises :class:`ProcessingError` or ``Rejected``).

        Given ``conn`` (a writing connection), the event runs inside the caller's
        transaction under a savepoint, so a rejected event undoes only itself.
        """
        if conn is None:
            try:
                with self.db.write() as own:
                    result = self._process(own, event)
            except IntegrityError:  # a concurrent retry recorded the event first
                with self.db.read() as reader:
                    if not self._recorded(reader, event.id):
                        raise
                result = Result(event.id, Outcome.duplicate)
        else:
            savepoint = conn.begin_nested()
            try:
                result = self._process(conn, event)
            except BaseException:
                savepoint.rollback()
                raise
            savepoint.commit()
        self._known_members.add(event.member)  # enrolled, and not rolled back
        return result

    def _process(self, conn: Connection, event: Event) -> Result:
        if self._recorded(conn, event.id):
            return Result(event.id, Outcome.duplicate)
        refused = unknown_event_type(self.program, event)
        if refused is not None:
            raise refused
        refused = in_future(self.program, event, self.clock())
        if refused is not None:
            raise refused
        if event.type == REFUND:
            return self._refund(conn, event)
        return self._earn(conn, event)

    def _earn(self, conn: Connection, event: Event) -> Result:
        checked = self._enrol_and_lock(conn, event.member, event.at, refuse_erased=True)
        if self._recorded(conn, event.id):  # a copy sent at once committed while we waited
            return Result(event.id, Outcome.duplicate)
        if not checked:  # a member holds the reference: maybe enrolled again since an erasure
            self._refuse_erased(conn, event.member, event.at)
        budgeted = [r.id for r in self.program.rules if r.may_spend_budget(event.type, event.at)]
        lock_shared(conn, *(f"budget:{self.program.id}:{rule}" for rule in budgeted))
        member, tier_state = self._member_state(conn, event.member)
        tier_state = self._apply_due(conn, event.member, tier_state, event.at)
        if tier_state is not None:  # the level the steps due by the event left
            member = replace(member, tier=tier_state.tier)
        elif self.program.tiers is None:  # no ladder: no level (moved off a removed one)
            member = replace(member, tier=None)
        budgets = self.budget_usage(conn)
        status = self._coupon_status(conn, event.coupon, event.member)
        decision = self.evaluator.evaluate(event, member, ProgramState(budgets), status)
        receipts = [
            self.ledger.earn(
                self.program.id,
                event.member,
                earning.currency,
                earning.points,
                key=f"event:{event.id}:{earning.currency}",
                at=event.at,
                expires_at=earning.expires_at,
                pending_until=earning.pending_until,
                reason=event.type,
                source=event.id,
                conn=conn,
            )
            for earning in decision.earnings
        ]
        self._record_event(conn, event, decision.as_dict()["trace"], decision)
        for earning, receipt in zip(decision.earnings, receipts, strict=True):
            conn.execute(
                insert(earnings),
                {
                    "program_id": self.program.id,
                    "event_id": event.id,
                    "currency": earning.currency,
                    "transaction_id": receipt.transaction_id,
                    "points": earning.points,
                },
            )
        self._count_usage(conn, event.member, decision)
        for earning, receipt in zip(decision.earnings, receipts, strict=True):
            self._announce(conn, hooks.POINTS_EARNED, event.member, {
                "currency": earning.currency, "points": earning.points,
                "transaction_id": receipt.transaction_id, "event_id": event.id,
                "event_type": event.type, "occurred_at": event.at.isoformat(),
                "expires_at": _iso(earning.expires_at),
                "pending_until": _iso(earning.pending_until),
            })  # fmt: skip
        changes = self._after_event(conn, event, decision, tier_state)
        return Result(event.id, Outcome.processed, decision, receipts, changes)

    def _purchase_row(
        self, conn: Connection, event_id: str
    ) -> Row[str, Decimal, Decimal, datetime, str, bool] | None:
        """The processed event ``event_id`` as a refund needs it (type, amounts, member,
        and whether it is refunded in full already)."""
        return conn.execute(
            select(events.c.type, events.c.amount, events.c.refunded_amount,
                   events.c.occurred_at, events.c.member_ref,
                   refunded_whole().label("refunded_whole")).where(
                events.c.program_id == self.program.id,
                events.c.event_id == event_id,
            )
        ).one_or_none()  # fmt: skip

    def _refund_member(self, conn: Connection, event: Event, recorded: str) -> str:
        """The member a refund applies to: the purchase's, ``recorded``.

        That is the member the refund names, or, if the purchase's member was erased
        since (``recorded`` is a tombstone), the erased member whose tombstone it is, as
        the erasure record's digest of the reference sent says (read only then): the
        refund of a purchase made before the erasure and refunded after it is real
        money, and it is taken back from the anonymised account, so that the books and
        the purchase stay consistent. A refund dated at or before that erasure belongs
        to the erased history (as for an import: ``member_erased``); a purchase of any
        other member is ``member_mismatch``."""
        if recorded == event.member:
            return recorded
        if recorded.startswith(TOMBSTONE_PREFIX):
            found = erased_refs(conn, self.program.id, [event.member]).get(event.member)
            if found is not None and found.holds(recorded):
                erased_at = found.erased_at.get(recorded, found.last_erased_at)
                if event.at <= erased_at:
                    raise ProcessingError(
                        MEMBER_ERASED, erased_history(event.member, erased_at, "a refund")
                    )
                return recorded
        erased = " (erased)" if recorded.startswith(TOMBSTONE_PREFIX) else ""
        raise ProcessingError(
            "member_mismatch",
            f"the refund names member {event.member!r}, but purchase {event.refund_of!r} "
            f"belongs to member {recorded!r}{erased}",
        )

    def _refund(self, conn: Connection, event: Event) -> Result:
        assert event.refund_of is not None and event.amount is not None
        original = self._purchase_row(conn, event.refund_of)
        if original is None or original.type != "purchase":
            raise ProcessingError("unknown_purchase", f"no purchase {event.refund_of!r}")
        member = self._refund_member(conn, event, original.member_ref)
        # An erased member's refund is recorded under the tombstone, never the reference
        # sent (that would link the two), and announces no webhook event (the erasure
        # stopped the member's: one naming the refunded purchase would link them too).
        loud = member == event.member
        event = event.model_copy(update={"member": member})
        assert event.refund_of is not None and event.amount is not None
        try:
            check_refund_time(original.occurred_at, event.at)
        except RefundError as exc:
            raise ProcessingError(exc.code, str(exc)) from None
        # books: a refund of an erased member's purchase (after the erasure) is taken
        # from the anonymised account; a refund naming a tombstone is refused (the lock's
        # member_erased), since only the purchase's former reference may be sent
        try:
            self.ledger.lock(conn, self.program.id, event.member, books=not loud)
        except Rejected as rejected:
            if not loud or rejected.code is not RejectionCode.UNKNOWN_MEMBER:
                raise
            # the purchase's member was erased while we waited for the lock (PostgreSQL):
            # the purchase is the erased member's now; the refund is taken as after that
            return self._refund(conn, event)
        if self._recorded(conn, event.id):  # a copy sent at once committed while we waited
            return Result(event.id, Outcome.duplicate)
        self._apply_due(conn, event.member, self._tier_state(conn, event.member), event.at,
                        announce=loud)  # fmt: skip
        # The member's activity as it stood: the levels later events were evaluated on
        # (a tier bonus the refund's undoing of an upgrade denies them is taken back).
        before = self._event_activities(conn, event.member) if self._bonus_may_go() else None
        # The tier history played with the refunded part: a refund that changes none of
        # it changes none of the member's tier dates.
        refunded = before
        if (
            refunded is None
            and self.program.tiers is not None
            and self.program.refunds.reevaluate_tier
        ):
            refunded = self._event_activities(conn, event.member)
        # Read again under the lock: a refund of the same purchase committed meanwhile
        # has moved refunded_amount, and both the over-refund check and "refunded in
        # full" (member.purchases) must see it, or two concurrent full refunds would
        # both pass and count the purchase out twice.
        original = self._purchase_row(conn, event.refund_of)
        assert original is not None  # processed events are never deleted
        # What the ledger says is reversed of each earn (refunds and an operator's
        # ``ledger reverse``); ``reversed`` counts the refunds' only: the rest is gone
        # already, and the refunds share out what is left (engine.refund).
        on_ledger = (
            select(text("reversed_points"))
            .select_from(text("ledger_transactions"))
            .where(text("ledger_transactions.id = event_earnings.transaction_id"))
            .scalar_subquery()
        )
        rows = conn.execute(
            select(earnings, on_ledger.label("on_ledger"))
            .where(
                earnings.c.program_id == self.program.id,
                earnings.c.event_id == event.refund_of,
            )
            .order_by(earnings.c.currency)
        ).all()
        # The tier bonus refunds of earlier purchases took back of it (in ``reversed``).
        taken = self._bonus_taken(conn, event.member) if any(r.reversed for r in rows) else {}
        earned = [
            EarnedTransaction(
                str(r.transaction_id),
                r.currency,
                r.points,
                r.reversed,
                taken_otherwise=max(int(r.on_ledger) - r.reversed, 0),
                bonus_taken=taken.get((event.refund_of, r.currency), 0),
            )
            for r in rows
        ]
        try:
            reversals = refund_reversals(
                Decimal(original.amount), Decimal(original.refunded_amount), event.amount, earned,
                refunded_whole=bool(original.refunded_whole),
            )  # fmt: skip
        except RefundError as exc:
            raise ProcessingError(exc.code, str(exc)) from None
        receipts = [
            self.ledger.reverse(
                self.program.id,
                int(r.transaction_id),
                key=f"refund:{event.id}:{r.transaction_id}",
                points=r.points,
                shortfall=self.program.refunds.shortfall.value,
                at=event.at,
                reason=f"refund {event.id} of {event.refund_of}",
                policy=self.program.expiry,
                zone=self.program.zone,
                conn=conn,
                books=not loud,  # as the lock above: the erased account's earlier purchase
            )
            for r in reversals
        ]
        trace = [reversal_line(r.transaction_id, r.currency, r.points, receipt)
                 for r, receipt in zip(reversals, receipts, strict=True)]  # fmt: skip
        self._record_event(conn, event, trace, None)
        for r, receipt in zip(reversals, receipts, strict=True):
            if not loud:
                break
            self._announce(conn, hooks.POINTS_REVERSED, event.member, {
                "currency": r.currency, "points": receipt.points,
                "transaction_id": receipt.transaction_id,
                "reverses_transaction_id": int(r.transaction_id), "event_id": event.id,
                "refund_of": event.refund_of, "written_off": receipt.written_off,
                "debt_added": receipt.debt_added, "already_expired": receipt.already_expired,
                "occurred_at": event.at.isoformat(),
            })  # fmt: skip
        conn.execute(
            update(events)
            .where(events.c.program_id == self.program.id, events.c.event_id == event.refund_of)
            .values(refunded_amount=events.c.refunded_amount + event.amount)
        )
        refunded_before, paid = Decimal(original.refunded_amount), Decimal(original.amount)
        # Checked above: not refunded in full before. A purchase of 0 is by its refund of 0.
        in_full = paid <= refunded_before + event.amount
        if in_full:
            self._set_member(conn, event.member, purchases=member_states.c.purchases - 1)
        self._give_back(conn, event, original.occurred_at, paid, refunded_before)
        if in_full:  # after the budget locks, as an event presenting the code takes them
            self._roll_back_coupon(conn, event, announce=loud)
        for r in reversals:
            conn.execute(
                update(earnings)
                .where(
                    earnings.c.program_id == self.program.id,
                    earnings.c.event_id == event.refund_of,
                    earnings.c.currency == r.currency,
                )
                .values(reversed=earnings.c.reversed + r.points)
            )
        view: _TierView | None = None
        if before is not None:
            # the purchase's activity as the refund leaves it (as the store now reads it)
            back = sum(r.points for r in reversals)
            after = [
                a if event_id != event.refund_of else activity(
                    PURCHASE, a.at, paid, refunded_before + event.amount, a.points - back,
                    refunded_whole=in_full)
                for event_id, a in before
            ]  # fmt: skip
            view = self._tier_view(conn, event.member)
            taken_back: list[tuple[dict[str, Any], Receipt | None]] = []
            if view is not None:
                view = replace(view, activities=[a for a in after if a is not None])
                taken_back, view = self._take_back_bonus(
                    conn,
                    event,
                    original.occurred_at,
                    [a for _, a in before],
                    view,
                    announce=loud,
                )
            if taken_back:
                receipts += [receipt for _, receipt in taken_back if receipt is not None]
                conn.execute(
                    update(events)
                    .where(events.c.program_id == self.program.id, events.c.event_id == event.id)
                    .values(trace=trace + [line for line, _ in taken_back])
                )
        changes = self._after_refund(
            conn, event, original.occurred_at, announce=loud, known=view,
            refunded=None if refunded is None else [a for _, a in refunded],
        )  # fmt: skip
        return Result(event.id, Outcome.processed, None, receipts, changes)

    def _bonus_may_go(self) -> bool:
        """Whether a refund may take back a tier bonus of later events: the program
        re-evaluates tiers on a refund and a level has an ``earn_multiplier`` above 1."""
        policy = self.program.tiers
        return (policy is not None and self.program.refunds.reevaluate_tier
                and any(level.earn_multiplier > 1 for level in policy.levels))  # fmt: skip

    def _bonus_taken(self, conn: Connection, member_ref: str) -> dict[tuple[str, str], int]:
        """The tier bonus the member's refunds took back, per (event id, currency)."""
        return bonus_taken_of(self._refund_traces(conn, member_ref))

    def _refund_traces(self, conn: Connection, member_ref: str) -> list[Any]:
        """The traces of the member's refunds."""
        return list(
            conn.execute(
                select(events.c.trace).where(
                    events.c.program_id == self.program.id,
                    events.c.member_ref == member_ref,
                    events.c.type == REFUND,
                )
            ).scalars()
        )

    def _later_events(
        self,
        conn: Connection,
        member_ref: str,
        since: datetime,
        purchase: str,
        pending: dict[int, int],
    ) -> list[Later]:
        """The member's events dated at or after ``since`` (but ``purchase``) that earned
        a tier bonus, with their earn transactions (``pending``: points reversed of them
        in this transaction, not on the ledger yet)."""
        on_ledger = (
            select(text("reversed_points"))
            .select_from(text("ledger_transactions"))
            .where(text("ledger_transactions.id = event_earnings.transaction_id"))
            .scalar_subquery()
        )
        rows = conn.execute(
            select(events.c.event_id, events.c.occurred_at, events.c.type, events.c.amount,
                   events.c.refunded_amount, events.c.trace,
                   refunded_whole().label("refunded_whole"))
            .where(
                events.c.program_id == self.program.id,
                events.c.member_ref == member_ref,
                events.c.type != REFUND,
                events.c.occurred_at >= since,
                events.c.event_id != purchase,
            )
            .order_by(events.c.occurred_at, events.c.event_id)
        ).all()  # fmt: skip
        boosted = [r for r in rows if any(str(line.get("rule", "")).startswith("tier:")
                                          for line in r.trace or [])]  # fmt: skip
        if not boosted:
            return []
        earned: dict[str, dict[str, Earned]] = {}
        for part in range(0, len(boosted), 500):
            ids = [r.event_id for r in boosted[part : part + 500]]
            for e in conn.execute(
                select(earnings, on_ledger.label("on_ledger")).where(
                    earnings.c.program_id == self.program.id, earnings.c.event_id.in_(ids)
                )
            ):
                tx = int(e.transaction_id)
                earned.setdefault(e.event_id, {})[e.currency] = Earned(
                    tx, int(e.points), int(e.reversed), int(e.on_ledger) + pending.get(tx, 0)
                )
        return [
            Later(r.event_id, r.occurred_at, r.trace, earned.get(r.event_id, {}),
                  None if r.type != PURCHASE else Decimal(r.amount),
                  Decimal(r.refunded_amount or 0), bool(r.refunded_whole))
            for r in boosted
        ]  # fmt: skip

    def _take_back_bonus(
        self,
        conn: Connection,
        event: Event,
        purchase_at: datetime,
        before: Sequence[Activity],
        view: _TierView,
        *,
        announce: bool,
    ) -> tuple[list[tuple[dict[str, Any], Receipt | None]], _TierView]:
        """Take back the tier bonus later events earned on a level the refund undoes
        (:mod:`fidelite.engine.tier_bonus`): one ledger reversal per earn transaction
        (key ``tier-bonus:<refund id>:<transaction>``, under the refund's shortfall
        policy), its points counted as reversed of the event (its net points, its later
        refunds' share). Under a points metric, the bonus taken back lowers the member's
        points, which may undo more: the history is played again until nothing more is
        taken. The refund's trace lines for them, with their receipts (None: no point
        to take, the event refunded in full already), and ``view`` with the member's
        activity as they leave it. ``view.activities``: as the refund leaves it."""
        policy = self.program.tiers
        assert policy is not None and event.refund_of is not None
        assert view.activities is not None

        def levels(activities: Sequence[Activity]) -> Any:
            return refund_levels(policy, view.state, activities, purchase_at, event.at,
                                 self.program.zone, view.assignments,
                                 held_threshold=view.held)  # fmt: skip

        was = levels(before)
        now = None if was is None else levels(view.activities)
        if was is None or now is None or not was.differs_from(now, purchase_at):
            return [], view  # the refund lowers no level an event had: nothing to read
        rank = {level.id: i for i, level in enumerate(policy.levels)}

        def bonus(tier: str, currency: str, base: int) -> int:
            line = self.evaluator.tier_line(tier, currency, base)
            return 0 if line is None else line.points

        traces = self._refund_traces(conn, event.member)
        taken = bonus_taken_of(traces)
        held = levels_held(traces, rank)  # by earlier refunds: fixed while this one runs
        pending: dict[int, int] = {}  # transaction: points taken back, not yet posted
        found: dict[int, BonusReversal] = {}
        while True:
            later = self._later_events(conn, event.member, purchase_at, event.refund_of, pending)
            if not later:
                break
            later = [replace(e, bonus_taken={c: taken.get((e.event_id, c), 0) for c in e.earned},
                             holds={c: held[e.event_id, c] for c in e.earned
                                    if (e.event_id, c) in held})
                     for e in later]  # fmt: skip
            more = [] if now is None else bonus_reversals(later, was, now, bonus, rank)
            if not more:
                break
            for r in more:
                key = (r.event_id, r.currency)
                taken[key] = taken.get(key, 0) + r.bonus
                pending[r.transaction_id] = pending.get(r.transaction_id, 0) + r.points
                prior = found.get(r.transaction_id)
                found[r.transaction_id] = r if prior is None else replace(
                    r, points=prior.points + r.points, bonus=prior.bonus + r.bonus, tier=prior.tier
                )  # fmt: skip
                if r.points:
                    conn.execute(
                        update(earnings)
                        .where(earnings.c.program_id == self.program.id,
                               earnings.c.event_id == r.event_id,
                               earnings.c.currency == r.currency)
                        .values(reversed=earnings.c.reversed + r.points)
                    )  # fmt: skip
            if policy.metric is not TierMetric.points:
                break  # the bonus counts in no other metric
            activities = self._activities(conn, event.member)
            view = replace(view, activities=activities)
            now = levels(activities)
        done: list[tuple[dict[str, Any], Receipt | None]] = []
        for r in sorted(found.values(), key=lambda r: r.transaction_id):
            receipt = None
            if r.points:
                try:
                    receipt = self.ledger.reverse(
                        self.program.id,
                        r.transaction_id,
                        key=f"tier-bonus:{event.id}:{r.transaction_id}",
                        points=r.points,
                        shortfall=self.program.refunds.shortfall.value,
                        at=event.at,
                        reason=f"refund {event.id} of {event.refund_of}: tier {r.tier} bonus "
                        f"of {r.event_id} ({r.now} at its date)",
                        policy=self.program.expiry,
                        zone=self.program.zone,
                        conn=conn,
                        books=not announce,
                    )
                except Rejected as refused:  # say which bonus: not the refunded purchase's
                    raise Rejected(
                        refused.code,
                        f"the refund undoes {r.tier}, so it takes back the {r.tier} bonus of "
                        f"{r.event_id} (transaction {r.transaction_id}): {refused.message}",
                        field=refused.field,
                        detail=refused.detail,
                    ) from None
            line: dict[str, Any] = {
                "transaction_id": r.transaction_id, "currency": r.currency,
                "points": r.points,
                "written_off": 0 if receipt is None else receipt.written_off,
                "debt_added": 0 if receipt is None else receipt.debt_added,
                TIER_BONUS: r.event_id, "bonus": r.bonus, "tier": r.tier, "now": r.now,
            }  # fmt: skip
            if receipt is not None and receipt.already_expired:
                line["already_expired"] = receipt.already_expired
            done.append((line, receipt))
            if announce and receipt is not None:
                self._announce(conn, hooks.POINTS_REVERSED, event.member, {
                    "currency": r.currency, "points": receipt.points,
                    "transaction_id": receipt.transaction_id,
                    "reverses_transaction_id": r.transaction_id, "event_id": event.id,
                    "refund_of": event.refund_of, TIER_BONUS: r.event_id,
                    "written_off": receipt.written_off, "debt_added": receipt.debt_added,
                    "already_expired": receipt.already_expired,
                    "occurred_at": event.at.isoformat(),
                })  # fmt: skip
        return done, view

    def _roll_back_coupon(self, conn: Connection, event: Event, *, announce: bool) -> None:
        """Give back the single-use code the purchase refunded in full used: it is
        ``issued`` again (usable while its campaign is valid), and the rollback is
        recorded in ``coupon_rollbacks`` (once per purchase: its primary key) and
        announced (``coupon.restored``, in this same transaction, so it is written if and
        only if the rollback commits; not for an erased member's purchase, ``announce``
        False, as none of the refund's events are).

        The use stays on the purchase's record (``coupon``, ``coupon_accepted``), so the
        coupon's effectiveness still counts the purchase, and its refund. Only a code
        still used by this purchase is given back. Its row is locked after the member and
        the budgets, in the order an event presenting the code takes them (no deadlock
        with one). Refunded in part, the purchase keeps it."""
        assert event.refund_of is not None
        pid = self.program.id
        used = conn.execute(
            select(events.c.coupon).where(events.c.program_id == pid,
                                          events.c.event_id == event.refund_of,
                                          events.c.coupon_accepted == 1)
        ).scalar_one_or_none()  # fmt: skip
        if used is None:
            return
        found = conn.execute(
            select(coupons.c.code, coupons.c.campaign)
            .where(coupons.c.program_id == pid, coupons.c.code == used,
                   coupons.c.used_event_id == event.refund_of, coupons.c.status == "used")
            .with_for_update()
        ).one_or_none()  # fmt: skip
        if found is None:
            return
        code = found.code
        conn.execute(
            update(coupons)
            .where(coupons.c.program_id == self.program.id, coupons.c.code == code)
            .values(status="issued", used_event_id=None)
        )
        conn.execute(
            insert(coupon_rollbacks),
            {"program_id": self.program.id, "purchase_event_id": event.refund_of, "code": code,
             "refund_event_id": event.id, "rolled_back_at": event.at,
             "recorded_at": datetime.now(UTC)},
        )  # fmt: skip
        if announce:
            self._announce(conn, hooks.COUPON_RESTORED, event.member, {
                "code": code, "campaign": found.campaign, "event_id": event.id,
                "refund_of": event.refund_of, "occurred_at": event.at.isoformat(),
            })  # fmt: skip

    def _give_back(
        self,
        conn: Connection,
        event: Event,
        purchase_at: datetime,
        paid: Decimal,
        refunded_before: Decimal,
    ) -> None:
        """Give back, in proportion, what the purchase used of per-member caps and campaign
        budgets (:func:`~fidelite.engine.refund.counters_given_back`), under the budgets'
        locks as a writer that spends them takes them (after the member lock)."""
        if not any(r.cap_per_member or r.budget for r in self.program.rules):
            return
        assert event.refund_of is not None and event.amount is not None
        trace = conn.execute(
            select(events.c.trace).where(
                events.c.program_id == self.program.id, events.c.event_id == event.refund_of
            )
        ).scalar_one()
        back = counters_given_back(self.program.rules, trace, purchase_at, self.program.zone,
                                   paid, refunded_before, event.amount)  # fmt: skip
        self._subtract_counters(conn, event.member, back)

    def _subtract_counters(self, conn: Connection, member_ref: str, back: CountersBack) -> None:
        pid = self.program.id
        lock_shared(conn, *(f"budget:{pid}:{rule}" for rule in back.budgets))
        # Never below 0: the program may have changed the rule since the purchase.
        for use in back.usage:
            points = rule_usage.c.points
            conn.execute(
                update(rule_usage)
                .where(rule_usage.c.program_id == pid, rule_usage.c.member_ref == member_ref,
                       rule_usage.c.rule_id == use.rule, rule_usage.c.period == use.period)
                .values(points=case((points > use.points, points - use.points), else_=0))
            )  # fmt: skip
        for rule_id, spent in sorted(back.budgets.items()):
            used = rule_budgets.c.used
            conn.execute(
                update(rule_budgets)
                .where(rule_budgets.c.program_id == pid, rule_budgets.c.rule_id == rule_id)
                .values(used=case((used > spent, used - spent), else_=0))
            )

    # ----------------------------------------------------------------- coupons

    def issue_coupons(
        self,
        campaign_id: str,
        count: int,
        *,
        at: datetime,
        member_ref: str | None = None,
        conn: Connection | None = None,
        progress: Callable[[int, int], None] | None = None,
        warnings: list[str] | None = None,
    ) -> list[str]:
        """Generate ``count`` new single-use codes of a campaign and store them.

        ``member_ref``: the codes are that member's (an enrolled member); only they may
        use them. All codes are stored in one transaction, or none: given ``conn``, the
        caller's, so it can deliver the codes (write a file, store an API answer) before
        committing and never have codes stored that nobody received. ``progress(done,
        total)`` is called as the codes are written. Refusals: ``unknown_campaign``,
        ``invalid_count`` (1 to :data:`MAX_COUPONS`), ``campaign_ended`` (its window
        closed by ``at``: its codes could never be used), ``unknown_member``.

        Codes for a member in none of the campaign's segments are issued (segments
        change: the members import replaces them), with a warning appended to
        ``warnings`` naming the member, the campaign's segments and theirs: the codes
        are refused at the till until the member is in one of them.
        """
        campaign = next((c for c in self.program.coupons if c.id == campaign_id), None)
        if campaign is None:
            known = ", ".join(c.id for c in self.program.coupons) or "none"
            message = f"no coupon campaign {campaign_id!r} (campaigns: {known})"
            raise ProcessingError("unknown_campaign", message)
        if not 1 <= count <= MAX_COUPONS:
            raise ProcessingError("invalid_count", f"count: {count} is not between 1 and "
                                  f"{MAX_COUPONS:,} codes")  # fmt: skip
        end = campaign.window.end if campaign.window is not None else None
        if end is not None and at >= end:
            raise ProcessingError("campaign_ended", f"campaign {campaign.id!r} ended "
                                  f"{end.astimezone(UTC).isoformat()} (its window's end): its "
                                  "codes could never be used; no code issued")  # fmt: skip
        if conn is None:
            with self.db.write() as own:
                return self._issue(own, campaign, count, at, member_ref, progress, warnings)
        return self._issue(conn, campaign, count, at, member_ref, progress, warnings)

    def _issue(
        self,
        conn: Connection,
        campaign: CouponCampaign,
        count: int,
        at: datetime,
        member_ref: str | None,
        progress: Callable[[int, int], None] | None,
        warnings: list[str] | None,
    ) -> list[str]:
        campaign_id, prefix = campaign.id, campaign.prefix
        if member_ref is not None:
            self._lock_known(conn, member_ref)
            if campaign.segments:
                held = conn.execute(
                    select(member_states.c.segments).where(
                        member_states.c.program_id == self.program.id,
                        member_states.c.member_ref == member_ref,
                    )
                ).scalar_one_or_none()
                if not set(held or []).intersection(campaign.segments) and warnings is not None:
                    mine = ", ".join(held or []) or "none"
                    warnings.append(
                        f"member {member_ref!r} is in none of the segments of campaign "
                        f"{campaign_id!r} ({', '.join(campaign.segments)}; theirs: {mine}): "
                        "the codes are refused at the till until the member is in one of "
                        "them (e.g. by a members import)"
                    )
        codes: list[str] = []
        seen: set[str] = set()
        while len(codes) < count:  # a chunk at a time, so progress covers generating too
            fresh = generate_codes(prefix, min(_COUPON_CHUNK, count - len(codes)))
            chunk = [code for code in fresh if code not in seen]  # distinct across chunks
            seen.update(chunk)
            conn.execute(
                insert(coupons),
                [
                    {"program_id": self.program.id, "code": code, "campaign": campaign_id,
                     "status": "issued", "member_ref": member_ref, "created_at": at}
                    for code in chunk
                ],
            )  # fmt: skip
            codes += chunk
            if progress is not None:
                progress(len(codes), count)
        return codes

    # ------------------------------------------------------------------- tiers

    def review_tiers(
        self,
        as_of: datetime,
        *,
        progress: Callable[[int, int], None] | None = None,
        stop: Callable[[], bool] | None = None,
        committed: Callable[[str, list[TierChange]], None] | None = None,
    ) -> list[tuple[str, TierChange]]:
        """The daily job: apply every re-qualification due by ``as_of`` (safe to re-run).

        Due: a re-qualification date, the end of a grace period or of a manual
        assignment at or before ``as_of``. Each member is reviewed in a transaction of
        their own, under their lock (an event of theirs applied meanwhile is not lost),
        from the state read under it: a step applied already has moved its date past
        ``as_of``, so running the job again, or two at once, applies nothing twice.
        ``progress(done, total)`` is called after each member, ``committed(member,
        changes)`` once their transaction is committed (every member reviewed, changes
        or none); ``stop()`` is asked before each member: true, the job stops there and
        returns the changes committed so far (a later run applies the rest).
        """
        policy = self.program.tiers
        if policy is None:
            return []
        # a member on a level the program no longer has is moved now, whatever is due
        levels = [level.id for level in policy.levels]
        # the member's next step (:func:`due_at`: an assignment's end, else a grace
        # period's, else the re-qualification date) is due: not merely a past review_at,
        # which a grace period keeps (the date it started from) until it ends
        next_step = func.coalesce(member_states.c.assigned_until, member_states.c.grace_until,
                                  member_states.c.review_at)  # fmt: skip
        due = or_(next_step <= as_of, member_states.c.tier.not_in(levels),
                  member_states.c.tier.is_(None))  # fmt: skip
        with self.db.read() as conn:
            refs = list(
                conn.execute(
                    select(member_states.c.member_ref)
                    .where(member_states.c.program_id == self.program.id, due)
                    .order_by(member_states.c.member_ref)
                ).scalars()
            )
        done: list[tuple[str, TierChange]] = []
        for index, ref in enumerate(refs):
            if stop is not None and stop():
                break
            before = len(done)
            with self.db.write() as conn:
                erased = self._lock_for_job(conn, ref)
                # the tier columns alone (not the rule usage an event's rules read)
                state = None if erased is None else self._tier_state(conn, ref)
                if state is None and erased is not None and self._ladderless(conn, ref):
                    entered = self._enter_ladder(conn, ref, as_of, announce=not erased)[1]
                    done.append((ref, entered))
                elif state is not None:
                    activities = self._activities(conn, ref)
                    made = self._assignments(conn, ref) if state.assigned_until else []
                    new, changes = review(policy, state, activities, as_of, self.program.zone,
                                          made)  # fmt: skip
                    self._save_tier(conn, ref, new, changes, None, announce=not erased)
                    done += [(ref, change) for change in changes]
            if committed is not None:
                committed(ref, [change for _, change in done[before:]])
            if progress is not None:
                progress(index + 1, len(refs))
        return done

    def _apply_due(
        self,
        conn: Connection,
        ref: str,
        state: TierState | None,
        at: datetime,
        *,
        announce: bool = True,
    ) -> TierState | None:
        """Apply the member's tier steps due at or before ``at`` (the member locked by the
        caller), before anything is decided for them at ``at``: an event, a refund, a
        redemption or an assignment. The daily job's :func:`review`, its timeline entries
        (no event id) and webhook events, in the caller's transaction: what the job would
        have written had it run in time, which it then finds done. Returns the state the
        steps leave. A program without a tier ladder (its ``tiers:`` removed since the
        member reached a level) moves the member to no tier (:meth:`_leave_ladder`)."""
        policy = self.program.tiers
        if state is None:
            if policy is None or not self._ladderless(conn, ref):
                return state
            return self._enter_ladder(conn, ref, at, announce=announce)[0]
        if policy is None:
            self._leave_ladder(conn, ref, state, at, announce=announce)
            return None
        due = due_at(state)
        if (due is None or at < due) and not retired(policy, state):
            return state
        activities = self._activities(conn, ref)
        made = self._assignments(conn, ref) if state.assigned_until else []
        new, changes = review(policy, state, activities, at, self.program.zone, made)
        self._save_tier(conn, ref, new, changes, None, announce=announce)
        return new

    def _leave_ladder(
        self, conn: Connection, ref: str, state: TierState, at: datetime, *, announce: bool
    ) -> TierChange:
        """The program has no tier ladder any more: the member's level is one it no
        longer has, and no level is left to move them to. Moved at ``at`` to no tier
        (``member.tier`` ``""`` in rules), as :func:`~fidelite.engine.tiers.leave_retired`
        moves a member off a removed level: a ``downgrade`` entry (to ``""``, value 0)
        whose reason names the removed level."""
        reason = f"level {state.tier} is no longer in the program; the program has no tiers"
        change = TierChange(at, ChangeKind.downgrade, state.tier, "", Decimal(0), reason)
        self._save_tier(conn, ref, None, [change], None, announce=announce)
        return change

    def _enter_ladder(
        self, conn: Connection, ref: str, at: datetime, *, announce: bool
    ) -> tuple[TierState, TierChange]:
        """Put a member with no level on the program's ladder at ``at``
        (:func:`~fidelite.engine.tiers.enter_ladder`: the level their qualifying value
        reaches, the base one at least, with an ``upgrade`` entry from no tier)."""
        policy = self.program.tiers
        assert policy is not None
        activities = self._activities(conn, ref)
        state, change = enter_ladder(policy, activities, at, self.program.zone)
        self._save_tier(conn, ref, state, [change], None, announce=announce)
        return state, change

    def _ladderless(self, conn: Connection, ref: str) -> bool:
        """Whether the member is enrolled in the program with no level: enrolled while
        it had no tiers, or moved off a ladder since removed (:meth:`_apply_due` puts
        them on the one it has now)."""
        tier = conn.execute(
            select(member_states.c.tier)
            .where(member_states.c.program_id == self.program.id,
                   member_states.c.member_ref == ref)
        ).one_or_none()  # fmt: skip
        return tier is not None and tier.tier is None

    def _tier_state(self, conn: Connection, ref: str) -> TierState | None:
        """The member's tier state (None: no program state, or no tier). Read even when
        the program has no tiers: a level kept from a removed ladder is left at the
        member's next step (:meth:`_apply_due`)."""
        row = conn.execute(
            select(member_states.c.tier, member_states.c.tier_since, member_states.c.review_at,
                   member_states.c.grace_until, member_states.c.assigned_until)
            .where(member_states.c.program_id == self.program.id,
                   member_states.c.member_ref == ref)
        ).one_or_none()  # fmt: skip
        if row is None or row.tier is None or row.tier_since is None:
            return None
        return TierState(row.tier, row.tier_since, row.review_at, row.grace_until,
                         row.assigned_until)  # fmt: skip

    def _lock_for_job(self, conn: Connection, ref: str) -> bool | None:
        """Take the member's lock for a daily job; True if the member is erased. The job
        keeps an erased member's books as any other's, but announces nothing about it:
        the erasure stopped its webhook events, and a new one would name the tombstone.
        None: no member holds ``ref`` any more, erased since the job listed it (or while
        it waited for the lock): the job leaves it, its next run finds the tombstone."""
        try:
            self.ledger.lock(conn, self.program.id, ref)
        except Rejected as rejected:
            if rejected.code is RejectionCode.UNKNOWN_MEMBER:
                return None
            if rejected.code is not RejectionCode.MEMBER_ERASED:
                raise
            self.ledger.lock(conn, self.program.id, ref, books=True)
            return True
        return False

    def assign_tier(
        self,
        member_ref: str,
        tier: str,
        *,
        at: datetime,
        until: datetime,
        reason: str,
        conn: Connection | None = None,
    ) -> TierChange:
        """Put an enrolled member on ``tier`` by hand until ``until`` (on the timeline
        with ``reason``). No re-qualification before ``until``; at ``until`` the daily
        job gives them the level their value qualifies for; an event that qualifies them
        for a higher level upgrades them at once, as usual.

        Given ``conn``, runs in the caller's transaction (e.g. with the stored answer of
        an API request). Refusals: ``no_tiers``, ``unknown_member``, ``unknown_tier``,
        ``invalid_assignment`` (``until`` not after ``at``, an empty reason).
        """
        policy = self.program.tiers
        if policy is None:
            raise ProcessingError("no_tiers", "this program has no tiers")
        known = [level.id for level in policy.levels]
        if tier not in known:
            raise ProcessingError("unknown_tier",
                                  f"no tier {tier!r} (tiers: {', '.join(known)})")  # fmt: skip
        if not reason.strip():
            raise ProcessingError("invalid_assignment", "reason: must not be empty")
        if until <= at:
            raise ProcessingError("invalid_assignment", f"until: {until.isoformat()} is not "
                                  f"after the assignment's start {at.isoformat()}")  # fmt: skip
        if conn is None:
            with self.db.write() as own:
                return self._assign(own, member_ref, tier, at, until, reason)
        return self._assign(conn, member_ref, tier, at, until, reason)

    def _assign(
        self, conn: Connection, member_ref: str, tier: str, at: datetime, until: datetime,
        reason: str,
    ) -> TierChange:  # fmt: skip
        policy = self.program.tiers
        assert policy is not None
        self._lock_known(conn, member_ref)
        self._ensure_member(conn, member_ref, at)  # e.g. enrolled in the ledger alone
        _, state = self._member_state(conn, member_ref)
        state = self._apply_due(conn, member_ref, state, at)
        current = state or TierState(policy.levels[0].id, at)
        activities = self._activities(conn, member_ref)
        new, change = assign(policy, current, tier, at, until, reason.strip(),
                             activities=activities, zone=self.program.zone)  # fmt: skip
        self._save_tier(conn, member_ref, new, [change], None, assigned_until=until)
        return change

    # ------------------------------------------------------------- redemptions

    def redeem(
        self, member_ref: str, reward_id: str, *, key: str, at: datetime, actor: str | None = None
    ) -> Redemption:
        """Spend a reward's cost and issue its code, or raise with a rejection code.

        One transaction: the member is locked, then (for a reward with stock) the
        reward, so the counts checked are the counts the redemption adds to — two
        members cannot both take the last item. Idempotent on ``key``: a retry returns
        the first redemption. Checks run in the fixed precedence of
        :class:`RedemptionRejection`; the ledger's spend is the final guard on the balance.
        ``actor`` (who redeemed: ``api-key:<id>``) is kept on the spend transaction.
        """
        try:
            with self.db.write() as conn:
                return self._redeem(conn, member_ref, reward_id, key, at, actor)
        except IntegrityError:  # a concurrent retry with the same key committed first
            with self.db.read() as conn:
                previous = self._redemption_by_key(conn, key)
            if previous is None:
                raise
            return self._replayed(previous, member_ref, reward_id)

    def _redeem(
        self, conn: Connection, member_ref: str, reward_id: str, key: str, at: datetime,
        actor: str | None = None,
    ) -> Redemption:  # fmt: skip
        reward = self.program.reward(reward_id)
        currency = self.program.currency_of(reward.currency if reward else None)
        previous = self._redemption_by_key(conn, key)
        if previous is not None:
            return self._replayed(previous, member_ref, reward_id)
        self.ledger.lock(conn, self.program.id, member_ref)
        if reward is not None and reward.stock is not None:
            lock_shared(conn, f"stock:{self.program.id}:{reward_id}")
        previous = self._redemption_by_key(conn, key)  # committed while we waited
        if previous is not None:
            return self._replayed(previous, member_ref, reward_id)
        self._apply_due(conn, member_ref, self._tier_state(conn, member_ref), at)
        tier = conn.execute(
            select(member_states.c.tier).where(
                member_states.c.program_id == self.program.id,
                member_states.c.member_ref == member_ref,
            )
        ).scalar_one_or_none()
        active = and_(
            redemptions.c.program_id == self.program.id,
            redemptions.c.reward_id == reward_id,
            redemptions.c.status == "active",
        )
        total = conn.execute(select(func.count()).where(active)).scalar_one()
        mine = conn.execute(
            select(func.count()).where(active, redemptions.c.member_ref == member_ref)
        ).scalar_one()
        # Read in this transaction: the member is locked, so it is the balance we spend from
        # (without points lapsed by inactivity at `at`, even if not yet expired by the job).
        policy, zone = self.program.expiry, self.program.zone
        balance = self.ledger.balance(self.program.id, member_ref, currency, as_of=at,
                                      policy=policy, zone=zone, conn=conn)  # fmt: skip
        available = balance.available
        rejection = check_redemption(
            self.program, reward_id, tier=tier, available_points=available,
            redeemed_total=int(total), redeemed_by_member=int(mine), at=at,
        )  # fmt: skip
        if rejection is not None and rejection is not RedemptionRejection.insufficient_points:
            why = refusal_cause(rejection, reward_id, member_ref, tier, int(mine), self.program)
            raise ProcessingError(rejection.value, f"cannot redeem {reward_id!r}: {why}")
        assert reward is not None
        try:  # short of points: the spend refuses, naming what is available and what lapsed
            receipt = self.ledger.spend(
                self.program.id, member_ref, currency, reward.cost, key=f"redeem:{key}", at=at,
                reason=f"reward {reward_id}", source=reward_id, policy=policy, zone=zone,
                conn=conn, actor=actor,
            )  # fmt: skip
        except Rejected as short:
            if short.code is not RejectionCode.INSUFFICIENT_POINTS:
                raise
            raise ProcessingError(RedemptionRejection.insufficient_points.value,
                                  f"cannot redeem {reward_id!r}: {short.message}",
                                  detail=short.detail) from None  # fmt: skip
        assert rejection is None, "the spend refuses what the balance read refused"
        conn.execute(
            insert(redemptions),
            {
                "program_id": self.program.id,
                "member_ref": member_ref,
                "reward_id": reward_id,
                "key": key,
                "points": reward.cost,
                "transaction_id": receipt.transaction_id,
                "code": generate_codes("RW", 1)[0],
                "status": "active",
                "redeemed_at": at,
            },
        )
        created = self._redemption(conn, receipt.transaction_id)
        assert created is not None
        self._announce(conn, hooks.POINTS_SPENT, member_ref, {
            "currency": currency, "points": reward.cost,
            "transaction_id": receipt.transaction_id, "reason": f"reward {reward_id}",
            "occurred_at": at.isoformat(),
        })  # fmt: skip
        self._announce(conn, hooks.REWARD_REDEEMED, member_ref, {
            "redemption_id": created.id, "reward_id": reward_id, "points": reward.cost,
            "currency": currency, "code": created.code, "redeemed_at": at.isoformat(),
        })  # fmt: skip
        return created

    def _redemption_by_key(self, conn: Connection, key: str) -> Redemption | None:
        done = conn.execute(
            select(redemptions.c.transaction_id).where(
                redemptions.c.program_id == self.program.id, redemptions.c.key == key
            )
        ).scalar_one_or_none()
        return None if done is None else self._redemption(conn, int(done))

    @staticmethod
    def _replayed(previous: Redemption, member_ref: str, reward_id: str) -> Redemption:
        """The first redemption under a key, if the retry asks for the same thing."""
        if (previous.member_ref, previous.reward_id) != (member_ref, reward_id):
            raise ProcessingError(
                "idempotency_conflict",
                f"key already used to redeem {previous.reward_id!r} for {previous.member_ref!r}",
            )
        return replace(previous, replayed=True)

    def cancel_redemption(
        self, redemption_id: int, *, at: datetime, actor: str | None = None
    ) -> Redemption:
        """Cancel a redemption: its points come back through a reversing entry.

        One transaction: the member is locked, the spend reversed (ledger key
        ``cancel-redemption:<id>``), the redemption marked cancelled (which frees its
        stock) and ``reward.cancelled`` announced; a failure anywhere leaves the
        redemption active and the points spent. Cancelling again returns the
        cancelled redemption and changes nothing, whatever ``at`` says; a redemption
        used in store is refused (``redemption_used``), changing nothing. ``actor`` (who
        cancelled) is kept on the reversing transaction.
        """
        with self.db.write() as conn:
            member_ref = conn.execute(
                select(redemptions.c.member_ref).where(
                    redemptions.c.program_id == self.program.id, redemptions.c.id == redemption_id
                )
            ).scalar_one_or_none()
            if member_ref is None:
                raise ProcessingError("unknown_redemption", f"no redemption {redemption_id}")
            self.ledger.lock(conn, self.program.id, member_ref, books=True)
            current = self._redemption_by_id(conn, redemption_id)  # as of the lock
            if current.status == "cancelled":
                return replace(current, replayed=True)
            from fidelite.processing.redemptions import refuse_if_used  # imports this module

            refuse_if_used(conn, redemption_id)  # handed over in store: no points back
            # its member as of the lock: erased while we waited (PostgreSQL), the tombstone
            member_ref = current.member_ref
            # a new cancellation gives points back: refused for an erased member
            self.ledger.lock(conn, self.program.id, member_ref)
            receipt = self.ledger.reverse(
                self.program.id, current.transaction_id, key=f"cancel-redemption:{redemption_id}",
                at=at, reason=f"redemption {redemption_id} cancelled", conn=conn, actor=actor,
            )  # fmt: skip
            conn.execute(
                update(redemptions)
                .where(redemptions.c.id == redemption_id, redemptions.c.status == "active")
                .values(status="cancelled", cancel_transaction_id=receipt.transaction_id)
            )
            rule = Inactivity.of(self.program.expiry, self.program.zone)
            lapse = self._lapse_at(conn, member_ref, receipt.currency, rule, at)
            if self._refilled_gone(conn, receipt.transaction_id, lapse):
                # Back in lots past their date, or lapsed by inactivity: expired in the
                # same transaction, as of the cancellation, as the expiry job would (its
                # entries, its keys): breakage, never spendable, and no crash can leave
                # them between the two.
                self._expire_gone(conn, member_ref, receipt.currency, rule, at)
            returned = self._returned(conn, receipt.transaction_id)
            self._announce(conn, hooks.REWARD_CANCELLED, member_ref, {
                "redemption_id": redemption_id, "reward_id": current.reward_id,
                "points": receipt.points, "currency": receipt.currency,
                **returned.as_dict(),
                "transaction_id": receipt.transaction_id, "cancelled_at": at.isoformat(),
            })  # fmt: skip
            done = self._redemption_by_id(conn, redemption_id)
        return done

    def _lapse_at(
        self,
        conn: Connection,
        member_ref: str,
        currency: str,
        rule: Inactivity | None,
        at: datetime,
    ) -> Lapse | None:
        """The member's inactivity lapse at ``at`` that still holds points in
        ``currency`` (``None``: no inactivity policy, or nothing lapsed), as the expiry
        job computes it under the member's lock."""
        if rule is None:
            return None
        member_id = conn.execute(_MEMBER_ID, {"p": self.program.id, "r": member_ref}).scalar_one()
        return member_lapse(conn, self.program.id, int(member_id), member_ref, currency,
                            rule, at)  # fmt: skip

    def _refilled_gone(
        self, conn: Connection, cancel_transaction_id: int, lapse: Lapse | None
    ) -> bool:
        """Whether a cancellation put points back into a lot gone at its time: past its
        date, or earned at or before the last activity of ``lapse``, the member's
        inactivity lapse then."""
        for row in conn.execute(_REFILLED, {"t": cancel_transaction_id}):
            if row.expires_at is not None and row.expires_at <= row.occurred_at:
                return True
            if lapse is not None and row.earned_at <= lapse.last_activity:
                return True
        return False

    def _expire_gone(
        self,
        conn: Connection,
        member_ref: str,
        currency: str,
        rule: Inactivity | None,
        at: datetime,
    ) -> None:
        """Expire, as of ``at``, the member's lots past their date and lapsed by
        inactivity: one entry per lapse, earliest first, each naming the deadline its
        lots lapsed at (not the member's latest one), then whatever is left as the
        expiry job would expire it (nothing, normally)."""
        expire = self.ledger._expire_member
        if rule is not None:
            for _ in range(1000):  # a lapse per entry; bounded should a key ever replay
                done = expire(self.program.id, member_ref, currency, at, rule, conn=conn,
                              earliest=True)  # fmt: skip
                if done is None or done.replayed:
                    break
        expire(self.program.id, member_ref, currency, at, rule, conn=conn)

    @staticmethod
    def _lapsed_at(conn: Connection, cancel_transaction_id: int) -> dict[int, datetime]:
        """The deadline each lot lapsed at, per the expiry entries a cancellation wrote
        with it (the member's next transactions, under the same lock, at the same time,
        past any release of ended holds), from the books: lot id -> ``lapsed_at``."""
        found: dict[int, datetime] = {}
        for row in conn.execute(_SAME_TIME_MOVES, {"t": cancel_transaction_id}).all():
            if row.kind == "release":
                continue
            if row.kind != "expire":
                break
            detail = row.detail if isinstance(row.detail, dict) else {}
            lapsed_at = detail.get("lapsed_at")
            if not isinstance(lapsed_at, str):
                continue
            when = datetime.fromisoformat(lapsed_at).astimezone(UTC)
            for lot_id in conn.execute(_EXPIRED_LOTS, {"t": int(row.id)}).scalars():
                found.setdefault(int(lot_id), when)
        return found

    def _returned(self, conn: Connection, cancel_transaction_id: int) -> CancelReturn:
        """How the points a cancellation put back split between lots still valid at its
        time and lots already gone then, from the books: past their date (expired at
        it), or lapsed by inactivity, expired with the cancellation (at the deadline
        their lot lapsed at, as its expiry entry says: :meth:`_lapsed_at`)."""
        rows = conn.execute(_REFILLED, {"t": cancel_transaction_id}).all()
        total, detail = conn.execute(_CANCEL_ENTRY, {"t": cancel_transaction_id}).one()
        restored = int((detail or {}).get("written_off_restored", 0))
        lapsed = self._lapsed_at(conn, cancel_transaction_id) if rows else {}
        late: dict[datetime, int] = {}
        refilled = 0
        for row in rows:
            refilled += int(row.points)
            if row.expires_at is not None and row.expires_at <= row.occurred_at:
                late[row.expires_at] = late.get(row.expires_at, 0) + int(row.points)
            elif int(row.lot_id) in lapsed:
                gone = lapsed[int(row.lot_id)]
                late[gone] = late.get(gone, 0) + int(row.points)
        expired = sum(late.values())
        return CancelReturn(refilled - expired, expired, tuple(sorted(late.items())),
                            debt_repaid=int(total) - refilled - restored,
                            written_off_restored=restored)  # fmt: skip

    def _redemption_by_id(self, conn: Connection, redemption_id: int) -> Redemption:
        done = conn.execute(
            select(redemptions.c.transaction_id).where(redemptions.c.id == redemption_id)
        ).scalar_one()
        found = self._redemption(conn, int(done))
        assert found is not None
        return found

    def _redemption(self, conn: Connection, transaction_id: int) -> Redemption | None:
        row = conn.execute(
            select(redemptions).where(redemptions.c.transaction_id == transaction_id)
        ).one_or_none()
        if row is None:
            return None
        return self._with_returned(conn, _redemption_of(row))

    def _with_returned(self, conn: Connection, found: Redemption) -> Redemption:
        """``found`` with where its points went back, if it was cancelled."""
        if found.cancel_transaction_id is None:
            return found
        return replace(found, returned=self._returned(conn, found.cancel_transaction_id))

    def redemption(self, redemption_id: int) -> Redemption:
        """The redemption ``redemption_id`` of this program (``unknown_redemption``
        otherwise), as stored: active, or cancelled with its reversing transaction."""
        with self.db.read() as conn:
            row = conn.execute(
                select(redemptions).where(
                    redemptions.c.program_id == self.program.id, redemptions.c.id == redemption_id
                )
            ).one_or_none()
            if row is None:
                raise ProcessingError("unknown_redemption", f"no redemption {redemption_id}")
            return self._with_returned(conn, _redemption_of(row))

    def redemptions_of(self, member_ref: str) -> list[Redemption]:
        """The member's redemptions, cancelled ones included, the latest first (by when
        redeemed, then by id); ``unknown_member`` (the ledger's refusal) for a member
        the program does not know, so a typo is not answered with an empty history."""
        self.ledger.get_member(self.program.id, member_ref)
        with self.db.read() as conn:
            rows = conn.execute(
                select(redemptions)
                .where(
                    redemptions.c.program_id == self.program.id,
                    redemptions.c.member_ref == member_ref,
                )
                .order_by(redemptions.c.redeemed_at.desc(), redemptions.c.id.desc())
            ).all()
            return [self._with_returned(conn, _redemption_of(row)) for row in rows]

    def redeemed_counts(self) -> dict[str, int]:
        """Per reward id, its redemptions not cancelled: what counts against its stock,
        the same count :meth:`redeem` checks (a reward never redeemed is absent)."""
        with self.db.read() as conn:
            rows = conn.execute(
                select(redemptions.c.reward_id, func.count())
                .where(
                    redemptions.c.program_id == self.program.id,
                    redemptions.c.status == "active",
                )
                .group_by(redemptions.c.reward_id)
            ).all()
        return {str(reward_id): int(count) for reward_id, count in rows}

    # ------------------------------------------------------------------- reads

    def tier_timeline(self, member_ref: str) -> list[dict[str, Any]]:
        """The member's tier changes, oldest first."""
        with self.db.read() as conn:
            rows = conn.execute(
                select(tier_changes)
                .where(
                    tier_changes.c.program_id == self.program.id,
                    tier_changes.c.member_ref == member_ref,
                )
                .order_by(tier_changes.c.id)
            ).mappings()
            return [dict(r) for r in rows]

    def member_tier(self, member_ref: str) -> str | None:
        """The member's current tier (None before their first event)."""
        with self.db.read() as conn:
            return conn.execute(
                select(member_states.c.tier).where(
                    member_states.c.program_id == self.program.id,
                    member_states.c.member_ref == member_ref,
                )
            ).scalar_one_or_none()

    def tier_standing(self, member_ref: str) -> TierState | None:
        """Where the member stands on the ladder: tier, since when, the next
        re-qualification, a grace period's or manual assignment's end (None: no such
        member, or a program without tiers)."""
        with self.db.read() as conn:
            if self.member_profile(member_ref, conn=conn) is None:
                return None
            return self._member_state(conn, member_ref)[1]

    # ----------------------------------------------------------------- members

    def enrol(self, member_ref: str, *, at: datetime, profile: MemberProfile | None = None) -> bool:
        """Enrol ``member_ref`` (with a first tier and ``profile``); False if already there.

        Idempotent: enrolling a member again changes nothing (use :meth:`update_profile`).
        """
        try:
            with self.db.write() as conn:
                existed = self.member_profile(member_ref, conn=conn) is not None
                if not existed:
                    self._known_members.discard(member_ref)  # e.g. erased since: enrol anew
                    self._ensure_member(conn, member_ref, at)
                    if profile is not None and profile.values():
                        self._set_member(conn, member_ref, **profile.values())
        except IntegrityError:  # enrolled concurrently by another request
            if self.member_profile(member_ref) is None:
                raise
            return False
        if not existed:
            self._known_members.add(member_ref)
        return not existed

    def update_profile(self, member_ref: str, profile: MemberProfile) -> dict[str, Any]:
        """Change a member's segments, attributes or birth date (``unknown_member`` else)."""
        with self.db.write() as conn:
            self.ledger.lock(conn, self.program.id, member_ref)
            if self.member_profile(member_ref, conn=conn) is None:
                raise ProcessingError("unknown_member", no_member(self.program.id, member_ref))
            if profile.values():  # an empty change is valid and changes nothing
                self._set_member(conn, member_ref, **profile.values())
            current = self.member_profile(member_ref, conn=conn)
        assert current is not None
        return current

    def save_member(
        self, member_ref: str, profile: MemberProfile, *, at: datetime, conn: Connection
    ) -> MemberChange:
        """Enrol ``member_ref`` (joined at ``at``) or bring its profile to ``profile``.

        Runs in the caller's transaction under a savepoint, so a failure undoes only this
        member. An existing member keeps its join date; fields of ``profile`` left as
        None are kept. Saving the same profile again changes nothing (``unchanged``).
        """
        savepoint = conn.begin_nested()
        try:
            change = self._save_member(conn, member_ref, profile, at)
        except BaseException:
            savepoint.rollback()
            raise
        savepoint.commit()
        return change

    def _save_member(
        self, conn: Connection, ref: str, profile: MemberProfile, at: datetime
    ) -> MemberChange:
        current = self.member_profile(ref, conn=conn)
        if current is None:
            self._known_members.discard(ref)  # e.g. erased since: enrol the reference anew
            self._ensure_member(conn, ref, at)
        else:
            self.ledger.lock(conn, self.program.id, ref)
        values = profile.values()
        differs = {k: v for k, v in values.items() if current is None or not same(current[k], v)}
        if differs:
            self._set_member(conn, ref, **differs)
        if current is None:
            return MemberChange.created
        return MemberChange.updated if differs else MemberChange.unchanged

    def member_profile(
        self, member_ref: str, *, conn: Connection | None = None
    ) -> dict[str, Any] | None:
        """The member's program state (tier, segments, attributes, purchases, joined)."""
        query = select(
            member_states.c.member_ref, member_states.c.tier, member_states.c.tier_since,
            member_states.c.segments, member_states.c.attributes, member_states.c.purchases,
            member_states.c.joined_at, member_states.c.birth_date,
        ).where(
            member_states.c.program_id == self.program.id,
            member_states.c.member_ref == member_ref,
        )  # fmt: skip
        if conn is not None:
            row = conn.execute(query).first()
        else:
            with self.db.read() as reader:
                row = reader.execute(query).first()
        return None if row is None else dict(row._mapping)

    def list_members(self, *, after: str | None, limit: int) -> list[dict[str, Any]]:
        """Members in reference order, ``limit`` of them after reference ``after``."""
        query = select(member_states.c.member_ref).where(
            member_states.c.program_id == self.program.id
        )
        if after is not None:
            query = query.where(member_states.c.member_ref > after)
        with self.db.read() as conn:
            refs = [
                r[0] for r in conn.execute(query.order_by(member_states.c.member_ref).limit(limit))
            ]
            return [p for p in (self.member_profile(ref, conn=conn) for ref in refs) if p]

    # --------------------------------------------------------------- internals

    def _recorded(self, conn: Connection, event_id: str) -> bool:
        """Whether ``event_id`` is recorded. Checked first (a retry does nothing), and
        again once the member's lock is held: a copy of the event sent at the same time
        (another Idempotency-Key, another server process) passed the first check too and
        waited for the lock while the other copy was applied; read under the lock
        (PostgreSQL's READ COMMITTED: each statement sees what committed before it), it is
        then answered as the duplicate it is, never refused as an over-refund or a ledger
        key conflict (``tests/processing/test_concurrent_copies.py``)."""
        row = conn.execute(
            select(events.c.event_id).where(
                events.c.program_id == self.program.id, events.c.event_id == event_id
            )
        ).first()
        return row is not None

    def _lock_known(self, conn: Connection, ref: str) -> None:
        """Take the lock of an enrolled member (``unknown_member`` if there is none)."""
        try:
            self.ledger.lock(conn, self.program.id, ref)
        except Rejected as rejected:
            if rejected.code is RejectionCode.UNKNOWN_MEMBER:
                raise ProcessingError("unknown_member", no_member(self.program.id, ref)) from None
            raise

    def _enrol_and_lock(
        self, conn: Connection, ref: str, at: datetime, *, refuse_erased: bool = False
    ) -> bool:
        """Enrol ``ref`` if needed and take its lock; True if the erasure records were
        read (``refuse_erased``, a reference no member held: :meth:`_ensure_member`).

        A member remembered as enrolled may have been erased since (its reference is
        now a tombstone), or erased while we waited for its lock (PostgreSQL: the lock
        then says ``unknown_member``): forget it and take the reference as after the
        erasure, enrolled again as a new member or, with ``refuse_erased``, refused if
        of the erased history (:meth:`_refuse_erased`).
        """
        checked = self._ensure_member(conn, ref, at, refuse_erased=refuse_erased)
        try:
            self.ledger.lock(conn, self.program.id, ref)
        except Rejected as rejected:
            if rejected.code is not RejectionCode.UNKNOWN_MEMBER:
                raise
            self._known_members.discard(ref)
            checked = self._ensure_member(conn, ref, at, refuse_erased=refuse_erased)
            self.ledger.lock(conn, self.program.id, ref)
        return checked

    def _refuse_erased(self, conn: Connection, ref: str, at: datetime) -> None:
        """Refuse (``member_erased``) an event at ``at`` of an erased reference's history
        (:func:`~fidelite.processing.erased.of_erased_history`, the import's rule): at or
        before its latest erasure, whether no member holds the reference (enrolling it
        would bring the erased member back with their past) or one enrolled again since
        does, whatever its join date. An event after the erasure is new activity. One
        indexed read of the erasure records by digest."""
        found = of_erased_history(erased_refs(conn, self.program.id, [ref]), ref, at)
        if found is not None:
            raise ProcessingError(
                MEMBER_ERASED, erased_history(ref, found.last_erased_at, "an event")
            )

    def _ensure_member(
        self, conn: Connection, ref: str, at: datetime, *, refuse_erased: bool = False
    ) -> bool:
        """Enrol ``ref`` in the ledger and give them a program state, if not yet done;
        True if the erasure records were read.

        ``_known_members`` only remembers members whose enrolling transaction succeeded
        (callers add them after commit), so a rolled-back enrolment is retried.
        ``refuse_erased`` (an event at ``at``): a reference no member holds may be an
        erased one, checked before enrolling it (:meth:`_refuse_erased`); a reference a
        member holds is not read here (the caller checks it once it holds the lock).
        """
        if ref in self._known_members:
            return False
        known = conn.execute(
            select(member_states.c.member_ref).where(
                member_states.c.program_id == self.program.id,
                member_states.c.member_ref == ref,
            )
        ).first()
        if known is not None:
            return False
        if refuse_erased:
            self._refuse_erased(conn, ref, at)
        try:
            self.ledger.create_member(self.program.id, ref, conn=conn)
        except Rejected as rejected:  # enrolled earlier under another key: fine
            if rejected.code is not RejectionCode.MEMBER_EXISTS:
                raise
        conn.execute(insert(member_states), initial_state_row(self.program, ref, at))
        self._announce(conn, hooks.MEMBER_CREATED, ref, {"joined_at": at.isoformat()})
        return refuse_erased

    def _member_state(self, conn: Connection, ref: str) -> tuple[MemberState, TierState | None]:
        row = conn.execute(
            select(member_states).where(
                member_states.c.program_id == self.program.id, member_states.c.member_ref == ref
            )
        ).one()
        usage = {
            (r.rule_id, r.period): int(r.points)
            for r in conn.execute(
                select(rule_usage).where(
                    rule_usage.c.program_id == self.program.id, rule_usage.c.member_ref == ref
                )
            )
        }
        member = MemberState(
            ref=ref,
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
        return member, tier

    def budget_usage(self, conn: Connection) -> dict[str, int]:
        """Points each budgeted rule has given so far (read under the budget locks)."""
        query = self.budget_query()
        if query is None:
            return {}
        return {r.rule_id: int(r.used) for r in conn.execute(query)}

    def budget_query(self) -> Select[str, int] | None:
        """The query of :meth:`budget_usage` (None: the program has no budgeted rule)."""
        if not any(rule.budget for rule in self.program.rules):
            return None
        return select(rule_budgets.c.rule_id, rule_budgets.c.used).where(
            rule_budgets.c.program_id == self.program.id
        )

    def _coupon_status(self, conn: Connection, code: str | None, member_ref: str) -> CouponStatus:
        """What the store knows of ``code`` for ``member_ref``: a code issued to a named
        member is ``other_member`` for everybody else, used or not.

        The code's row is locked (PostgreSQL; after the member and budget locks) until
        the event commits: two events of different members presenting one single-use
        code are applied one after the other, and the second sees it used."""
        if not code:
            return CouponStatus.not_found
        row = conn.execute(
            select(coupons.c.status, coupons.c.member_ref)
            .where(coupons.c.program_id == self.program.id, coupons.c.code == normalise(code))
            .with_for_update()
        ).one_or_none()
        if row is None:
            return CouponStatus.not_found
        return coupon_status(row.status, row.member_ref, member_ref)

    def _record_event(
        self, conn: Connection, event: Event, trace: Any, decision: Decision | None
    ) -> None:
        coupon = decision.coupon if decision else None
        conn.execute(
            insert(events),
            {
                "program_id": self.program.id,
                "event_id": event.id,
                "member_ref": event.member,
                "type": event.type,
                "occurred_at": event.at,
                "amount": event.amount,
                "coupon": coupon.code if coupon else event.coupon,
                "coupon_accepted": None if coupon is None else int(coupon.accepted),
                "refund_of": event.refund_of,
                "trace": trace,
                "recorded_at": datetime.now(UTC),
            },
        )

    def _count_usage(self, conn: Connection, member_ref: str, decision: Decision) -> None:
        pid = self.program.id
        for use in decision.usage:
            key = and_(
                rule_usage.c.program_id == pid,
                rule_usage.c.member_ref == member_ref,
                rule_usage.c.rule_id == use.rule,
                rule_usage.c.period == use.period,
            )
            done = conn.execute(
                update(rule_usage).where(key).values(points=rule_usage.c.points + use.points)
            )
            if done.rowcount == 0:
                row = {"program_id": pid, "member_ref": member_ref, "rule_id": use.rule}
                conn.execute(
                    insert(rule_usage), {**row, "period": use.period, "points": use.points}
                )
        for rule_id, points in decision.budget_spent.items():
            key = and_(rule_budgets.c.program_id == pid, rule_budgets.c.rule_id == rule_id)
            done = conn.execute(
                update(rule_budgets).where(key).values(used=rule_budgets.c.used + points)
            )
            if done.rowcount == 0:
                conn.execute(insert(rule_budgets),
                             {"program_id": pid, "rule_id": rule_id, "used": points})  # fmt: skip
        if decision.coupon is not None and decision.coupon.accepted:
            conn.execute(
                update(coupons)
                .where(coupons.c.program_id == pid, coupons.c.code == decision.coupon.code,
                       coupons.c.status == "issued")
                .values(status="used", used_event_id=decision.event_id)
            )  # fmt: skip

    def _after_event(
        self, conn: Connection, event: Event, decision: Decision, state: TierState | None
    ) -> list[TierChange]:
        """Count a purchase; move the tier if the event changed the qualifying value.

        Purchases count for every metric; any other event only through the points it
        earned (metric ``points``), so one that earned nothing cannot move a tier.
        """
        if event.type == PURCHASE:
            self._set_member(conn, event.member, purchases=member_states.c.purchases + 1)
        policy = self.program.tiers
        if policy is None or state is None or not qualifies(event, decision):
            return []
        activities = self._activities(conn, event.member)
        joined = conn.execute(
            select(member_states.c.joined_at).where(
                member_states.c.program_id == self.program.id,
                member_states.c.member_ref == event.member,
            )
        ).scalar_one_or_none()
        taken = last_step(policy, state, self.program.zone, enrolled=joined)
        if state.assigned_until is None and taken is not None and event.at < taken:
            entered = self._entered_ladder(conn, event.member)
            if entered is None or event.at >= entered:
                # dated before a step the member's level shows was taken: in date order
                return self._late_activity(conn, event, state, activities, taken, joined)
            # dated before the member entered the ladder (:meth:`_enter_ladder`): no
            # history with tiers to play again, the program had none for them then
        new, changes = on_activity(policy, state, activities, event.at, self.program.zone)
        self._save_tier(conn, event.member, new, changes, event.id)
        return changes

    def _entered_ladder(self, conn: Connection, ref: str) -> datetime | None:
        """When the member last entered the program's ladder from no tier (enrolled
        while it had no tiers, or moved off a removed one: an entry from ``""``), or
        None. A purchase dated before it is not played again with tiers: the member's
        level and dates count from that entry, as docs/program.md ("Tiers added") says."""
        entered: datetime | None = conn.execute(
            select(func.max(tier_changes.c.at)).where(
                tier_changes.c.program_id == self.program.id,
                tier_changes.c.member_ref == ref,
                tier_changes.c.from_tier == "",
            )
        ).scalar_one()
        return entered

    def _late_activity(
        self,
        conn: Connection,
        event: Event,
        state: TierState,
        activities: Sequence[Activity],
        latest: datetime,
        joined: datetime | None,
    ) -> list[TierChange]:
        """A qualifying event dated before ``latest``, a step the member's level shows was
        taken (:func:`~fidelite.engine.tiers.last_step`): the member's level and dates
        become those the events in date order give
        (:func:`~fidelite.engine.tiers.on_late_activity`); the steps that history takes
        from the event's date on and that the timeline lacks are added, each at its own
        date, with the event's id. Entries already written stay (the timeline is only
        ever added to): a later entry for the same moment supersedes an earlier one."""
        policy = self.program.tiers
        assert policy is not None
        through = max([latest, state.since, *(a.at for a in activities)])
        new, steps = on_late_activity(
            policy, state, activities, event.at, through, self.program.zone,
            self._assignments(conn, event.member), enrolled=joined,
        )  # fmt: skip
        known = recorded_steps(conn, self.program.id, [event.member])
        changes = [c for c in steps if step_key(event.member, c) not in known]
        if new != state and not changes:
            self._set_member(conn, event.member, tier=new.tier, tier_since=new.since,
                             review_at=new.review_at, grace_until=new.grace_until,
                             assigned_until=new.assigned_until)  # fmt: skip
        self._save_tier(conn, event.member, new, changes, event.id)
        return changes

    def _after_refund(
        self,
        conn: Connection,
        event: Event,
        purchase_at: datetime,
        *,
        announce: bool = True,
        known: _TierView | None = None,
        refunded: Sequence[Activity] | None = None,
    ) -> list[TierChange]:
        policy = self.program.tiers
        if policy is None or not self.program.refunds.reevaluate_tier:
            return []
        view = known or self._tier_view(conn, event.member)
        if view is None:
            return []
        activities = view.activities
        if activities is None:
            activities = self._activities(conn, event.member)
        # The member started on the base level when enrolled (``joined_at``, which
        # never changes afterwards): a base level the refund takes them back to dates
        # from then, not from the upgrade it undoes.
        new, changes = on_refund(
            policy, view.state, activities, purchase_at, event.at, self.program.zone,
            view.assignments, enrolled=view.joined_at, held_threshold=view.held,
            refunded=refunded,
        )  # fmt: skip
        self._save_tier(conn, event.member, new, changes, event.id, announce=announce)
        return changes

    def _tier_view(self, conn: Connection, member_ref: str) -> _TierView | None:
        """What a refund's tier replay reads of the member (None: no level)."""
        member, state = self._member_state(conn, member_ref)
        if state is None:
            return None
        return _TierView(state, member.joined_at, self._assignments(conn, member_ref),
                         self._held_threshold(conn, member_ref, state))  # fmt: skip

    def _held_threshold(
        self, conn: Connection, member_ref: str, state: TierState
    ) -> Decimal | None:
        """The threshold the member's level was reached or last kept at, as the latest
        timeline entry that brought or kept them there says (None: it says none): a
        refund judges the level by it, not by a threshold raised in the file since."""
        reason = conn.execute(
            select(tier_changes.c.reason)
            .where(
                tier_changes.c.program_id == self.program.id,
                tier_changes.c.member_ref == member_ref,
                tier_changes.c.to_tier == state.tier,
                tier_changes.c.kind.in_([ChangeKind.upgrade.value, ChangeKind.requalified.value]),
            )
            .order_by(tier_changes.c.at.desc(), tier_changes.c.id.desc())
            .limit(1)
        ).scalar_one_or_none()  # fmt: skip
        if reason is None or self.program.tiers is None:
            return None
        return recorded_threshold(reason, self.program.tiers.metric.value)

    def _assignments(self, conn: Connection, member_ref: str) -> list[Assignment]:
        """The member's manual tier assignments, in time order (a refund's own timeline
        entries carry its event id and are not assignments; one recorded before migration
        ``0007`` and replaced by an upgrade has no end: ``until`` None, unknown, so that
        a refund does not play the history from an older one instead)."""
        rows = conn.execute(
            select(tier_changes.c.at, tier_changes.c.to_tier, tier_changes.c.assigned_until,
                   tier_changes.c.reason)
            .where(
                tier_changes.c.program_id == self.program.id,
                tier_changes.c.member_ref == member_ref,
                tier_changes.c.kind == ChangeKind.assigned.value,
                tier_changes.c.event_id.is_(None),
            )
            .order_by(tier_changes.c.at, tier_changes.c.id)
        )  # fmt: skip
        return [Assignment(r.at, r.to_tier, r.assigned_until, r.reason) for r in rows]

    def _activities(self, conn: Connection, member_ref: str) -> Sequence[Activity]:
        """The member's qualifying activity: one per recorded event but refunds (see
        :func:`activity`), with the points each earned less what refunds reversed."""
        return [a for _, a in self._event_activities(conn, member_ref)]

    def _event_activities(self, conn: Connection, member_ref: str) -> list[tuple[str, Activity]]:
        """:meth:`_activities`, each with its event's id."""
        # A correlated subquery, not a join grouped by event id: that GROUP BY made SQLite
        # walk all the program's events in key order instead of the member's (measured:
        # 135 ms per member with 200,000 events recorded, against 0.13 ms).
        net = (
            select(func.coalesce(func.sum(earnings.c.points - earnings.c.reversed), 0))
            .where(earnings.c.program_id == events.c.program_id,
                   earnings.c.event_id == events.c.event_id)
            .scalar_subquery()
        )  # fmt: skip
        rows = conn.execute(
            select(events.c.event_id, events.c.occurred_at, events.c.type, events.c.amount,
                   events.c.refunded_amount, net.label("net"),
                   refunded_whole().label("refunded_whole"))
            .where(
                events.c.program_id == self.program.id,
                events.c.member_ref == member_ref,
                events.c.type != REFUND,
            )
        )  # fmt: skip
        found = []
        for r in rows:
            one = activity(r.type, r.occurred_at, r.amount, r.refunded_amount, r.net,
                           refunded_whole=bool(r.refunded_whole))  # fmt: skip
            if one is not None:
                found.append((r.event_id, one))
        return found

    def _save_tier(
        self,
        conn: Connection,
        member_ref: str,
        state: TierState | None,
        changes: list[TierChange],
        event_id: str | None,
        *,
        announce: bool = True,
        assigned_until: datetime | None = None,
    ) -> None:
        """Move the member to ``state`` (None: no tier) and write ``changes`` on their
        timeline;
        ``assigned_until``: the end of the manual assignment among them (kept with it,
        for a later refund's replay). A step of the job's (no event id) already on the
        timeline is not written or announced again (see :func:`recorded_steps`)."""
        if not changes:
            return
        if event_id is None:
            known = recorded_steps(conn, self.program.id, [member_ref])
            changes = [c for c in changes if step_key(member_ref, c) not in known]
        self._set_member(
            conn,
            member_ref,
            tier=None if state is None else state.tier,
            tier_since=None if state is None else state.since,
            review_at=None if state is None else state.review_at,
            grace_until=None if state is None else state.grace_until,
            assigned_until=None if state is None else state.assigned_until,
        )
        if not changes:
            return
        conn.execute(
            insert(tier_changes),
            [
                {
                    "program_id": self.program.id,
                    "member_ref": member_ref,
                    "at": c.at,
                    "kind": c.kind.value,
                    "from_tier": c.from_tier,
                    "to_tier": c.to_tier,
                    "value": c.value,
                    "reason": c.reason[:300],
                    "event_id": event_id,
                    "assigned_until": assigned_until if c.kind is ChangeKind.assigned else None,
                }
                for c in changes
            ],
        )
        for c in changes if announce else []:
            # a step of the job's (no event id) in UTC, however its date was reached: the
            # same text whether the job, an event or the batch path applied it
            when = c.at if event_id is not None else c.at.astimezone(UTC)
            self._announce(conn, hooks.TIER_CHANGED, member_ref, {
                "from_tier": c.from_tier, "to_tier": c.to_tier, "kind": c.kind.value,
                "reason": c.reason, "at": when.isoformat(), "event_id": event_id,
            })  # fmt: skip

    def _announce(
        self, conn: Connection, event_type: str, member_ref: str, data: dict[str, Any]
    ) -> None:
        """Write a webhook event in the current transaction (see fidelite.webhooks)."""
        if self.announce:
            announce(conn, self.program.id, event_type, {"member": member_ref, **data},
                     member_ref=member_ref)  # fmt: skip

    def _set_member(self, conn: Connection, member_ref: str, **values: Any) -> None:
        conn.execute(
            update(member_states)
            .where(
                member_states.c.program_id == self.program.id,
                member_states.c.member_ref == member_ref,
            )
            .values(**values)
        )


MAX_COUPONS = 1_000_000
"""Most codes issued at once (they are held in memory and stored in one transaction)."""
_COUPON_CHUNK = 5_000  # rows per INSERT


StepKey = tuple[str, datetime, str, str, str]


def step_key(member_ref: str, change: TierChange) -> StepKey:
    """What makes a tier step the same step: the member, its moment, kind and tiers."""
    return (member_ref, change.at, change.kind.value, change.from_tier, change.to_tier)


def recorded_steps(conn: Connection, program_id: str, refs: Sequence[str]) -> set[StepKey]:
    """The tier steps already on these members' timelines. A step due by a member's
    state can be one written already: an event dated before steps already applied (an
    import of older history) moves the member back to a state those steps were taken
    from, and a re-qualification date it gives back was reviewed once. The writers of
    the job's steps leave such a step out (the state still moves on), so no step is
    written, or announced, twice."""
    found: set[StepKey] = set()
    wanted = sorted(set(refs))
    for start in range(0, len(wanted), 500):
        rows = conn.execute(
            select(tier_changes.c.member_ref, tier_changes.c.at, tier_changes.c.kind,
                   tier_changes.c.from_tier, tier_changes.c.to_tier)
            .where(tier_changes.c.program_id == program_id,
                   tier_changes.c.member_ref.in_(wanted[start : start + 500]))
        )  # fmt: skip
        found |= {(r.member_ref, r.at, r.kind, r.from_tier, r.to_tier) for r in rows}
    return found


def same(kept: Any, given: Any) -> bool:
    """Whether a profile field ``given`` is the value ``kept`` already, type for type:
    Python's ``==`` holds ``True == 1 == 1.0``, so an attribute corrected from ``1`` to
    ``true`` (or ``1.0``) was counted unchanged and not saved, while a rule reading
    ``member.attributes.optin == true`` tells them apart."""
    if type(kept) is not type(given):
        return False
    if isinstance(kept, dict):
        return kept.keys() == given.keys() and all(same(kept[k], given[k]) for k in kept)
    if isinstance(kept, list | tuple):
        return len(kept) == len(given) and all(map(same, kept, given))
    return bool(kept == given)


def initial_state_row(program: ProgramDefinition, ref: str, at: datetime) -> dict[str, Any]:
    """The ``member_states`` row of a member enrolled at ``at``: base tier, no counters."""
    tier = program.tiers.levels[0].id if program.tiers else None
    return {
        "program_id": program.id,
        "member_ref": ref,
        "tier": tier,
        "tier_since": at if tier else None,
        "segments": [],
        "attributes": {},
        "purchases": 0,
        "joined_at": at,
    }


@dataclass(frozen=True)
class _TierView:
    """What a refund's tier replay reads of the member: their level, enrolment, manual
    assignments, the threshold their level was reached at, and (once known) their
    qualifying activity as the refund leaves it (None: read it)."""

    state: TierState
    joined_at: datetime | None
    assignments: list[Assignment]
    held: Decimal | None
    activities: Sequence[Activity] | None = None


def qualifies(event: Event, decision: Decision) -> bool:
    """Whether ``event`` changes its member's qualifying value: a purchase (spend and
    purchase count) or any event that earned points (points metric)."""
    return event.type == PURCHASE or any(e.points for e in decision.earnings)


def activity(
    kind: str, at: datetime, amount: Any, refunded: Any, net: Any, *, refunded_whole: bool = False
) -> Activity | None:
    """The qualifying activity of one recorded event (None: it qualifies for nothing).

    ``net`` is what the event earned, all currencies, less what refunds reversed: every
    earning event counts for a points metric (sign-ups, reviews... as much as
    purchases). Only a purchase has spend (its amount less refunds) and counts as a
    purchase, unless refunded in full (then it is taken back, as ``member.purchases``):
    its refunds reach its amount, or ``refunded_whole`` says so (a purchase of 0, whose
    full refund is of 0: :func:`~fidelite.processing.queries.refunded_whole`).
    """
    points = int(net or 0)
    if kind != PURCHASE:
        return Activity(at, points=points) if points else None
    paid, back = Decimal(amount), Decimal(refunded)
    kept = 0 if refunded_whole or back >= paid > 0 else 1
    return Activity(at, spend=paid - back, points=points, purchases=kept)


def reversal_line(
    transaction_id: str | int, currency: str, points: int, receipt: Receipt
) -> dict[str, Any]:
    """A refund's trace line for one earn transaction of its purchase: the points
    reversed, and what the member did not give back: written off or owed (the shortfall
    policy), or ``already_expired`` (only when some had: nothing to take back from the
    member, and no shortfall)."""
    # an integer, as the event's ``transactions`` are (the engine names it by text)
    line: dict[str, Any] = {"transaction_id": int(transaction_id), "currency": currency,
                            "points": points, "written_off": receipt.written_off,
                            "debt_added": receipt.debt_added}  # fmt: skip
    if receipt.already_expired:
        line["already_expired"] = receipt.already_expired
    return line


def coupon_status(stored: str, owner: str | None, member_ref: str) -> CouponStatus:
    """The status a code stored as ``stored`` (issued to ``owner``, None: to anyone) has
    for an event of ``member_ref`` (shared by the single and batch paths)."""
    if owner is not None and owner != member_ref:
        return CouponStatus.other_member
    return CouponStatus(stored)


def unknown_event_type(program: ProgramDefinition, event: Event) -> ProcessingError | None:
    """``unknown_event_type`` for an event whose type ``program`` does not handle, naming
    the type, the types it handles, the closest one, and how to declare a type recorded
    without points; None for a type it handles.

    Checked after the duplicate check, before anything is read for the member or
    written: an event id recorded already answers as it did (or as a conflict), even if
    the program no longer handles its type."""
    if event.type in program.event_types:
        return None
    handled = [PURCHASE, REFUND, *sorted(program.event_types - {PURCHASE, REFUND})]
    close = difflib.get_close_matches(event.type, handled, n=1)
    guess = f" (did you mean {close[0]!r}?)" if close else ""
    return ProcessingError(
        UNKNOWN_EVENT_TYPE,
        f"unknown event type {event.type!r}{guess}: this program handles "
        f"{', '.join(handled)}; a type to record without points is listed under 'events' "
        "in the program file",
    )


def in_future(program: ProgramDefinition, event: Event, now: datetime) -> ProcessingError | None:
    """``event_in_future`` for an event dated after ``now`` (the time of processing)
    plus the program's tolerance (:func:`~fidelite.processing.future.event_in_future`);
    None otherwise. Checked where :func:`unknown_event_type` is, on both paths: before
    anything is read for the member or written, after the duplicate check."""
    found = event_in_future(program, event, now)
    if found is None:
        return None
    return ProcessingError(EVENT_IN_FUTURE, found.message, detail=found.detail)


def _redemption_of(row: Row[Any]) -> Redemption:
    """A stored ``redemptions`` row as a :class:`Redemption`."""
    cancelled_by = row.cancel_transaction_id
    return Redemption(int(row.id), row.member_ref, row.reward_id, int(row.points),
                      int(row.transaction_id), row.code, row.status, row.redeemed_at,
                      None if cancelled_by is None else int(cancelled_by))  # fmt: skip


def refusal_cause(
    rejection: RedemptionRejection,
    reward_id: str,
    member_ref: str,
    tier: str | None,
    redeemed_by_member: int,
    program: ProgramDefinition,
) -> str:
    """Why a redemption is refused, in words support can act on: the reward id that is
    unknown, the validity date passed, the member's tier and the tiers allowed, the stock,
    or the per-member limit (over the reward's lifetime: the catalogue has no period).

    Short of points is not here: the ledger's spend refusal names what is available, what
    was requested and what lapsed, and the processor appends that."""
    reward = program.reward(reward_id)
    if reward is None:
        known = ", ".join(r.id for r in program.rewards) or "none"
        return f"no reward {reward_id!r} in the catalogue (rewards: {known})"
    if rejection is RedemptionRejection.reward_not_yet_available:
        assert reward.valid_from is not None
        return f"available from {reward.valid_from.astimezone(UTC).isoformat()}"
    if rejection is RedemptionRejection.reward_expired:
        assert reward.valid_until is not None
        return f"available until {reward.valid_until.astimezone(UTC).isoformat()}"
    if rejection is RedemptionRejection.reward_not_available_for_tier:
        held = f"tier {tier!r}" if tier is not None else "no tier"
        return f"member {member_ref!r} has {held}; for tiers {', '.join(reward.tiers)} only"
    if rejection is RedemptionRejection.reward_out_of_stock:
        if reward.stock == 0:
            return "out of stock: the program gives none of it (stock 0)"
        return f"out of stock, all {reward.stock} redeemed"
    if rejection is RedemptionRejection.reward_limit_reached:
        return (
            f"member {member_ref!r} has redeemed it {redeemed_by_member} time(s), the limit "
            f"per member is {reward.per_member_limit} (over the reward's lifetime, "
            "cancelled redemptions not counted)"
        )
    return rejection.value


def _machine_time() -> datetime:
    """The default time of processing: :func:`~fidelite.processing.future.system_clock`,
    looked up at each call (a test suite gives every processor one fixed clock there)."""
    return system_clock()


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


__all__ = [
    "EventProcessor",
    "MemberChange",
    "MemberProfile",
    "Outcome",
    "ProcessingError",
    "Redemption",
    "Rejected",
    "Result",
]
