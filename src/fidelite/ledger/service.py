"""Ledger operations: earn, release, spend, expire, reverse, adjust; balance, history.

Every mutating operation follows the same path (:meth:`Ledger._mutate`):

1. validate the input (``invalid_request`` names the field);
2. open one writing transaction; find the program and the member;
3. lock the member (:func:`fidelite.store.locking.lock_member`);
4. look up the idempotency key: same request → the stored receipt; different request
   → ``idempotency_conflict``;
5. read the state, build a :class:`~fidelite.ledger.plan.Plan` (or reject), apply it.

A rejection raises :class:`Rejected` inside the transaction, which rolls back: a
rejected call changes nothing. If two writers race on one idempotency key for
different members, the UNIQUE constraint refuses the second; it then replays the first.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, tzinfo
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Integer, bindparam, insert, text
from sqlalchemy.exc import IntegrityError

from fidelite.engine.calendar import add_days
from fidelite.engine.expiry import Lapse, inactivity_deadline
from fidelite.engine.expiry import expires_at as policy_expiry
from fidelite.ledger import validation as valid
from fidelite.ledger.earning import credit_new_lot, earn_order, earn_plan
from fidelite.ledger.errors import (
    Rejected,
    RejectionCode,
    already_spent,
    invalid,
    member_erased,
    unknown_member,
)
from fidelite.ledger.idempotency import request_hash
from fidelite.ledger.inactivity import (
    Inactivity,
    coming_lapse,
    first_lapse,
    lapsed_lots,
    lapsed_points,
    lapsed_subjects,
    member_lapse,
)
from fidelite.ledger.plan import Plan, Target, apply
from fidelite.ledger.receipts import Balance, HistoryEntry, MemberInfo, Receipt
from fidelite.ledger.state import (
    CLAIMS,
    HOLD_ENDED,
    PROGRAM_KINDS,
    EndedHold,
    OpenLot,
    UnsettledLot,
    claimable_expired_lots,
    due_lots,
    ended_hold_lots,
    ended_holds,
    in_spending_order,
    lot_of,
    member_accounts,
    member_debt,
    program_accounts,
    released_shares,
    restorable_draws,
    spendable_lots,
    unclaimed_expiry,
    unsettled_lots,
)
from fidelite.program.policy import ExpiryPolicy
from fidelite.store import Database
from fidelite.store.locking import count_reversal, insert_ignoring_duplicates, lock_member
from fidelite.store.tables import (
    Account,
    Currency,
    IdempotencyRecord,
    Member,
    Program,
    UTCDateTime,
)

_MAX_ID = 2**63 - 1
"""The largest id the database stores (64-bit)."""

Clock = Callable[[], datetime]
Prior = tuple[str, dict[str, Any]]


class Shortfall(StrEnum):
    """What a reversal does when the points it takes back were already spent.

    ``reject``: refuse (``points_already_spent``); ``within_balance``: take what the
    member has, write the rest off (reported as ``written_off``); ``debt``: take what
    the member has and record the rest as debt, repaid first from future credits.
    """

    REJECT = "reject"
    WITHIN_BALANCE = "within_balance"
    DEBT = "debt"


@dataclass(frozen=True)
class JobReport:
    """What a batch job (expiry, release of due pending points) did.

    ``points`` maps each currency the job moved to the points it moved in it (only
    currencies with moved points, so a run that did nothing has ``{}``): points of
    different currencies (points, stars) are never added together.
    """

    transactions: int
    lots: int
    points: dict[str, int] = field(default_factory=dict)


def _count(totals: dict[str, int], receipt: Receipt) -> None:
    """Add ``receipt``'s points to its currency's total in ``totals`` (zero adds nothing)."""
    if receipt.points:
        totals[receipt.currency] = totals.get(receipt.currency, 0) + receipt.points


@dataclass(frozen=True)
class _Subject:
    member_id: int
    member_ref: str
    currency: str


class Ledger:
    """The points ledger of one database. Thread-safe; share one per process.

    Each mutating operation runs in its own transaction, or — given ``conn``, a writing
    connection from :meth:`Database.write` — inside the caller's transaction, so that a
    posting and the caller's own records commit or roll back together. Inside a caller's
    transaction the operation runs under a savepoint: a rejection undoes only its own
    writes and leaves the caller's transaction usable.
    """

    def __init__(self, db: Database, *, clock: Clock | None = None) -> None:
        self.db = db
        self._clock = clock or (lambda: datetime.now(UTC))
        self._programs: set[str] = set()
        self._currencies: set[tuple[str, str]] = set()
        self._program_accounts: dict[tuple[str, str], dict[str, int]] = {}

    # ------------------------------------------------------------------ setup

    def now(self) -> datetime:
        """The ledger's clock (the time transactions are recorded at)."""
        return self._clock()

    def open_program(self, program_id: str, currencies: list[str]) -> None:
        """Create a program and its currencies (idempotent; existing ones are kept)."""
        pid = _code(program_id, "program_id", 64)
        codes = [_code(c, "currencies") for c in currencies]
        if not codes:
            raise invalid("currencies", "at least one currency is required")
        now = self._clock()
        with self.db.write() as conn:
            insert_ignoring_duplicates(
                conn,
                Program.__table__,  # type: ignore[arg-type]
                [{"id": pid, "created_at": now}],
            )
            insert_ignoring_duplicates(
                conn,
                Currency.__table__,  # type: ignore[arg-type]
                [{"program_id": pid, "code": c} for c in codes],
            )
            insert_ignoring_duplicates(
                conn,
                Account.__table__,  # type: ignore[arg-type]
                [
                    {
                        "program_id": pid,
                        "currency": c,
                        "kind": k,
                        "member_id": None,
                        "balance": None,
                    }
                    for c in codes
                    for k in PROGRAM_KINDS
                ],
            )

    def create_member(
        self,
        program_id: str,
        member_ref: str,
        *,
        key: str | None = None,
        conn: Connection | None = None,
    ) -> MemberInfo:
        """Enrol a member under ``member_ref`` (card number / customer id).

        Idempotent on ``key`` (default ``member:<ref>``); another key for a reference
        that exists is refused with ``member_exists``.
        """
        ref = valid.member_id(member_ref, "member_ref")
        idem = valid.key(key if key is not None else f"member:{ref}")
        digest = request_hash({"op": "create_member", "member_ref": ref})
        if conn is not None:
            savepoint = conn.begin_nested()
            try:
                info = self._enrol(conn, program_id, ref, idem, digest)
            except IntegrityError:
                savepoint.rollback()
                return self._enrolled_meanwhile(conn, program_id, ref, idem, digest)
            except BaseException:
                savepoint.rollback()
                raise
            savepoint.commit()
            return info
        try:
            with self.db.write() as own:
                return self._enrol(own, program_id, ref, idem, digest)
        except IntegrityError:
            with self.db.read() as reader:
                return self._enrolled_meanwhile(reader, program_id, ref, idem, digest)

    def _enrol(
        self, conn: Connection, program_id: str, ref: str, key: str, digest: str
    ) -> MemberInfo:
        self._require_program(conn, program_id)
        prior = _prior_record(conn, program_id, key)
        if prior is not None:
            return _member_replay(conn, program_id, prior, digest, key)
        if _member_row(conn, program_id, ref) is not None:
            raise _member_exists(program_id, ref)
        info = self._insert_member(conn, program_id, ref)
        conn.execute(
            insert(IdempotencyRecord),
            {
                "program_id": program_id,
                "key": key,
                "request_hash": digest,
                "result": {"member_id": info.member_id},
                "created_at": info.created_at,
            },
        )
        return info

    def _enrolled_meanwhile(
        self, conn: Connection, program_id: str, ref: str, key: str, digest: str
    ) -> MemberInfo:
        """After losing a race to enrol: replay the winner's record, or ``member_exists``."""
        prior = _prior_record(conn, program_id, key)
        if prior is not None:
            return _member_replay(conn, program_id, prior, digest, key)
        raise _member_exists(program_id, ref) from None

    def _insert_member(self, conn: Connection, program_id: str, ref: str) -> MemberInfo:
        now = self._clock()
        member_id = conn.execute(
            insert(Member).returning(Member.id),
            {"program_id": program_id, "ref": ref, "status": "active", "created_at": now},
        ).scalar_one()
        return MemberInfo(int(member_id), program_id, ref, "active", now)

    def lock(
        self, conn: Connection, program_id: str, member_ref: str, *, books: bool = False
    ) -> None:
        """Hold the member's ledger lock until the caller's transaction ends.

        For callers that read their own per-member state (counters, tier) before posting
        through ``conn``: taking the lock first makes those reads and the postings one
        serial step per member (PostgreSQL; SQLite writers are serial anyway).

        Callers lock a member to write to them, so an erased member (named by its
        tombstone) is refused with ``member_erased`` (:func:`_writable`), unless
        ``books``: the caller keeps the books of what happened before the erasure (a
        job, a refund of an earlier purchase), which the erased account still takes. A
        member erased while we waited for the lock (PostgreSQL) is answered as after the
        erasure: ``unknown_member`` for the reference it held (:func:`_lock`).
        """
        self._require_program(conn, program_id)
        row = _member_row(conn, program_id, member_ref)
        if row is None:
            raise _unknown_member(program_id, member_ref)
        if not books:
            _writable(program_id, member_ref, row)
        _lock(conn, program_id, member_ref, int(row[0]), books=books)

    def get_member(self, program_id: str, member_ref: str) -> MemberInfo:
        """The member known as ``member_ref`` (``unknown_member`` otherwise)."""
        with self.db.read() as conn:
            self._require_program(conn, program_id)
            row = _member_row(conn, program_id, member_ref)
        if row is None:
            raise _unknown_member(program_id, member_ref)
        return MemberInfo(int(row[0]), program_id, member_ref, str(row[1]), _utc(row[2]))

    # ------------------------------------------------------------- operations

    def earn(
        self,
        program_id: str,
        member_ref: str,
        currency: str,
        points: int,
        *,
        key: str,
        at: datetime | str | None = None,
        expires_at: datetime | str | None = None,
        pending_until: datetime | str | None = None,
        reason: str = "earn",
        source: str | None = None,
        detail: dict[str, Any] | None = None,
        policy: ExpiryPolicy | None = None,
        zone: ZoneInfo | None = None,
        conn: Connection | None = None,
    ) -> Receipt:
        """Credit ``points`` as a new lot (pending until ``pending_until`` if given).

        Points that become available repay the member's debt first, if any. Without
        ``expires_at``, given the program's expiry ``policy`` and ``zone``, the lot gets
        the date the policy gives points earned at ``at`` (:func:`_credit_expiry`); as
        for a spend, the policy is not part of the key's fingerprint. A hold ending at or
        after that date is refused as one ending at or after a given ``expires_at`` is
        (:func:`_check_policy_hold`): a lot never expires while still on hold. Under an
        inactivity ``policy`` a hold ending at or after the deadline the earn itself sets
        (``at`` plus the policy's months) is refused the same way
        (:func:`_check_inactivity_hold`): the points would lapse still on hold, never
        spendable, and no warning would name them. Those checks run once the key is
        found new, so a key used before replays as it was.
        """
        when = self._at(at)
        order = earn_order(member_ref, currency, points, key=key, at=when, at_given=at is not None,
                           expires_at=expires_at, pending_until=pending_until, reason=reason,
                           source=source, detail=detail)  # fmt: skip
        dated = order.expires_at is None
        order = replace(order, expires_at=_credit_expiry(order.expires_at, policy, when, zone))

        def build(subject: _Subject, conn: Connection, target: Target) -> Plan:
            if dated:
                _check_policy_hold(order.at, order.expires_at, order.pending_until, zone)
            _check_inactivity_hold(order.at, order.pending_until, policy, zone)
            return earn_plan(order, target)

        return self._mutate(program_id, order.key, order.digest, build, member_ref=member_ref,
                            currency=currency, at=when, conn=conn, settle=False)  # fmt: skip

    def release(
        self,
        program_id: str,
        transaction_id: int,
        *,
        key: str,
        at: datetime | str | None = None,
        conn: Connection | None = None,
        books: bool = False,
    ) -> Receipt:
        """Make the pending points of an earn available now (the return window closed).

        The earn of an erased member is refused (``member_erased``) unless ``books``: the
        release job keeps the erased account's books; a release asked for by hand is a
        change the account no longer takes."""
        when = self._at(at)

        def build(subject: _Subject, conn: Connection, target: Target) -> Plan:
            _not_before(conn, program_id, transaction_id, when, "release")
            return _release_plan(conn, target, transaction_id)

        return self._mutate(
            program_id,
            key,
            _release_hash(transaction_id, None if at is None else when),
            build,
            transaction_id=transaction_id,
            at=when,
            conn=conn,
            books=books,
        )

    def spend(
        self,
        program_id: str,
        member_ref: str,
        currency: str,
        points: int,
        *,
        key: str,
        at: datetime | str | None = None,
        reason: str = "spend",
        source: str | None = None,
        detail: dict[str, Any] | None = None,
        policy: ExpiryPolicy | None = None,
        zone: ZoneInfo | None = None,
        conn: Connection | None = None,
        actor: str | None = None,
    ) -> Receipt:
        """Spend ``points``, drawing the soonest-expiring available lots first.

        Points whose hold has ended at ``at`` (``pending_until`` at or before it) are
        available: first, in the same transaction and under the member's lock, each such
        lot of the member in ``currency`` is released with the very entry the release job
        would write (:meth:`_Steps.release_ended_holds`), then the spend draws. A refused
        spend rolls those releases back with it: a rejected call changes nothing.

        Lots past their expiry date at ``at`` are not spendable. Given the program's
        expiry ``policy`` and ``zone`` (as :meth:`expire` takes them), points that lapsed
        by inactivity at ``at`` are not either, whether or not the expiry job has moved
        them out yet (:func:`_lapse`). The policy is the program's, not the request's: it
        is not part of the key's fingerprint, and a retry replays the first answer.
        ``actor`` (who spent: ``api-key:<id>``) is kept on the transaction; not part of
        the fingerprint either.
        """
        pts = valid.points(points)
        who = None if actor is None else valid.text(actor, "actor")
        when = self._at(at)
        rule = Inactivity.of(policy, zone or ZoneInfo("UTC"))
        request = {
            "op": "spend", "member_ref": member_ref, "currency": currency, "points": pts,
            "at": at and when, "reason": reason, "source": source, "detail": detail,
        }  # fmt: skip

        def build(subject: _Subject, conn: Connection, target: Target) -> Plan:
            plan = Plan("spend", "debit", pts, _reason(reason), _opt(source, "source"),
                        actor=who, detail=detail)  # fmt: skip
            lapse = _lapse(conn, program_id, subject, rule, when)
            _debit_lots(plan, conn, subject, pts, "redeemed", when, lapse, zone,
                        claim=rule is None)  # fmt: skip
            return plan

        return self._mutate(program_id, key, request_hash(request), build, member_ref=member_ref,
                            currency=currency, at=when, conn=conn, rule=rule,
                            release_ended=True)  # fmt: skip

    def adjust(
        self,
        program_id: str,
        member_ref: str,
        currency: str,
        points: int,
        *,
        key: str,
        reason: str,
        actor: str,
        at: datetime | str | None = None,
        expires_at: datetime | str | None = None,
        detail: dict[str, Any] | None = None,
        policy: ExpiryPolicy | None = None,
        zone: ZoneInfo | None = None,
        conn: Connection | None = None,
    ) -> Receipt:
        """A manual credit (``points`` > 0, e.g. goodwill) or debit (< 0), with who and why.

        A debit draws lots as :meth:`spend` does: it first releases the member's points
        whose hold has ended at ``at``, and given the program's expiry ``policy`` and
        ``zone`` never draws points that lapsed by inactivity at ``at``. A credit
        releases nothing (its receipt still counts those points as available); without
        ``expires_at`` its lot gets the date ``policy`` gives points earned at ``at``, as
        :meth:`earn` does (none without a policy, or under one that dates no lot).

        A credit whose points would expire at or before now (the ledger's clock) is
        refused (``invalid_request`` on ``expires_at``, naming the date): whether the date
        is given or the policy gives it from a back-dated ``at``, the credit would be
        shown as given and then taken away by the next expiry run. Checked once the key
        is found new, so a credit made before under the key replays as it was.
        """
        pts = valid.signed_points(points)
        when = self._at(at)
        rule = Inactivity.of(policy, zone or ZoneInfo("UTC"))
        who = valid.text(actor, "actor")
        why = valid.text(reason, "reason")
        expiry = valid.optional_moment(expires_at, "expires_at")
        if expiry is not None and (pts < 0 or expiry <= when):
            raise invalid("expires_at", "only a credit can expire, and later than its time")
        request = {
            "op": "adjust", "member_ref": member_ref, "currency": currency, "points": pts,
            "at": at and when, "reason": why, "actor": who, "expires_at": expiry,
            "detail": detail,
        }  # fmt: skip

        def build(subject: _Subject, conn: Connection, target: Target) -> Plan:
            direction = "credit" if pts > 0 else "debit"
            plan = Plan("adjust", direction, abs(pts), str(why), actor=who, detail=detail)
            if pts > 0:
                dated = _credit_expiry(expiry, policy, when, zone)
                _check_not_expired(dated, expiry is not None, when, self.now(), zone)
                credit_new_lot(plan, target, pts, "adjustment", when, dated, None)
            else:
                lapse = _lapse(conn, program_id, subject, rule, when)
                _debit_lots(plan, conn, subject, -pts, "adjustment", when, lapse, zone,
                            claim=rule is None)  # fmt: skip
            return plan

        return self._mutate(program_id, key, request_hash(request), build, member_ref=member_ref,
                            currency=currency, at=when, conn=conn, rule=rule,
                            release_ended=pts < 0)  # fmt: skip

    def reverse(
        self,
        program_id: str,
        transaction_id: int,
        *,
        key: str,
        points: int | None = None,
        shortfall: Shortfall | str = Shortfall.REJECT,
        at: datetime | str | None = None,
        reason: str = "reversal",
        policy: ExpiryPolicy | None = None,
        zone: ZoneInfo | None = None,
        conn: Connection | None = None,
        books: bool = False,
        actor: str | None = None,
    ) -> Receipt:
        """Undo all or part of an earn, spend, expiry or adjustment with compensating entries.

        A transaction of an erased member is refused (``member_erased``) unless
        ``books``: the caller keeps the books of what happened before the erasure (the
        refund of an earlier purchase). Without it, reversing a spend would give the
        erased account points back, as the cancellation of a redemption (refused) would.

        Reversing a credit (earn, credit adjustment) takes points back from the lot it
        created; if some were spent, ``shortfall`` decides. Reversing a debit (spend,
        debit adjustment, expiry) puts the points back into the lots they came from.

        Given the program's expiry ``policy`` and ``zone`` (as :meth:`spend` takes them),
        a shortfall taken from the member's other points (``within_balance``, ``debt``)
        draws only points they could still spend at ``at``: never points that lapsed by
        inactivity, even before the expiry job moves them out (what the member could not
        spend is not theirs to give back; the rest is written off or owed, per policy).
        Without a policy, reversals are as they always were. As for a spend, the policy
        is the program's: it is not part of the key's fingerprint.

        As a spend does, a reversal first releases the member's points (in the
        transaction's currency) whose hold has ended at ``at``: they are available, a
        shortfall may draw them, and their release repays debt first, exactly as if the
        release job had run. ``actor`` (who reversed it) is kept on the transaction, not
        part of the key's fingerprint.
        """
        pts = None if points is None else valid.points(points)
        who = None if actor is None else valid.text(actor, "actor")
        try:
            shortfall_policy = Shortfall(shortfall)
        except ValueError:
            raise invalid("shortfall", f"must be one of {[s.value for s in Shortfall]}") from None
        when = self._at(at)
        rule = Inactivity.of(policy, zone or ZoneInfo("UTC"))
        request = {
            "op": "reverse", "transaction_id": transaction_id, "points": pts,
            "shortfall": shortfall_policy.value, "at": at and when, "reason": reason,
        }  # fmt: skip

        def build(subject: _Subject, conn: Connection, target: Target) -> Plan:
            original = _transaction(conn, program_id, transaction_id)
            amount = _reversal_amount(original, pts)
            _not_before(conn, program_id, transaction_id, when, "reversal")
            plan = Plan("reverse", "", amount, _reason(reason), actor=who,
                        reverses_id=transaction_id)  # fmt: skip
            if not count_reversal(conn, transaction_id, amount):
                raise Rejected(
                    RejectionCode.REVERSAL_EXCEEDS_ORIGINAL,
                    f"transaction {transaction_id} cannot be reversed by {amount} more",
                    field="points",
                )
            if original["direction"] == "credit":
                plan.direction = "debit"
                program_kind = "issued" if original["kind"] == "earn" else "adjustment"
                _take_back(plan, conn, subject, target, transaction_id, amount, program_kind,
                           shortfall_policy, when, lapsing=(program_id, rule))  # fmt: skip
            else:
                plan.direction = "credit"
                program_kind = {"spend": "redeemed", "expire": "expired"}.get(
                    original["kind"], "adjustment"
                )
                _put_back(plan, conn, target, transaction_id, amount, program_kind)
            return plan

        return self._mutate(
            program_id,
            key,
            request_hash(request),
            build,
            transaction_id=transaction_id,
            at=when,
            conn=conn,
            rule=rule,
            release_ended=True,
            books=books,
        )

    # ------------------------------------------------------------------- jobs

    def expire(
        self,
        program_id: str,
        as_of: datetime | str,
        *,
        policy: ExpiryPolicy | None = None,
        zone: ZoneInfo | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> JobReport:
        """Expire every lot whose expiry date is at or before ``as_of``, and, when
        ``policy`` expires by inactivity, every point that lapsed by then.

        Lapses follow :mod:`fidelite.ledger.inactivity` (what counts as activity), with
        months counted in ``zone``, the program's time zone. One transaction per member
        and currency; safe to re-run (already-expired lots are not due any more) and to
        run beside live traffic (each member is locked, and the lapse is recomputed under
        the lock).

        Points whose hold ended at or before ``as_of`` are the member's available points
        from that moment (:meth:`balance` counts them so), released or not: the job
        expires them too, whether :meth:`release_due` has run yet or not. It does not
        take them from the pending account, which would skip their release: under the
        member's lock, in the member's transaction, it first writes the releases that
        :meth:`release_due` would write at ``as_of`` (same key ``release:<earn id>``,
        same time, debt repaid first; :meth:`_Steps.run_job`), then expires what is
        due. So every point passes pending → available → expired once, each step one
        entry, and the two daily jobs give the same entries (and job keys) in either
        order; the release job then finds those lots released and writes nothing. A lot
        released at a later time than ``as_of`` (release-due run at 16:44, this job as of
        that day's midnight) is expired too, its entry dated at that release
        (:meth:`_expire_member`).
        """
        when = valid.moment(as_of, "as_of")
        rule = Inactivity.of(policy, zone or ZoneInfo("UTC"))
        subjects = self._members_with(
            program_id,
            f"(state = 'available' OR ({HOLD_ENDED})) "
            "AND expires_at IS NOT NULL AND expires_at <= :at",
            when,
        )
        if rule is not None:
            with self.db.read() as conn:
                lapsed = lapsed_subjects(conn, program_id, rule, when)
            subjects = list(dict.fromkeys(subjects + lapsed))
        done = lots = 0
        totals: dict[str, int] = {}
        for index, (ref, currency) in enumerate(subjects):
            receipt = self._expire_member(program_id, ref, currency, when, rule)
            if receipt is not None and not receipt.replayed:  # replayed: done by an earlier run
                done += 1
                lots += len(receipt.lot_moves)
                _count(totals, receipt)
            if progress:
                progress(index + 1, len(subjects))
        return JobReport(done, lots, totals)

    def _expire_member(
        self,
        program_id: str,
        member_ref: str,
        currency: str,
        when: datetime,
        rule: Inactivity | None = None,
        conn: Connection | None = None,
        earliest: bool = False,
    ) -> Receipt | None:
        """Expire what is due for one member and currency at ``when`` (the expiry job's
        step); in ``conn``'s transaction when given (a cancellation that put points back
        into lots past their date expires them with it), else in its own.

        The points lapsed by inactivity are those of the member's latest lapse, which
        the entry names; with ``earliest``, only those of the earliest
        (:func:`~fidelite.ledger.inactivity.first_lapse`): called until it returns
        ``None``, one entry per lapse, each naming the deadline its lots lapsed at.

        A lot whose release is dated after ``when`` (``release-due`` run at a later time
        than this job's ``as_of``: the README's daily commands, release-due at 16:44 and
        expire as of that day's midnight; or a spend during the day that released it) is
        expired all the same, but the entry is dated at that release, the latest of
        ``when`` and the releases of the lots it takes (:func:`_released_after`): the
        member held those points as available only from that release on, so an expiry
        dated ``when`` would take them before they were there. A lot released after the
        ledger's clock (``release-due`` given a future ``as_of``) is left to a run then:
        an entry is never dated in the future."""
        find = first_lapse if earliest else member_lapse

        def build(subject: _Subject, conn: Connection, target: Target) -> Plan:
            later = _released_after(conn, subject, when)
            now = self._clock()
            future = {lot for lot, released in later.items() if released > now}
            lots = [lot for lot in due_lots(conn, subject.member_id, currency, when)
                    if lot.id not in future]  # fmt: skip
            if rule is None:
                return _expiry_plan(lots, [], None, when, later)
            lapse = find(conn, program_id, subject.member_id, subject.member_ref, currency,
                         rule, when)  # fmt: skip
            skip = future | {lot.id for lot in lots}
            lapsed = [] if lapse is None else lapsed_lots(conn, subject.member_id, currency, lapse)
            taken = [lot for lot in lapsed if lot.id not in skip]
            return _expiry_plan(lots, taken, lapse, when, later)

        request: dict[str, Any] = {
            "op": "expire", "member_ref": member_ref, "currency": currency, "as_of": when,
        }  # fmt: skip
        job = "expire"
        if rule is not None:  # another job than the dates-only one: its own key
            request |= rule.request()
            job = f"lapse{rule.months}"

        def key(subject: _Subject, transactions: int) -> str:
            # The member's state is part of the key: a redemption cancelled after a run
            # can refill a lot already past its date, and a re-run with the same as_of
            # must expire it, not replay the first run's (then empty) answer. Reference
            # and count, not internal ids: the same history gives the same key whichever
            # path (batch or one at a time) wrote it; hashed, so no reference is stored.
            state = hashlib.sha256(f"{subject.member_ref}\x00{transactions}".encode())
            return f"{job}:{currency}:{when.isoformat()}:{state.hexdigest()[:32]}"

        try:
            return self._mutate(program_id, job, request_hash(request), build,
                                member_ref=member_ref, currency=currency, at=when,
                                job_key=key, rule=rule, release_ended=True,
                                conn=conn)  # fmt: skip
        except _NothingToDo:
            return None

    def release_due(
        self,
        program_id: str,
        as_of: datetime | str,
        *,
        progress: Callable[[int, int], None] | None = None,
    ) -> JobReport:
        """Release every pending lot whose ``pending_until`` is at or before ``as_of``.

        Each release has the key ``release:<earn transaction id>``. A debit (spend, debit
        adjustment, reversal) releases the member's ended holds itself, with the same key
        and its own time: the job then finds those lots released, writes nothing for
        them and counts them as not done by this run.
        """
        when = valid.moment(as_of, "as_of")
        with self.db.read() as conn:
            rows = conn.execute(
                text(
                    "SELECT earn_transaction_id FROM lots WHERE program_id = :p "
                    "AND state = 'pending' AND pending_until <= :at ORDER BY id"
                ).bindparams(bindparam("at", type_=UTCDateTime())),
                {"p": program_id, "at": when},
            ).all()
        done = 0
        totals: dict[str, int] = {}
        for index, (txn_id,) in enumerate(rows):
            try:
                receipt = self.release(
                    program_id, int(txn_id), key=f"release:{txn_id}", at=when, books=True
                )
            except Rejected as rejected:
                if not self._released_meanwhile(program_id, int(txn_id), rejected):
                    raise
            else:
                if not receipt.replayed:
                    done += 1
                    _count(totals, receipt)
            if progress:
                progress(index + 1, len(rows))
        return JobReport(done, done, totals)

    def _released_meanwhile(self, program_id: str, txn_id: int, rejected: Rejected) -> bool:
        """Whether the job's refused release found the lot released since it was read:
        ``not_pending``, or its key used, at another time, by a debit that released it."""
        if rejected.code is RejectionCode.NOT_PENDING:
            return True
        if rejected.code is not RejectionCode.IDEMPOTENCY_CONFLICT:
            return False
        with self.db.read() as conn:
            lot = lot_of(conn, txn_id)
        return lot is None or lot.state != "pending"

    # ------------------------------------------------------------------ reads

    def balance(
        self,
        program_id: str,
        member_ref: str,
        currency: str,
        *,
        as_of: datetime | str | None = None,
        soon_days: int = 30,
        policy: ExpiryPolicy | None = None,
        zone: ZoneInfo | None = None,
        conn: Connection | None = None,
    ) -> Balance:
        """Available / pending / expiring-soon / debt of a member as of ``as_of``.

        Available is what :meth:`spend` could draw at ``as_of``: points whose hold has
        ended by then (``pending_until`` at or before ``as_of``) are available, not
        pending, even before their release is written (a spend writes it; this read
        writes nothing); lots past their expiry date are not counted, nor — given the
        program's expiry ``policy`` and ``zone`` — points that lapsed by inactivity, even
        before the expiry job moves them out. Without an inactivity policy, points of lots
        still within their date at a past ``as_of`` are counted even if the job has since
        moved them out: a spend dated then claims them back (:func:`_debit_lots`).

        ``expiring_soon`` is the part of available that expires within ``soon_days``
        of ``as_of`` (at or before that instant), counted in local calendar days of
        ``zone`` (UTC if not given): the same wall-clock time ``soon_days`` days later,
        as expiry dates keep it, ``next_expiry`` the first time any of
        it expires. Given the inactivity policy, points earned at or before the member's
        last activity expire at its deadline unless their own date comes first (each
        point counts once, at the earlier); a new activity moves the deadline
        (:func:`~fidelite.ledger.inactivity.coming_lapse`).

        Given ``conn`` (e.g. a writing transaction that holds the member's lock), the
        balance is read there: it then sees that transaction's own changes, and a caller
        holding a pooled connection does not need a second one.
        """
        when = self._at(as_of)
        if isinstance(soon_days, bool) or not isinstance(soon_days, int) or soon_days < 0:
            raise invalid("soon_days", "must be a whole number of days >= 0")
        zone = zone or ZoneInfo("UTC")
        rule = Inactivity.of(policy, zone)
        args = (program_id, member_ref, currency, when, soon_days, zone, rule)
        if conn is not None:
            return self._balance(conn, *args)
        with self.db.read() as reader:
            return self._balance(reader, *args)

    def _balance(
        self,
        conn: Connection,
        program_id: str,
        member_ref: str,
        currency: str,
        when: datetime,
        soon_days: int,
        zone: ZoneInfo,
        rule: Inactivity | None = None,
    ) -> Balance:
        # soon_days local calendar days of the zone, as expiry dates keep the local clock
        horizon = add_days(when, timedelta(days=soon_days), zone)
        subject = self._subject(conn, program_id, member_ref, currency)
        lapse = _lapse(conn, program_id, subject, rule, when)
        last = None if lapse is None else lapse.last_activity
        coming = None
        if rule is not None:
            coming = coming_lapse(conn, program_id, subject.member_id, subject.member_ref,
                                  rule, when)  # fmt: skip
        held_now = _held_lots(conn, subject, when, horizon, last, coming)
        ended = ended_hold_lots(conn, subject.member_id, currency, when)
        for lot, share in released_shares(ended, held_now.debt):
            held_now.release(lot, share, when, horizon, last, coming)
        if rule is None and when < self._clock():  # no expiry is dated after now
            _count_claimable(conn, subject, when, horizon, held_now)
        return Balance(
            member_ref=subject.member_ref,
            currency=currency,
            as_of=when,
            available=held_now.available,
            pending=held_now.pending,
            expiring_soon=held_now.expiring_soon,
            expiring_window_days=soon_days,
            debt=held_now.debt,
            next_expiry=held_now.next_expiry,
        )

    def latest_move(self, program_id: str, member_ref: str, currency: str) -> datetime | None:
        """The business time (``occurred_at``) of the member's latest transaction in
        ``currency`` (``None``: none yet).

        :meth:`balance` reads the member's lots as they are now and applies the time only
        to dates (holds, expiry dates, inactivity deadlines): it is the balance at
        ``as_of`` exactly when no transaction of the currency comes after ``as_of``. An
        earlier ``as_of`` would count moves that had not happened yet."""
        with self.db.read() as conn:
            subject = self._subject(conn, program_id, member_ref, currency)
            row = conn.execute(_LATEST_MOVE_SQL, {"m": subject.member_id, "c": currency}).first()
        return None if row is None else row[0]

    def history(
        self,
        program_id: str,
        member_ref: str,
        *,
        currency: str | None = None,
        limit: int = 100,
        before_id: int | None = None,
    ) -> list[HistoryEntry]:
        """The member's ledger transactions, most recently recorded first (by transaction
        id; ``occurred_at`` is the business time and can be earlier), with what each did
        to them."""
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 1000:
            raise invalid("limit", "must be between 1 and 1000")
        if before_id is not None and (
            isinstance(before_id, bool)
            or not isinstance(before_id, int)
            or not 1 <= before_id <= _MAX_ID
        ):
            raise invalid("before_id", f"must be a transaction id between 1 and {_MAX_ID}")
        with self.db.read() as conn:
            self._require_program(conn, program_id)
            row = _member_row(conn, program_id, member_ref)
            if row is None:
                raise _unknown_member(program_id, member_ref)
            if currency is not None:
                self._require_currency(conn, program_id, currency)
            rows = conn.execute(
                _HISTORY_SQL, {"m": int(row[0]), "c": currency, "b": before_id, "n": limit}
            ).all()
        return [_history_entry(r) for r in rows]

    def signed_points(self, program_id: str, transaction_ids: list[int]) -> dict[int, int]:
        """Each transaction's own points, signed by its direction: > 0 a credit to the
        member (earn, credit adjustment, reversal of a debit) or a release (points moved
        from pending to available), < 0 a debit (spend, expiry, debit adjustment,
        reversal of a credit). Unlike the member's account changes of :meth:`history`,
        these count the points that went into debt, were written off or had already
        expired too: a refund reversing 800 earned points is -800 however the member
        gave them back. Transactions of other programs are left out."""
        if not transaction_ids:
            return {}
        with self.db.read() as conn:
            rows = conn.execute(_SIGNED_SQL, {"p": program_id, "ids": transaction_ids}).all()
        signed: dict[int, int] = {}
        for tid, points, result in rows:
            stored = result if isinstance(result, dict) else _json(result)
            sign = -1 if stored["direction"] == "debit" else 1
            signed[int(tid)] = sign * int(points)
        return signed

    # -------------------------------------------------------------- internals

    def _at(self, value: datetime | str | None) -> datetime:
        return self._clock() if value is None else valid.moment(value, "at")

    def _mutate(
        self,
        program_id: str,
        key: str,
        digest: str,
        build: Callable[[_Subject, Connection, Target], Plan],
        *,
        at: datetime,
        member_ref: str | None = None,
        currency: str | None = None,
        transaction_id: int | None = None,
        conn: Connection | None = None,
        job_key: Callable[[_Subject, int], str] | None = None,
        rule: Inactivity | None = None,
        release_ended: bool = False,
        settle: bool = True,
        books: bool = False,
    ) -> Receipt:
        """Run ``build`` under the member's lock and post its plan once per ``key``.

        ``job_key`` (jobs only) replaces ``key`` with one made under the lock from the
        member and their number of transactions: the job acts once per member state.
        ``release_ended`` (debits): release the member's ended holds first
        (:meth:`_Steps.release_ended_holds`). ``settle``: the receipt reports what the
        member truly holds (:func:`~fidelite.ledger.plan.settled_after`; lapses by
        ``rule``); earns report their accounts, as the bulk import computes them.
        ``books`` (jobs are so anyway): an erased member's account is written to
        (:func:`_writable`), to keep the books of what happened before the erasure.
        """
        idem = valid.key(key)
        if transaction_id is not None and (
            isinstance(transaction_id, bool) or not isinstance(transaction_id, int)
        ):
            raise invalid("transaction_id", f"must be a transaction id, got {transaction_id!r}")
        if transaction_id is not None and not 0 < transaction_id <= _MAX_ID:
            raise Rejected(  # ids are 64-bit: a larger one names no row (SQLite overflows)
                RejectionCode.UNKNOWN_TRANSACTION,
                f"no transaction {transaction_id} in program {program_id!r}",
                field="transaction_id",
            )
        steps = _Steps(self, program_id, idem, digest, build, at, member_ref, currency,
                       transaction_id, job_key, rule, release_ended, settle, books)  # fmt: skip
        if conn is not None:
            return steps.within(conn)
        try:
            with self.db.write() as own:
                return steps.run(own)
        except IntegrityError:
            with self.db.read() as reader:
                prior = _prior_transaction(reader, program_id, idem)
            if prior is None:
                raise
            return _replay(prior, digest, idem)

    def _locate(
        self,
        conn: Connection,
        program_id: str,
        member_ref: str | None,
        currency: str | None,
        transaction_id: int | None,
        *,
        books: bool = False,
    ) -> _Subject:
        """The subject of an operation: the member named, or the member of
        ``transaction_id`` (a release or a reversal); refused if erased, unless ``books``
        (a job's, a refund of an earlier purchase, a read: :func:`_writable`)."""
        if member_ref is not None:
            assert currency is not None
            self._require_program(conn, program_id)
            row = _member_row(conn, program_id, member_ref)
            if row is None:
                raise _unknown_member(program_id, member_ref)
            if not books:
                _writable(program_id, member_ref, row)
            return _Subject(int(row[0]), member_ref, currency)
        self._require_program(conn, program_id)
        found = conn.execute(
            text(
                "SELECT t.member_id, m.ref, t.currency, m.status FROM ledger_transactions t "
                "JOIN members m ON m.id = t.member_id WHERE t.id = :t AND t.program_id = :p"
            ),
            {"t": transaction_id, "p": program_id},
        ).first()
        if found is None:
            raise Rejected(
                RejectionCode.UNKNOWN_TRANSACTION,
                f"no transaction {transaction_id} in program {program_id!r}",
                field="transaction_id",
            )
        if not books:
            _writable(program_id, str(found[1]), (found[0], found[3]))
        return _Subject(int(found[0]), str(found[1]), str(found[2]))

    def _subject(
        self, conn: Connection, program_id: str, member_ref: str, currency: str
    ) -> _Subject:
        subject = self._locate(conn, program_id, member_ref, currency, None, books=True)  # a read
        self._require_currency(conn, program_id, currency)
        return subject

    def _require_program(self, conn: Connection, program_id: str) -> None:
        if program_id in self._programs:
            return
        found = conn.execute(
            text("SELECT 1 FROM programs WHERE id = :p"), {"p": program_id}
        ).first()
        if found is None:
            raise Rejected(
                RejectionCode.UNKNOWN_PROGRAM,
                f"no program {program_id!r}",
                field="program_id",
            )
        self._programs.add(program_id)

    def _require_currency(self, conn: Connection, program_id: str, currency: str) -> None:
        if (program_id, currency) in self._currencies:
            return
        found = conn.execute(
            text("SELECT 1 FROM currencies WHERE program_id = :p AND code = :c"),
            {"p": program_id, "c": currency},
        ).first()
        if found is None:
            raise Rejected(
                RejectionCode.UNKNOWN_CURRENCY,
                f"program {program_id!r} has no currency {currency!r}",
                field="currency",
            )
        self._currencies.add((program_id, currency))

    def _members_with(
        self, program_id: str, lot_condition: str, when: datetime
    ) -> list[tuple[str, str]]:
        with self.db.read() as conn:
            self._require_program(conn, program_id)
            rows = conn.execute(
                text(
                    "SELECT DISTINCT m.ref, l.currency, m.id FROM lots l "
                    "JOIN members m ON m.id = l.member_id "
                    f"WHERE l.program_id = :p AND {lot_condition} ORDER BY m.id, l.currency"
                ).bindparams(bindparam("at", type_=UTCDateTime())),
                {"p": program_id, "at": when},
            ).all()
        return [(str(r[0]), str(r[1])) for r in rows]


@dataclass(frozen=True)
class _Steps:
    """One mutating operation's steps (see the module docstring), on a given connection."""

    ledger: Ledger
    program_id: str
    key: str
    digest: str
    build: Callable[[_Subject, Connection, Target], Plan]
    at: datetime
    member_ref: str | None
    currency: str | None
    transaction_id: int | None
    job_key: Callable[[_Subject, int], str] | None = None
    rule: Inactivity | None = None
    release_ended: bool = False
    settle: bool = True
    books: bool = False

    def run(self, conn: Connection) -> Receipt:
        ledger = self.ledger
        books = self.books or self.job_key is not None  # a job keeps an erased member's books
        subject = ledger._locate(conn, self.program_id, self.member_ref, self.currency,
                                 self.transaction_id, books=books)  # fmt: skip
        _lock(conn, self.program_id, subject.member_ref, subject.member_id, books=books,
              named=self.member_ref is not None)  # fmt: skip
        if self.job_key is not None:
            return self.run_job(conn, subject)
        prior = _prior_transaction(conn, self.program_id, self.key)
        if prior is not None:
            return _replay(prior, self.digest, self.key)
        ledger._require_currency(conn, self.program_id, subject.currency)
        lapse = _lapse(conn, self.program_id, subject, self.rule, self.at)
        if self.release_ended:
            self.release_ended_holds(conn, subject, lapse)
        return self.post(conn, subject, self.key, lapse)

    def run_job(self, conn: Connection, subject: _Subject) -> Receipt:
        """A job's entry for one member and currency, under the member's lock.

        With ``release_ended`` (the expiry job), every pending lot of the member whose
        hold has ended at the job's time is released first, in every currency
        (currency by currency, lot order in each): the entries
        :meth:`Ledger.release_due` would write at that time. Only then is the job's key
        made from the member's number of transactions, so the member is in the same
        state, and the key is the same, whether the release job ran before or not. If
        the job then finds nothing to do (:class:`_NothingToDo`) its transaction rolls
        back with those releases: the release job writes them.
        """
        assert self.job_key is not None
        self.ledger._require_currency(conn, self.program_id, subject.currency)
        lapse = _lapse(conn, self.program_id, subject, self.rule, self.at)
        if self.release_ended:
            for currency in _ended_currencies(conn, subject.member_id, self.at):
                if currency == subject.currency:
                    self.release_ended_holds(conn, subject, lapse)
                    continue
                other = _Subject(subject.member_id, subject.member_ref, currency)
                other_lapse = _lapse(conn, self.program_id, other, self.rule, self.at)
                self.release_ended_holds(conn, other, other_lapse)
        key = self.job_key(subject, _transaction_count(conn, subject.member_id))
        prior = _prior_transaction(conn, self.program_id, key)
        if prior is not None:
            return _replay(prior, self.digest, key)
        return self.post(conn, subject, key, lapse)

    def post(self, conn: Connection, subject: _Subject, key: str, lapse: Lapse | None) -> Receipt:
        """Build the operation's plan on the member's state and apply it under ``key``
        (``_NothingToDo`` when it moves no point)."""
        ledger = self.ledger
        target = _target(conn, self.program_id, subject, ledger._program_accounts)
        plan = self.build(subject, conn, target)
        if plan.points == 0:
            raise _NothingToDo
        # An expiry of a lot released after the job's as_of is dated at that release.
        at = plan.at if isinstance(plan, _ExpiryPlan) else self.at
        return apply(conn, plan, target, key=key, request_hash=self.digest,
                     occurred_at=at, recorded_at=ledger._clock(),
                     unsettled=self.unsettled(conn, subject, lapse, plan, at))  # fmt: skip

    def release_ended_holds(self, conn: Connection, subject: _Subject, lapse: Lapse | None) -> None:
        """Release each pending lot of the member in the subject's currency whose hold
        has ended at the operation's time, in lot order, before the operation plans.

        Each release is the entry :meth:`Ledger.release_due` would write at this time:
        same plan (debt repaid first), key ``release:<earn transaction id>``, request
        fingerprint and receipt. It runs under the member's lock in the operation's
        transaction (or savepoint), so it commits with the operation or not at all: a
        refused operation rolls its releases back, and two operations at once never
        release one lot twice (the second finds it released). A lot whose key is taken
        by another request is left pending, as the job would leave it (it reports the
        conflict). ``lapse`` is the member's lapse at that time: releases do not move it.
        """
        ledger = self.ledger
        for txn_id in ended_holds(conn, subject.member_id, subject.currency, self.at):
            key = f"release:{txn_id}"
            if _prior_transaction(conn, self.program_id, key) is not None:
                continue
            target = _target(conn, self.program_id, subject, ledger._program_accounts)
            plan = _release_plan(conn, target, txn_id)
            apply(conn, plan, target, key=key, request_hash=_release_hash(txn_id, self.at),
                  occurred_at=self.at, recorded_at=ledger._clock(),
                  unsettled=self.unsettled(conn, subject, lapse, plan))  # fmt: skip

    def unsettled(
        self,
        conn: Connection,
        subject: _Subject,
        lapse: Lapse | None,
        plan: Plan,
        at: datetime | None = None,
    ) -> list[UnsettledLot] | None:
        """The member's lots the receipt of ``plan`` must settle (``None``: report the
        accounts): those unsettled at the entry's time (``at``, else the operation's)
        and those the plan refills."""
        if not self.settle:
            return None
        last = None if lapse is None else lapse.last_activity
        refilled = [lot_id for lot_id, _ in plan.refills]
        return unsettled_lots(conn, subject.member_id, subject.currency, at or self.at, last,
                              refilled)  # fmt: skip

    def within(self, conn: Connection) -> Receipt:
        """Run inside the caller's transaction, under a savepoint: a rejection (or a lost
        race on the idempotency key) undoes only this operation's writes."""
        savepoint = conn.begin_nested()
        try:
            receipt = self.run(conn)
        except IntegrityError:
            savepoint.rollback()
            prior = _prior_transaction(conn, self.program_id, self.key)
            if prior is None:
                raise
            return _replay(prior, self.digest, self.key)
        except BaseException:
            savepoint.rollback()
            raise
        savepoint.commit()
        return receipt


@dataclass
class _Held:
    """A balance being counted: what the member's available lots hold, then each lot
    whose hold has ended counted as its release would leave it (:meth:`release`).

    ``expiring_soon`` and ``next_expiry`` count each point once, at the first of its
    own expiry date and, under an inactivity policy, the deadline of the lapse to come
    (:func:`~fidelite.ledger.inactivity.coming_lapse`) if it was earned by then."""

    available: int
    pending: int
    expiring_soon: int
    next_expiry: datetime | None
    debt: int  # owed, >= 0

    def expiring(self, points: int, expires: datetime, horizon: datetime) -> None:
        """Count ``points`` of ``available`` as expiring at ``expires`` (after now)."""
        self.expiring_soon += points if expires <= horizon else 0
        self.next_expiry = expires if self.next_expiry is None else min(self.next_expiry, expires)

    def release(
        self,
        lot: EndedHold,
        left: int,
        when: datetime,
        horizon: datetime,
        last: datetime | None,
        coming: Lapse | None = None,
    ) -> None:
        """Count ``lot`` released at ``when``, leaving ``left`` points once it has repaid
        debt first, as its release does (:func:`~fidelite.ledger.state.released_shares`);
        those are available unless past its date at ``when`` or earned at or before
        ``last``, the last activity of the member's inactivity lapse (then they are gone,
        as the expiry job will find them once released); they expire at its date or at
        the deadline of the ``coming`` lapse, whichever is first."""
        self.debt -= lot.remaining - left
        expires = lot.expires_at
        if not left or (expires is not None and expires <= when):
            return
        if last is not None and lot.earned_at <= last:
            return
        self.available += left
        if coming is not None and lot.earned_at <= coming.last_activity:
            expires = coming.deadline if expires is None else min(expires, coming.deadline)
        if expires is not None:
            self.expiring(left, expires, horizon)


def _held_lots(
    conn: Connection,
    subject: _Subject,
    when: datetime,
    horizon: datetime,
    last: datetime | None,
    coming: Lapse | None,
) -> _Held:
    """The member's available lots (and pending ones) at ``when``, before lots whose
    hold has ended are counted; debt as owed.

    Held lots leave out those past their date and those of the member's lapse (earned
    at or before ``last``). Of the held lots earned at or before the ``coming`` lapse's
    last activity, those without a date or dated after its deadline lapse at the
    deadline: their points are moved from their date (if any) to the deadline, so that
    a point is counted once, at the first of the two."""
    held = "state = 'available'" + ("" if last is None else " AND earned_at > :last")
    lapsing = f"{held} AND earned_at <= :l AND (expires_at IS NULL OR expires_at > :d)"
    stmt = text(
        "SELECT "
        f"COALESCE(SUM(CASE WHEN {held} AND (expires_at IS NULL "
        "  OR expires_at > :at) THEN remaining END), 0), "
        "COALESCE(SUM(CASE WHEN state = 'pending' AND (pending_until IS NULL "
        "  OR pending_until > :at) THEN remaining END), 0), "
        f"COALESCE(SUM(CASE WHEN {held} AND expires_at > :at "
        "  AND expires_at <= :h THEN remaining END), 0), "
        f"MIN(CASE WHEN {held} AND expires_at > :at THEN expires_at END) "
        + (
            ""
            if coming is None
            else f", COALESCE(SUM(CASE WHEN {lapsing} THEN remaining END), 0), "
            f"COALESCE(SUM(CASE WHEN {lapsing} AND expires_at <= :h THEN remaining END), 0) "
        )
        + "FROM lots WHERE member_id = :m AND currency = :c"
    ).bindparams(bindparam("at", type_=UTCDateTime()), bindparam("h", type_=UTCDateTime()))
    params: dict[str, Any] = {"at": when, "h": horizon, "m": subject.member_id,
                              "c": subject.currency}  # fmt: skip
    if last is not None:  # lapsed lots are gone as of `when`, like lots past their date
        stmt = stmt.bindparams(bindparam("last", type_=UTCDateTime()))
        params["last"] = last
    if coming is not None:
        stmt = stmt.bindparams(bindparam("l", type_=UTCDateTime()),
                               bindparam("d", type_=UTCDateTime()))  # fmt: skip
        params |= {"l": coming.last_activity, "d": coming.deadline}
    row = conn.execute(stmt, params).one()
    debt = member_debt(conn, subject.member_id, subject.currency)
    dated = _utc(row[3]) if row[3] is not None else None
    counted = _Held(int(row[0]), int(row[1]), int(row[2]), dated, debt)
    if coming is not None and int(row[4]):
        counted.expiring_soon -= int(row[5])  # counted at the deadline instead of their date
        counted.expiring(int(row[4]), coming.deadline, horizon)
    return counted


def _credit_expiry(
    given: datetime | None, policy: ExpiryPolicy | None, at: datetime, zone: ZoneInfo | None
) -> datetime | None:
    """The expiry date of a credit's new lot: ``given`` if any (it wins), else the date
    the program's ``policy`` gives points earned at ``at`` in ``zone`` (UTC if not
    given), exactly as an earned lot gets it (``after_earning``); else none (no policy:
    the bare ledger; ``never``; ``inactivity``, whose lots carry no date)."""
    if given is not None or policy is None:
        return given
    return policy_expiry(policy, at, zone or ZoneInfo("UTC"))


def _check_not_expired(
    expires_at: datetime | None, given: bool, at: datetime, now: datetime, zone: ZoneInfo | None
) -> None:
    """Refuse a credit whose lot expires at or before ``now`` (``invalid_request`` on
    ``expires_at``): it would be counted as credited, then expired by the next run of
    the expiry job. The message names the date (in ``zone``), and where it came from
    when the program's policy gave it from the credit's time ``at``."""
    if expires_at is None or expires_at > now:
        return
    local = zone or ZoneInfo("UTC")
    date, current = expires_at.astimezone(local).isoformat(), now.astimezone(local).isoformat()
    if given:
        raise invalid("expires_at", f"must be later than now ({current}): points expiring at "
                      f"{date} would already be expired")  # fmt: skip
    raise invalid("expires_at", f"the points would expire at {date}, the date the program's "
                  f"expiry policy gives points earned at {at.astimezone(local).isoformat()}, "
                  f"which is not later than now ({current}): give a later expiry date, or "
                  "credit them at a later time")  # fmt: skip


def _check_policy_hold(
    at: datetime,
    expires_at: datetime | None,
    pending_until: datetime | None,
    zone: ZoneInfo | None,
) -> None:
    """Refuse a credit held until ``pending_until`` at or after ``expires_at``, the date
    the program's expiry policy gave it (``invalid_request`` on ``pending_until``, as
    for a given date): its points would expire while still on hold. Dates in ``zone``."""
    if pending_until is None or expires_at is None or pending_until < expires_at:
        return
    local = zone or ZoneInfo("UTC")
    raise invalid("pending_until", "must be earlier than expires_at ("
                  f"{expires_at.astimezone(local).isoformat()}, the date the program's expiry "
                  f"policy gives points earned at {at.astimezone(local).isoformat()})")  # fmt: skip


def _check_inactivity_hold(
    at: datetime,
    pending_until: datetime | None,
    policy: ExpiryPolicy | None,
    zone: ZoneInfo | None,
) -> None:
    """Under an inactivity ``policy``, refuse a credit held until ``pending_until`` at
    or after the deadline the credit itself sets (``at`` plus the policy's months in
    ``zone``, :func:`~fidelite.engine.expiry.inactivity_deadline`): if the member does
    nothing more its points lapse then, still on hold, never spendable and never
    announced as expiring. ``invalid_request`` on ``pending_until``, as a hold ending
    at or after an after_earning date is refused (:func:`_check_policy_hold`), and as
    ``pending.days`` reaching that deadline is refused when the program is loaded."""
    if pending_until is None or policy is None:
        return
    local = zone or ZoneInfo("UTC")
    deadline = inactivity_deadline(policy, at, local)  # None: not inactivity, or past the calendar
    if deadline is None or pending_until < deadline:
        return
    raise invalid("pending_until", "must be earlier than the inactivity deadline ("
                  f"{deadline.astimezone(local).isoformat()}, the date the program's expiry "
                  f"policy lapses points earned at {at.astimezone(local).isoformat()} if the "
                  "member does nothing more)")  # fmt: skip


class _NothingToDo(Exception):
    """A job found nothing to do for one member (e.g. expired by a concurrent run)."""


_LATEST_MOVE_SQL = text(
    "SELECT MAX(occurred_at) AS last FROM ledger_transactions "
    "WHERE member_id = :m AND currency = :c"
).columns(last=UTCDateTime())

_HISTORY_SQL = text(
    "SELECT t.id, t.kind, t.occurred_at, t.currency, t.reason, t.source, "
    "t.actor, t.reverses_id, t.reversed_points, t.detail, "
    "COALESCE(s.av, 0), COALESCE(s.pe, 0), COALESCE(s.de, 0) "
    "FROM ledger_transactions t LEFT JOIN ("
    "  SELECT p.transaction_id AS tid, "
    "  COALESCE(SUM(CASE WHEN a.kind = 'available' THEN p.points END), 0) AS av, "
    "  COALESCE(SUM(CASE WHEN a.kind = 'pending' THEN p.points END), 0) AS pe, "
    "  COALESCE(SUM(CASE WHEN a.kind = 'debt' THEN p.points END), 0) AS de "
    "  FROM postings p JOIN accounts a ON a.id = p.account_id AND a.member_id = :m "
    "  GROUP BY p.transaction_id"
    ") s ON s.tid = t.id "
    "WHERE t.member_id = :m "  # a reversal of expired points moves none of their accounts
    "AND (CAST(:c AS VARCHAR(32)) IS NULL OR t.currency = :c) "
    "AND (CAST(:b AS BIGINT) IS NULL OR t.id < :b) "
    "ORDER BY t.id DESC LIMIT :n"
)

_SIGNED_SQL = text(
    "SELECT id, points, result FROM ledger_transactions WHERE program_id = :p AND id IN :ids"
).bindparams(bindparam("ids", expanding=True))


# ---------------------------------------------------------------- plan pieces


def _release_hash(transaction_id: int, at: datetime | None) -> str:
    """The request fingerprint of a release (``at``: the time given, if any)."""
    return request_hash({"op": "release", "transaction_id": transaction_id, "at": at})


def _release_plan(conn: Connection, target: Target, transaction_id: int) -> Plan:
    """Make the pending lot of earn ``transaction_id`` available, repaying debt first
    (``not_pending`` if it has no pending lot)."""
    lot = lot_of(conn, transaction_id)
    if lot is None or lot.state != "pending":
        raise Rejected(
            RejectionCode.NOT_PENDING,
            f"transaction {transaction_id} has no pending points",
            field="transaction_id",
        )
    plan = Plan("release", "move", lot.remaining, "pending points released")
    plan.detail = {"earn_transaction_id": transaction_id}
    plan.releases.append(lot.id)
    plan.member("pending", lot.id, -lot.remaining)
    repay = min(lot.remaining, -target.member_balances["debt"])
    if repay:
        plan.draws.append((lot.id, repay, "spent"))
        plan.member("debt", None, repay)
        plan.debt_repaid = repay
    plan.member("available", lot.id, lot.remaining - repay)
    return plan


_RELEASED_AFTER_SQL = (
    text(
        "SELECT p.lot_id, MAX(r.occurred_at) AS released_at FROM ledger_transactions r "
        "JOIN postings p ON p.transaction_id = r.id WHERE r.member_id = :m "
        "AND r.currency = :c AND r.kind = 'release' AND r.occurred_at > :at "
        "AND p.lot_id IS NOT NULL GROUP BY p.lot_id"
    )
    .bindparams(bindparam("at", type_=UTCDateTime()))
    .columns(lot_id=Integer(), released_at=UTCDateTime())
)


def _released_after(conn: Connection, subject: _Subject, when: datetime) -> dict[int, datetime]:
    """The subject's lots whose release is dated after ``when``, with that release's
    time: not yet available at ``when`` in the books, so no expiry of them is dated
    before it (:func:`_expiry_plan`)."""
    params = {"m": subject.member_id, "c": subject.currency, "at": when}
    rows = conn.execute(_RELEASED_AFTER_SQL, params).all()
    return {int(lot): released for lot, released in rows}


def _lapse(
    conn: Connection, program_id: str, subject: _Subject, rule: Inactivity | None, when: datetime
) -> Lapse | None:
    """The member's latest inactivity lapse by ``when`` that still holds points in the
    subject's currency (``None``: no inactivity rule, or nothing held has lapsed).

    With a rule, one indexed read of the member's oldest held lot, and a read of their
    activity since it only when that lot is old enough to have lapsed; without one,
    nothing: earns never call this, and programs without the policy pay nothing."""
    if rule is None:
        return None
    return member_lapse(conn, program_id, subject.member_id, subject.member_ref,
                        subject.currency, rule, when)  # fmt: skip


_LATER_LOTS_SQL = text(  # available, or expired since (a back-dated debit claims those)
    "SELECT l.id FROM lots l JOIN ledger_transactions e ON e.id = l.earn_transaction_id "
    "WHERE l.member_id = :m AND l.currency = :c AND l.state IN ('available', 'expired') "
    "AND ((l.earned_at > :at AND e.recorded_at > :at) OR (l.pending_until > :at "
    "AND l.pending_until > l.earned_at AND NOT EXISTS (SELECT 1 FROM postings p "
    "JOIN ledger_transactions r ON r.id = p.transaction_id WHERE p.lot_id = l.id "
    "AND r.kind = 'release' AND r.occurred_at <= :at)))"
).bindparams(bindparam("at", type_=UTCDateTime()))


def _spendable_at(
    conn: Connection,
    subject: _Subject,
    when: datetime,
    *,
    earned_after: datetime | None = None,
    claim: bool = False,
) -> tuple[list[OpenLot], dict[int, int]]:
    """The lots a debit dated ``when`` may draw (:func:`spendable_lots`) and, with
    ``claim``, the expired points it may claim back (lot id -> points,
    :func:`~fidelite.ledger.state.claimable_expired_lots`: lots still within their date
    at ``when`` that an expiry dated after ``when`` moved out by that date), less those
    the member did not hold yet at ``when``: earned after it, or still on hold then
    (their hold ends after ``when`` and no release dated at or before ``when`` freed
    them). A back-dated debit draws only what the member could have spent at its date,
    so that no lot is drawn before it was earned, and all of it whether the expiry job
    ran before the debit was recorded or not.

    A lot dated ahead of the ledger's clock (within a program's future tolerance: a till
    clock a few minutes fast) is held from when its earn was recorded: a debit dated at
    or after that time may draw it."""
    args = (conn, subject.member_id, subject.currency, when)
    lots = spendable_lots(*args, earned_after=earned_after)
    expired = claimable_expired_lots(*args) if claim else {}
    if not lots and not expired:
        return lots, expired
    params = {"m": subject.member_id, "c": subject.currency, "at": when}
    later = set(conn.execute(_LATER_LOTS_SQL, params).scalars())
    return (
        [lot for lot in lots if lot.id not in later],
        {lot_id: n for lot_id, n in expired.items() if lot_id not in later},
    )


def _count_claimable(
    conn: Connection, subject: _Subject, when: datetime, horizon: datetime, held: _Held
) -> None:
    """Count in ``held`` (a balance at ``when``) the expired points of lots still within
    their date at ``when`` that a debit dated then may claim back
    (:func:`~fidelite.ledger.state.claimable_expired_lots`), as available and expiring
    at their lot's date: the balance says what a spend could draw at ``when``."""
    expired = claimable_expired_lots(conn, subject.member_id, subject.currency, when)
    if not expired:
        return
    rows = conn.execute(
        text("SELECT id, expires_at FROM lots WHERE id IN :ids").bindparams(
            bindparam("ids", expanding=True)
        ),
        {"ids": sorted(expired)},
    ).all()
    for lot_id, expires in rows:
        held.available += expired[int(lot_id)]
        held.expiring(expired[int(lot_id)], _utc(expires), horizon)


def _not_before(
    conn: Connection, program_id: str, transaction_id: int, when: datetime, move: str
) -> None:
    """Refuse (``invalid_request`` on ``at``) a release or reversal dated before the
    transaction it releases or reverses: points cannot leave, or come back, before they
    arrived (a reversal of an earn dated before it would take points the member did not
    hold yet, and make outstanding points negative). Both times are named, in UTC."""
    row = conn.execute(
        text(
            "SELECT occurred_at FROM ledger_transactions WHERE id = :t AND program_id = :p"
        ).columns(occurred_at=UTCDateTime()),
        {"t": transaction_id, "p": program_id},
    ).first()
    if row is None or row[0] is None:
        return
    original = _utc(row[0])
    if when < original:
        raise Rejected(
            RejectionCode.INVALID_REQUEST,
            f"a {move} cannot be dated before the transaction it "
            f"{'releases' if move == 'release' else 'reverses'}: at "
            f"{when.astimezone(UTC).isoformat()} is before transaction {transaction_id} "
            f"at {original.isoformat()}",
            field="at",
            detail={"at": when.astimezone(UTC).isoformat(), "original_at": original.isoformat()},
        )


def _debit_lots(
    plan: Plan,
    conn: Connection,
    subject: _Subject,
    points: int,
    program_kind: str,
    when: datetime,
    lapse: Lapse | None = None,
    zone: ZoneInfo | None = None,
    *,
    claim: bool = False,
) -> None:
    """Draw ``points`` from spendable lots, soonest-expiring first, or reject (the
    refusal's message gives its times in ``zone``, the program's, UTC if not given).
    Only lots the member held at ``when`` are drawn (:func:`_spendable_at`).

    With ``claim`` (the program has no inactivity rule), a debit dated before a lot's
    date draws that lot even if the expiry job has since moved it out: in spending
    order with the open lots, its expired points are taken back from the program's
    ``expired`` account (a compensating posting, the expiry entry unchanged; the detail
    names them, :data:`~fidelite.ledger.state.CLAIMS`), as a reversal's shortfall does
    (:func:`_draw_held`). So a back-dated spend is accepted, and draws the same lots,
    whether the job ran before it was recorded or after. The job and the debit both
    hold the member's lock: one of them sees the other's entry.

    Spendable at ``when``: not past their expiry date and not earned at or before the
    last activity of ``lapse``, the member's inactivity lapse by ``when`` (:func:`_lapse`,
    computed under the member's lock as the expiry job computes it, so a debit and a job
    never both take a point). Lapsed points are only refused, not moved out here: the
    expiry stays the job's entry (its key, its ``as_of``), so a rejected debit changes
    nothing and the job later expires them once. The debit is recorded as activity at
    ``when``, which the lapse already treats as too late for the points earned before
    the deadline: they stay lapsed.
    """
    if plan.detail and CLAIMS in plan.detail:  # the ledger's own key: never the caller's
        raise invalid("detail", f"{CLAIMS!r} is reserved")
    earned_after = None if lapse is None else lapse.last_activity
    lots, expired = _spendable_at(conn, subject, when, earned_after=earned_after, claim=claim)
    available = sum(lot.remaining for lot in lots) + sum(expired.values())
    if available < points:
        raise _insufficient(conn, subject, available, points, lapse, when, zone)
    _, claims = _draw_claiming(plan, conn, lots, expired, points)
    plan.program(program_kind, points)
    if claims:
        plan.detail = (plan.detail or {}) | {
            "from_expired_points": sum(claims.values()),
            CLAIMS: {str(k): v for k, v in claims.items()},
        }


def _insufficient(
    conn: Connection,
    subject: _Subject,
    available: int,
    points: int,
    lapse: Lapse | None,
    when: datetime,
    zone: ZoneInfo | None = None,
) -> Rejected:
    """``insufficient_points`` naming what is available, what is still pending (held in
    a return window: a member seeing a higher total needs to know why it cannot be
    spent, and from when it can) and, if any, what lapsed.

    The message gives every time in ``zone``, the program's (UTC if not given), with its
    offset: the end of the first hold as the lapse's deadline, which is computed in it.
    The detail's ``pending_until`` stays in UTC, as the API documents it."""
    shown: tzinfo = zone or (lapse.deadline.tzinfo if lapse is not None else None) or UTC
    message = (
        f"member {subject.member_ref!r} has {available} {subject.currency} available, "
        f"{points} requested"
    )
    detail: dict[str, Any] = {"available": available, "requested": points}
    pending, first_end = _held_in_pending(conn, subject, when)
    if pending:
        message += f"; {pending} more pending"
        detail["pending"] = pending
        if first_end is not None:
            message += f" (the first available from {first_end.astimezone(shown).isoformat()})"
            detail["pending_until"] = first_end.isoformat()
    lapsed = 0 if lapse is None else lapsed_points(conn, subject.member_id,
                                                   subject.currency, lapse, when)  # fmt: skip
    if lapse is not None and lapsed:
        # in the program's zone, as the deadline was computed (the same local time)
        deadline = lapse.deadline.astimezone(shown).isoformat()
        message += f"; {lapsed} lapsed at {deadline} after no activity since " + (
            lapse.last_activity.astimezone(shown).isoformat()
        )
        detail |= {"lapsed": lapsed, "lapsed_at": deadline}
    return Rejected(RejectionCode.INSUFFICIENT_POINTS, message, field="points", detail=detail)


def _held_in_pending(
    conn: Connection, subject: _Subject, when: datetime
) -> tuple[int, datetime | None]:
    """The member's points in ``subject.currency`` still held at ``when`` (pending, their
    hold not ended) and the end of the first hold (UTC; ``None`` if every hold is open
    ended). Read only for a refusal's message."""
    row = conn.execute(
        text(
            "SELECT COALESCE(SUM(remaining), 0), MIN(pending_until) FROM lots "
            "WHERE member_id = :m AND currency = :c AND state = 'pending' "
            "AND (pending_until IS NULL OR pending_until > :at)"
        ).bindparams(bindparam("at", type_=UTCDateTime())),
        {"m": subject.member_id, "c": subject.currency, "at": when},
    ).one()
    return int(row[0]), (_utc(row[1]) if row[1] is not None else None)


_NO_TIME = datetime.min.replace(tzinfo=UTC)


@dataclass
class _ExpiryPlan(Plan):
    """An expiry's plan, with the time its entry is dated at (:func:`_expiry_plan`)."""

    at: datetime = _NO_TIME  # always given


def _expiry_plan(
    dated: list[OpenLot],
    lapsed: list[OpenLot],
    lapse: Lapse | None,
    when: datetime,
    released: dict[int, datetime] | None = None,
) -> Plan:
    """Move the remainders of lots due by date and of lots lapsed by inactivity out to
    the program's ``expired`` account; the history says which rule applied and when.

    The entry is dated ``when`` (the job's ``as_of``, kept in ``detail``), or at the
    latest release after it of a lot it takes (``released``: lot id -> release time),
    so that no lot's points leave ``available`` before they entered it."""
    lots = dated + lapsed
    reason = "points expired after inactivity" if lapsed else "points expired"
    later = [released[lot.id] for lot in lots if released and lot.id in released]
    plan = _ExpiryPlan("expire", "debit", sum(lot.remaining for lot in lots), reason,
                       at=max([when, *later]))  # fmt: skip
    plan.detail = {"as_of": when.isoformat()}
    if lapse is not None and lapsed:
        plan.detail |= {
            "last_activity": lapse.last_activity.astimezone(UTC).isoformat(),
            "lapsed_at": lapse.deadline.astimezone(UTC).isoformat(),
        }
    for lot in lots:
        plan.draws.append((lot.id, lot.remaining, "expired"))
        plan.member("available", lot.id, -lot.remaining)
    plan.program("expired", plan.points)
    return plan


def _draw(plan: Plan, lots: list[OpenLot], points: int, closed_state: str) -> int:
    """Draw up to ``points`` from ``lots`` in order; return what was drawn."""
    left = points
    for lot in lots:
        if left == 0:
            break
        take = min(left, lot.remaining)
        plan.draws.append((lot.id, take, closed_state))
        plan.member(lot.state, lot.id, -take)
        left -= take
    return points - left


def _take_back(
    plan: Plan,
    conn: Connection,
    subject: _Subject,
    target: Target,
    transaction_id: int,
    amount: int,
    program_kind: str,
    policy: Shortfall,
    when: datetime,
    *,
    lapsing: tuple[str, Inactivity | None] = ("", None),
) -> None:
    """Reverse a credit: what is left in its own lot first, then what of the lot expired
    (already gone: moved from ``expired`` back to ``issued``, nothing taken from the
    member), and only then what the member used, per the shortfall policy.

    A shortfall is drawn from what the member holds when the reversal is recorded, even
    a back-dated one (points earned after ``when`` included: a refund does not write off,
    or put in debt, what the member can still pay back), and only what they could spend
    at ``when``: not past their date, and, under the program's inactivity rule
    (``lapsing``: program and rule), not lapsed (:func:`_lapse`, computed under the
    member's lock as a spend computes it, and only when there is a shortfall to draw).
    Lapsed points stay for the expiry job to move out once. Without an inactivity rule,
    points of such lots that an expiry dated after ``when`` already moved out by their
    date are claimed back from ``expired`` (:func:`_draw_held`): the outcome does not
    depend on when the expiry job ran. Under the rule nothing expired is claimed (a late
    job's entry names only the latest lapse): there, the order can still matter."""
    plan.program(program_kind, amount)
    lot = lot_of(conn, transaction_id)
    own = [lot] if lot is not None and lot.state in ("available", "pending") else []
    taken = _draw(plan, own, amount, "reversed")
    if lot is not None and taken < amount:
        plan.already_expired = min(amount - taken, unclaimed_expiry(conn, lot.id))
        plan.program("expired", -plan.already_expired)
    short = amount - taken - plan.already_expired
    if plan.already_expired:
        plan.detail = {"already_expired": plan.already_expired}
    if short == 0:
        return
    plan.shortfall = short
    if policy is Shortfall.REJECT:
        raise already_spent(short, amount)
    lapse = _lapse(conn, lapsing[0], subject, lapsing[1], when)
    after = None if lapse is None else lapse.last_activity
    drawn, claims = _draw_held(plan, conn, subject, short, when,
                               exclude_lot=lot.id if lot else None, earned_after=after,
                               claim=lapsing[1] is None)  # fmt: skip
    rest = short - drawn
    if policy is Shortfall.WITHIN_BALANCE:
        plan.program("written_off", -rest)
        plan.written_off = rest
    else:
        plan.member("debt", None, -rest)
        plan.debt_added = rest
    plan.detail = (plan.detail or {}) | {  # the history says where the shortfall went
        "shortfall": short, "policy": policy.value, "from_other_points": short - rest,
        "written_off": plan.written_off, "debt_added": plan.debt_added,
    }  # fmt: skip
    if claims:
        plan.detail |= {"from_expired_points": sum(claims.values()),
                        CLAIMS: {str(k): v for k, v in claims.items()}}  # fmt: skip


def _draw_held(
    plan: Plan,
    conn: Connection,
    subject: _Subject,
    points: int,
    when: datetime,
    *,
    exclude_lot: int | None,
    earned_after: datetime | None,
    claim: bool,
) -> tuple[int, dict[int, int]]:
    """Draw up to ``points`` of a reversal's shortfall dated ``when`` from what the
    member holds, in spending order: the lots they could spend at ``when``
    (:func:`spendable_lots`), and, with ``claim`` (the program has no inactivity rule),
    the points of lots still within their date at ``when`` that an expiry dated after
    ``when`` already moved out (:func:`claimable_expired_lots`), taken back from the
    program's ``expired`` account (a compensating entry: the expiry is not changed).

    So the shortfall draws the same lots whether the expiry job ran before the reversal
    was recorded or after it: breakage is what expired net of those claims. Returns the
    points drawn and ``{lot id: points}`` of them claimed from expired points. Without
    anything claimable, one read more than drawing from the held lots alone."""
    args = (conn, subject.member_id, subject.currency, when)
    held = spendable_lots(*args, exclude_lot=exclude_lot, earned_after=earned_after)
    expired = claimable_expired_lots(*args, exclude_lot=exclude_lot) if claim else {}
    return _draw_claiming(plan, conn, held, expired, points)


def _draw_claiming(
    plan: Plan, conn: Connection, held: list[OpenLot], expired: dict[int, int], points: int
) -> tuple[int, dict[int, int]]:
    """Draw up to ``points`` from the ``held`` lots and the ``expired`` points that may
    be claimed back (lot id -> points), together in spending order; each claim is taken
    from the program's ``expired`` account. Returns the points drawn and
    ``{lot id: points}`` claimed."""
    if not expired:
        return _draw(plan, held, points, "spent"), {}
    by_id = {lot.id: lot for lot in held}
    claims: dict[int, int] = {}
    left = points
    for lot_id in in_spending_order(conn, set(by_id) | set(expired)):
        if left == 0:
            break
        if lot_id in by_id:
            left -= _draw(plan, [by_id[lot_id]], left, "spent")
        take = min(left, expired.get(lot_id, 0))
        if take:
            claims[lot_id] = take
            plan.program("expired", -take)
            left -= take
    return points - left, claims


def _put_back(
    plan: Plan,
    conn: Connection,
    target: Target,
    transaction_id: int,
    amount: int,
    program_kind: str,
) -> None:
    """Reverse a debit: repay debt first, then refill the lots it drew (last drawn first).

    An expiry puts back only expired points that no reversal of their earn has claimed
    (:func:`~fidelite.ledger.state.unclaimed_expiry`): the points of a refunded purchase
    do not come back with it. Likewise a spend (or debit adjustment) whose points a
    reversal of their earn wrote off (``within_balance``) does not give those back to
    the member: they go back out of ``written_off`` (:func:`_unclaimed_write_off`), as
    under ``debt`` they would repay the debt, and the entry's detail says how many
    (``written_off_restored``) and from which lots.

    The expired points a back-dated spend (or debit adjustment) claimed back
    (:func:`_debit_lots`) go back into their lots too, after the lots it drew (they
    come first in spending order): past their date, those points are expired again
    by the next expiry job (a cancelled redemption expires them at once), exactly as
    had the job run after the spend.

    What a lot gets back beyond its own unclaimed write-off first goes to the lots its
    earn's reversals drew their shortfall from instead (:class:`_Returns`): those
    points were the member's, taken in place of the spent ones."""
    plan.program(program_kind, -amount)
    draws = restorable_draws(conn, transaction_id, every=program_kind != "expired")
    if program_kind != "expired":
        draws += _debit_claims(conn, transaction_id)
    if program_kind == "expired":
        draws = [(lot_id, min(n, unclaimed_expiry(conn, lot_id))) for lot_id, n in draws]
        reversible = sum(n for _, n in draws)
        if amount > reversible:
            raise Rejected(
                RejectionCode.REVERSAL_EXCEEDS_ORIGINAL,
                f"only {reversible} of these expired points can be put back: the others "
                "belong to earns reversed since (e.g. refunded purchases)",
                field="points",
                detail={"reversible": reversible},
            )
    repay = min(amount, -target.member_balances["debt"])
    if repay:
        plan.member("debt", None, repay)
        plan.debt_repaid = repay
    left = amount - repay
    if program_kind != "expired":
        draws = _less_restored(conn, transaction_id, draws)
    returns = _Returns(conn, plan)
    for lot_id, restorable in draws:
        if left == 0:
            break
        give = min(left, restorable)
        if program_kind == "expired":
            plan.refills.append((lot_id, give))
            plan.member("available", lot_id, give)
        else:
            returns.put(lot_id, give)
        left -= give
    returns.record()
    if left:
        raise AssertionError(
            f"transaction {transaction_id}: {left} points have no lot to return to"
        )


def _debit_claims(conn: Connection, transaction_id: int) -> list[tuple[int, int]]:
    """Per lot, the expired points debit ``transaction_id`` (a spend or debit
    adjustment) claimed back (:func:`_debit_lots`) that its reversals have not yet put
    back into the lot, last claimed first (the order reversals refill lots in). Nothing
    is read beyond the debit's own detail when it claimed none."""
    detail = conn.execute(
        text("SELECT detail FROM ledger_transactions WHERE id = :t"), {"t": transaction_id}
    ).scalar()
    stored = detail if detail is None or isinstance(detail, dict) else _json(detail)
    claims = {int(k): int(v) for k, v in ((stored or {}).get(CLAIMS) or {}).items()}
    if not claims:
        return []
    refilled = conn.execute(
        text(
            "SELECT p.lot_id, SUM(p.points) FROM postings p "
            "JOIN ledger_transactions r ON r.id = p.transaction_id "
            "JOIN accounts a ON a.id = p.account_id WHERE r.reverses_id = :t "
            "AND a.kind = 'available' AND p.lot_id IN :ids GROUP BY p.lot_id"
        ).bindparams(bindparam("ids", expanding=True)),
        {"t": transaction_id, "ids": sorted(claims)},
    ).all()
    back = {int(lot_id): int(n) for lot_id, n in refilled}
    left = [(lot_id, claims[lot_id] - back.get(lot_id, 0))
            for lot_id in reversed(in_spending_order(conn, set(claims)))]  # fmt: skip
    return [(lot_id, n) for lot_id, n in left if n > 0]


RETURNED = "substitutes_returned"
"""Key of a debit reversal's ``detail``: ``{lot id: {other lot id: points}}``, the points
it gave back on account of a lot that went to another lot instead (:class:`_Returns`)."""


class _Returns:
    """The points a debit's reversal puts back, lot by lot (:func:`_put_back`).

    Points given back to a lot first restore its unclaimed write-off
    (:func:`_unclaimed_write_off`). The rest goes to the lots from which reversals of
    the lot's earn drew their shortfall instead and that no reversal gave back yet
    (:func:`_substitutes`; into each, as into the lot, write-off first) and only then
    into the lot itself. A refunded purchase whose points were spent takes the
    member's other points in their place; a cancellation of the spend returns those,
    and restores what the other lots' own refunds wrote off meanwhile (those points
    were gone because they were taken in place): the member ends where they would
    under ``debt``. The detail records, per lot, where its points went (:data:`RETURNED`)
    and whose write-off was restored (``written_off_restored_lots``)."""

    def __init__(self, conn: Connection, plan: Plan) -> None:
        self.conn = conn
        self.plan = plan
        self.restored: dict[str, int] = {}
        self.routed: dict[str, dict[str, int]] = {}
        self.refilled: dict[int, int] = {}

    def put(self, lot_id: int, points: int, via: tuple[int, ...] = ()) -> None:
        """Give ``points`` back on account of lot ``lot_id`` (``via``: the lots whose
        points were sent on to it, never sent to again)."""
        unclaimed = _unclaimed_write_off(self.conn, lot_id) - self.restored.get(str(lot_id), 0)
        cancelled = min(points, max(unclaimed, 0))
        if cancelled:
            self.restored[str(lot_id)] = self.restored.get(str(lot_id), 0) + cancelled
            self.plan.program("written_off", cancelled)
        rest = points - cancelled
        if rest:
            sent = self.routed.get(str(lot_id), {})
            for other, owed in _substitutes(self.conn, lot_id):
                if rest == 0:
                    break
                owed -= sent.get(str(other), 0)
                if other in via or owed <= 0:
                    continue
                give = min(rest, owed)
                sent[str(other)] = sent.get(str(other), 0) + give
                self.routed[str(lot_id)] = sent
                self.put(other, give, (*via, lot_id))
                rest -= give
        if rest:
            self.refilled[lot_id] = self.refilled.get(lot_id, 0) + rest

    def record(self) -> None:
        for lot_id, points in self.refilled.items():
            self.plan.refills.append((lot_id, points))
            self.plan.member("available", lot_id, points)
        if self.restored:
            self.plan.detail = {"written_off_restored": sum(self.restored.values()),
                                "written_off_restored_lots": self.restored}  # fmt: skip
        if self.routed:
            self.plan.detail = (self.plan.detail or {}) | {RETURNED: self.routed}


def _substitutes(conn: Connection, lot_id: int) -> list[tuple[int, int]]:
    """Per other lot, the points reversals of lot ``lot_id``'s earn drew from it (their
    shortfall, taken from the member's other points), less what reversals of debits gave
    back to it on account of this lot (:data:`RETURNED`); last drawn first."""
    drawn = conn.execute(
        text(
            "SELECT p.lot_id, -SUM(p.points) FROM postings p "
            "JOIN ledger_transactions t ON t.id = p.transaction_id "
            "JOIN accounts a ON a.id = p.account_id "
            "JOIN lots l ON l.earn_transaction_id = t.reverses_id "
            "WHERE l.id = :l AND t.kind = 'reverse' AND a.kind = 'available' "
            "AND a.member_id IS NOT NULL AND p.lot_id <> :l AND p.points < 0 "
            "GROUP BY p.lot_id ORDER BY MIN(p.id) DESC"
        ),
        {"l": lot_id},
    ).all()
    if not drawn:
        return []
    back: dict[str, int] = {}
    for routed in _member_reversal_details(conn, lot_id, RETURNED):
        for other, n in (routed.get(str(lot_id)) or {}).items():
            back[other] = back.get(other, 0) + int(n)
    owed = [(int(other), int(n) - back.get(str(other), 0)) for other, n in drawn]
    return [(other, n) for other, n in owed if n > 0]


def _member_reversal_details(conn: Connection, lot_id: int, key: str) -> list[Any]:
    """The ``key`` of the details of the reversals of lot ``lot_id``'s member that have it."""
    rows = conn.execute(
        text(
            "SELECT r.detail FROM ledger_transactions r WHERE r.kind = 'reverse' "
            "AND r.member_id = (SELECT member_id FROM lots WHERE id = :l) "
            f"AND CAST(r.detail AS TEXT) LIKE '%{key}%'"
        ),
        {"l": lot_id},
    ).scalars()
    found = []
    for detail in rows:
        stored = detail if isinstance(detail, dict) else _json(detail)
        if stored and stored.get(key):
            found.append(stored[key])
    return found


def _unclaimed_write_off(conn: Connection, lot_id: int) -> int:
    """Points of lot ``lot_id`` that reversals of its earn wrote off (spent before the
    refund, under ``within_balance``) and that no cancellation has restored yet.

    Cancelling a spend that drew them does not give them back to the member: the refund
    took them back from the member already (written off, as ``debt`` would record them
    owed and the cancellation repay the debt); the cancellation moves them back out of
    ``written_off`` instead (:func:`_put_back`). So does the cancellation of a spend
    of another lot whose refund drew this lot's points in place of the spent ones
    (:class:`_Returns`): any reversal of the member's may have restored them."""
    written = conn.execute(
        text(
            "SELECT COALESCE(-SUM(p.points), 0) FROM postings p "
            "JOIN ledger_transactions t ON t.id = p.transaction_id "
            "JOIN accounts a ON a.id = p.account_id "
            "JOIN lots l ON l.earn_transaction_id = t.reverses_id "
            "WHERE l.id = :l AND a.kind = 'written_off' AND a.member_id IS NULL"
        ),
        {"l": lot_id},
    ).scalar_one()
    if not written:
        return 0
    restored = sum(
        int(lots.get(str(lot_id), 0))
        for lots in _member_reversal_details(conn, lot_id, "written_off_restored_lots")
    )
    return max(int(written) - restored, 0)


def _less_restored(
    conn: Connection, transaction_id: int, draws: list[tuple[int, int]]
) -> list[tuple[int, int]]:
    """``draws`` (:func:`restorable_draws`, every lot) less what earlier reversals of the
    debit put back on account of a lot without refilling it: moved back out of
    ``written_off`` or sent to another lot (:data:`RETURNED`; what such a lot got, as a
    restored write-off or a refill, was not put back on its own account)."""
    done: dict[str, int] = {}
    rows = conn.execute(
        text("SELECT r.detail FROM ledger_transactions r WHERE r.kind = 'reverse' "
             "AND r.reverses_id = :t"),
        {"t": transaction_id},
    ).scalars()  # fmt: skip
    for detail in rows:
        stored = (detail if detail is None or isinstance(detail, dict) else _json(detail)) or {}
        for lot_id, n in (stored.get("written_off_restored_lots") or {}).items():
            done[lot_id] = done.get(lot_id, 0) + int(n)
        for lot_id, sent in (stored.get(RETURNED) or {}).items():
            for other, n in sent.items():
                done[lot_id] = done.get(lot_id, 0) + int(n)
                done[other] = done.get(other, 0) - int(n)
    left = [(lot_id, n - done.get(str(lot_id), 0)) for lot_id, n in draws]
    return [(lot_id, n) for lot_id, n in left if n > 0]


def _reversal_amount(original: dict[str, Any], requested: int | None) -> int:
    if original["kind"] in ("release", "reverse"):
        raise Rejected(
            RejectionCode.NOT_REVERSIBLE,
            f"a {original['kind']} cannot be reversed"
            + ("; reverse the earn instead" if original["kind"] == "release" else ""),
            field="transaction_id",
        )
    left = int(original["points"]) - int(original["reversed_points"])
    amount = left if requested is None else requested
    if amount > left or left == 0:
        raise Rejected(
            RejectionCode.REVERSAL_EXCEEDS_ORIGINAL,
            f"transaction {original['id']} has {left} points left to reverse, {amount} asked",
            field="points",
            detail={"reversible": left},
        )
    return amount


# ----------------------------------------------------------------- row helpers


def _target(
    conn: Connection,
    program_id: str,
    subject: _Subject,
    cache: dict[tuple[str, str], dict[str, int]],
) -> Target:
    accounts = member_accounts(conn, program_id, subject.member_id, subject.currency)
    known = cache.get((program_id, subject.currency))
    if known is None:  # program-side account ids never change once created
        known = program_accounts(conn, program_id, subject.currency)
        cache[(program_id, subject.currency)] = known
    return Target(
        program_id=program_id,
        member_id=subject.member_id,
        member_ref=subject.member_ref,
        currency=subject.currency,
        member_accounts=accounts.ids,
        member_balances=accounts.balances,
        program_accounts=known,
    )


def _transaction(conn: Connection, program_id: str, transaction_id: int) -> dict[str, Any]:
    row = conn.execute(
        text(
            "SELECT id, kind, points, reversed_points, result FROM ledger_transactions "
            "WHERE id = :t AND program_id = :p"
        ),
        {"t": transaction_id, "p": program_id},
    ).one()
    result = row[4] if isinstance(row[4], dict) else _json(row[4])
    return {
        "id": int(row[0]),
        "kind": str(row[1]),
        "points": int(row[2]),
        "reversed_points": int(row[3]),
        "direction": result["direction"],
    }


_PRIOR_SQL = {
    "ledger_transactions": "SELECT request_hash, result FROM ledger_transactions "
    "WHERE program_id = :p AND idempotency_key = :k",
    "idempotency_records": "SELECT request_hash, result FROM idempotency_records "
    "WHERE program_id = :p AND key = :k",
}


def _prior(conn: Connection, table: str, program_id: str, key: str) -> Prior | None:
    """The request fingerprint and stored result already recorded under ``key``."""
    row = conn.execute(text(_PRIOR_SQL[table]), {"p": program_id, "k": key}).first()
    if row is None:
        return None
    return str(row[0]), row[1] if isinstance(row[1], dict) else _json(row[1])


def _transaction_count(conn: Connection, member_id: int) -> int:
    """How many ledger transactions the member has: their state's version."""
    count = conn.execute(
        text("SELECT COUNT(*) FROM ledger_transactions WHERE member_id = :m"), {"m": member_id}
    ).scalar()
    return int(count or 0)


def _ended_currencies(conn: Connection, member_id: int, at: datetime) -> list[str]:
    """The currencies in which the member has pending lots whose hold ended at ``at``."""
    rows = conn.execute(
        text(
            f"SELECT DISTINCT currency FROM lots WHERE member_id = :m AND {HOLD_ENDED} "
            "ORDER BY currency"
        ).bindparams(bindparam("at", type_=UTCDateTime())),
        {"m": member_id, "at": at},
    ).scalars()
    return [str(c) for c in rows]


def _prior_transaction(conn: Connection, program_id: str, key: str) -> Prior | None:
    return _prior(conn, "ledger_transactions", program_id, key)


def _prior_record(conn: Connection, program_id: str, key: str) -> Prior | None:
    return _prior(conn, "idempotency_records", program_id, key)


def _same_request(prior: Prior, digest: str, key: str) -> dict[str, Any]:
    """The stored result if ``digest`` matches the first request; else the conflict."""
    stored_hash, result = prior
    if stored_hash != digest:
        raise Rejected(
            RejectionCode.IDEMPOTENCY_CONFLICT,
            f"key {key!r} was already used for a different request",
            field="key",
        )
    return result


def _replay(prior: Prior, digest: str, key: str) -> Receipt:
    return Receipt.from_json(_same_request(prior, digest, key), replayed=True)


def _member_replay(
    conn: Connection, program_id: str, prior: Prior, digest: str, key: str
) -> MemberInfo:
    result = _same_request(prior, digest, key)
    row = conn.execute(
        text("SELECT id, ref, status, created_at FROM members WHERE id = :m"),
        {"m": result["member_id"]},
    ).one()
    return MemberInfo(int(row[0]), program_id, str(row[1]), str(row[2]), _utc(row[3]), True)


def _member_row(conn: Connection, program_id: str, ref: str) -> Any:
    return conn.execute(
        text("SELECT id, status, created_at FROM members WHERE program_id = :p AND ref = :r"),
        {"p": program_id, "r": ref},
    ).first()


def _writable(program_id: str, ref: str, row: Any) -> None:
    """Refuse (``member_erased``) a write naming an erased member (``row``: from
    :func:`_member_row`): its account keeps the books but takes no new activity
    (:func:`~fidelite.ledger.errors.member_erased`)."""
    if row[1] == "erased":
        raise member_erased(program_id, ref)


def _lock(
    conn: Connection, program_id: str, ref: str, member_id: int, *, books: bool, named: bool = True
) -> None:
    """Take the member's lock (:func:`~fidelite.store.locking.lock_member`); unless
    ``books``, refuse a member erased while we waited for it: the reference and status
    read before the lock may predate an erasure that held the lock (PostgreSQL; SQLite
    writers are serial, so what the transaction read stands).

    Such a write is answered as it would be once the erasure is done, never naming the
    tombstone for a reference or the reference for a tombstone: a caller that ``named``
    the member by the reference the erasure took away gets ``unknown_member`` for it
    (that reference names no member now); one that named the tombstone, or a
    transaction of the member (``named`` False), gets ``member_erased`` naming the
    tombstone the member holds now."""
    if books or conn.dialect.name != "postgresql":
        lock_member(conn, member_id)
        return
    now_ref, status = conn.execute(
        text("SELECT ref, status FROM members WHERE id = :m FOR UPDATE"), {"m": member_id}
    ).one()
    if status != "erased":
        return
    if named and now_ref != ref:
        raise _unknown_member(program_id, ref)
    raise member_erased(program_id, str(now_ref))


def _member_exists(program_id: str, ref: str) -> Rejected:
    return Rejected(
        RejectionCode.MEMBER_EXISTS,
        f"member {ref!r} already exists in program {program_id!r}",
        field="member_ref",
    )


def _unknown_member(program_id: str, ref: str) -> Rejected:
    return unknown_member(program_id, ref)


def _history_entry(r: Any) -> HistoryEntry:
    detail = r[9] if r[9] is None or isinstance(r[9], dict) else _json(r[9])
    return HistoryEntry(
        transaction_id=int(r[0]),
        kind=str(r[1]),
        occurred_at=_utc(r[2]),
        currency=str(r[3]),
        reason=str(r[4]),
        source=r[5],
        actor=r[6],
        reverses_id=None if r[7] is None else int(r[7]),
        reversed_points=int(r[8]),
        detail=detail,
        available_change=int(r[10]),
        pending_change=int(r[11]),
        debt_change=int(r[12]),
    )


def _json(value: Any) -> Any:
    return json.loads(value)


def _utc(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _code(value: Any, field: str, limit: int = 32) -> str:
    """An identifier: letters, digits, ``_ . -``, starting with a letter or digit."""
    pattern = rf"[A-Za-z0-9][A-Za-z0-9_.-]{{0,{limit - 1}}}"
    if not isinstance(value, str) or not re.fullmatch(pattern, value):
        raise invalid(field, f"{value!r} is not a valid identifier (letters, digits, _ . -)")
    return value


def _reason(value: Any) -> str:
    checked = valid.text(value, "reason")
    assert checked is not None
    return checked


def _opt(value: Any, field: str) -> str | None:
    return valid.text(value, field, required=False)
