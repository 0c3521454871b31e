"""Random sequences of ledger operations against a small reference model.

The model keeps lots as plain Python objects and applies the documented rules
(soonest-expiring lots first, debt repaid first by available credits, shortfall
policies, refills in reverse order of drawing). After every step the ledger's
balances must equal the model's and ``check_invariants`` must be clean.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from fidelite.ledger import Ledger, Receipt, Rejected, RejectionCode, check_invariants
from fidelite.store import Database
from tests.conftest import BACKENDS, make_database
from tests.support import T0

MEMBERS = ("alice", "bob")
DAY = timedelta(days=1)


@dataclass
class MLot:
    member: str
    remaining: int
    state: str
    earned_at: datetime
    expires_at: datetime | None
    pending_until: datetime | None
    expired: int = 0  # points the expiry job took from this lot
    claimed: int = 0  # of those, what reversals of the lot's earn found already gone
    written_off: int = 0  # spent points reversals of the lot's earn wrote off
    restored: int = 0  # of those, what cancellations of debits took back out of written_off

    @property
    def unclaimed(self) -> int:
        return self.expired - self.claimed


@dataclass
class MTxn:
    kind: str
    direction: str
    member: str
    points: int
    reversed: int = 0
    lot: int | None = None
    draws: list[tuple[int, int]] = field(default_factory=list)
    refilled: dict[int, int] = field(default_factory=dict)


class Model:
    """The reference: what the ledger should hold, computed the simple way."""

    def __init__(self) -> None:
        self.lots: dict[int, MLot] = {}
        self.debt = dict.fromkeys(MEMBERS, 0)
        self.txns: dict[int, MTxn] = {}

    def spendable(self, member: str, now: datetime) -> list[int]:
        ids = [
            i
            for i, lot in self.lots.items()
            if lot.member == member
            and lot.state == "available"
            and (lot.expires_at is None or lot.expires_at > now)
        ]
        return sorted(
            ids,
            key=lambda i: (
                self.lots[i].expires_at is None,
                self.lots[i].expires_at or now,
                self.lots[i].earned_at,
                i,
            ),
        )

    def draw(self, ids: list[int], points: int, closed: str) -> list[tuple[int, int]]:
        out = []
        for i in ids:
            if points == 0:
                break
            take = min(points, self.lots[i].remaining)
            self.lots[i].remaining -= take
            if self.lots[i].remaining == 0:
                self.lots[i].state = closed
            out.append((i, take))
            points -= take
        return out

    def release_ended(self, member: str, now: datetime) -> None:
        """Release the member's lots whose hold ended by ``now``, in lot order, each
        repaying debt first: what the release job, and every debit before it draws, does."""
        for _, lot in sorted(self.lots.items()):
            due = lot.pending_until is not None and lot.pending_until <= now
            if lot.member == member and lot.state == "pending" and due:
                repay = min(lot.remaining, self.debt[member])
                self.debt[member] -= repay
                lot.remaining -= repay
                lot.state = "available" if lot.remaining else "spent"

    def balance(self, member: str, now: datetime) -> tuple[int, int, int]:
        """What the member holds at ``now``, points whose hold ended counted released."""
        released = copy.deepcopy(self)
        released.release_ended(member, now)
        available = sum(released.lots[i].remaining for i in released.spendable(member, now))
        pending = sum(
            lot.remaining
            for lot in released.lots.values()
            if lot.member == member and lot.state == "pending"
        )
        return available, pending, released.debt[member]


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self, db: Database) -> None:
        super().__init__()
        self.db = db
        self.ledger = Ledger(db)
        self.ledger.open_program("shop", ["points"])
        for m in MEMBERS:
            self.ledger.create_member("shop", m)
        self.model = Model()
        self.now = T0
        self.seq = 0

    def key(self) -> str:
        self.seq += 1
        return f"k{self.seq}"

    @rule(days=st.integers(0, 40))
    def tick(self, days: int) -> None:
        self.now += days * DAY

    @rule(
        member=st.sampled_from(MEMBERS),
        points=st.integers(1, 300),
        expires_in=st.one_of(st.none(), st.integers(1, 90)),
        pending_for=st.one_of(st.none(), st.integers(1, 20)),
    )
    def earn(
        self, member: str, points: int, expires_in: int | None, pending_for: int | None
    ) -> None:
        expires = None if expires_in is None else self.now + expires_in * DAY
        pending = None if pending_for is None else self.now + pending_for * DAY
        if expires is not None and pending is not None and pending >= expires:
            pending = None
        r = self.ledger.earn("shop", member, "points", points, key=self.key(), at=self.now,
                             expires_at=expires, pending_until=pending)  # fmt: skip
        repay = 0 if pending else min(points, self.model.debt[member])
        assert r.debt_repaid == repay
        self.model.debt[member] -= repay
        txn = MTxn("earn", "credit", member, points)
        if points - repay:
            (move,) = r.lot_moves
            assert move.points == points - repay
            state = "pending" if pending else "available"
            self.model.lots[move.lot_id] = MLot(
                member, move.points, state, self.now, expires, pending
            )
            txn.lot = move.lot_id
        self.model.txns[r.transaction_id] = txn

    def released_first(self, member: str) -> Model:
        """Release the member's ended holds in the model as a debit does first; return
        the model as it was, to put back if the debit is refused (it rolls them back)."""
        before = copy.deepcopy(self.model)
        self.model.release_ended(member, self.now)
        return before

    @rule(member=st.sampled_from(MEMBERS), points=st.integers(1, 400))
    def spend(self, member: str, points: int) -> None:
        before = self.released_first(member)
        ids = self.model.spendable(member, self.now)
        short = sum(self.model.lots[i].remaining for i in ids) < points
        try:
            r = self.ledger.spend("shop", member, "points", points, key=self.key(), at=self.now)
        except Rejected as rejected:
            assert short and rejected.code is RejectionCode.INSUFFICIENT_POINTS
            self.model = before
            return
        assert not short
        draws = self.model.draw(ids, points, "spent")
        assert [(m.lot_id, -m.points) for m in r.lot_moves] == draws
        self.model.txns[r.transaction_id] = MTxn("spend", "debit", member, points, draws=draws)
        self.receipt_matches_the_model(r, member)

    def receipt_matches_the_model(self, r: Receipt, member: str) -> None:
        """A debit's receipt says what the member truly holds right after it."""
        held = (r.available_after, r.pending_after, r.debt_after)
        assert held == self.model.balance(member, self.now)

    @rule(member=st.sampled_from(MEMBERS), points=st.integers(1, 200), credit=st.booleans())
    def adjust(self, member: str, points: int, credit: bool) -> None:
        signed = points if credit else -points
        before = self.model if credit else self.released_first(member)
        ids = self.model.spendable(member, self.now)
        short = not credit and sum(self.model.lots[i].remaining for i in ids) < points
        try:
            r = self.ledger.adjust("shop", member, "points", signed, key=self.key(), at=self.now,
                                   reason="test", actor="hypothesis")  # fmt: skip
        except Rejected as rejected:
            assert short and rejected.code is RejectionCode.INSUFFICIENT_POINTS
            self.model = before
            return
        assert not short
        if credit:
            repay = min(points, self.model.debt[member])
            self.model.debt[member] -= repay
            txn = MTxn("adjust", "credit", member, points)
            if points - repay:
                (move,) = r.lot_moves
                self.model.lots[move.lot_id] = MLot(member, move.points, "available", self.now,
                                                    None, None)  # fmt: skip
                txn.lot = move.lot_id
        else:
            draws = self.model.draw(ids, points, "spent")
            txn = MTxn("adjust", "debit", member, points, draws=draws)
        self.model.txns[r.transaction_id] = txn
        self.receipt_matches_the_model(r, member)

    @rule()
    def release_due(self) -> None:
        self.ledger.release_due("shop", self.now)
        for member in MEMBERS:
            self.model.release_ended(member, self.now)

    @rule()
    def expire(self) -> None:
        """Per member, the job first releases the holds that ended (as the release job
        would), then expires the available lots past their date; when that leaves nothing
        to expire, the member's transaction, releases included, rolls back."""
        report = self.ledger.expire("shop", self.now)
        expected = 0
        for member in MEMBERS:
            before = copy.deepcopy(self.model)
            self.model.release_ended(member, self.now)
            due = [
                lot_id
                for lot_id, lot in self.model.lots.items()
                if lot.member == member
                and lot.state == "available"
                and lot.expires_at
                and lot.expires_at <= self.now
            ]
            if not sum(self.model.lots[lot_id].remaining for lot_id in due):
                self.model = before
                continue
            for lot_id in due:
                lot = self.model.lots[lot_id]
                expected += lot.remaining
                lot.expired += lot.remaining
                self.model.draw([lot_id], lot.remaining, "expired")
        assert report.points == ({"points": expected} if expected else {})

    @rule(
        pick=st.integers(0, 10**6),
        part=st.one_of(st.none(), st.integers(1, 300)),
        policy=st.sampled_from(["reject", "within_balance", "debt"]),
    )
    def reverse(self, pick: int, part: int | None, policy: str, txn_id: int | None = None) -> None:
        candidates = sorted(t for t, x in self.model.txns.items() if x.kind != "reverse")
        if not candidates:
            return
        if txn_id is None:
            txn_id = candidates[pick % len(candidates)]
        txn = self.model.txns[txn_id]
        left = txn.points - txn.reversed
        amount = left if part is None else part
        before = self.released_first(txn.member)
        try:
            r = self.ledger.reverse("shop", txn_id, key=self.key(), points=part, shortfall=policy,
                                    at=self.now)  # fmt: skip
        except Rejected as rejected:
            self._expect_rejection(rejected, txn, amount, left, policy)
            self.model = before
            return
        assert 0 < amount <= left
        txn.reversed += amount
        if txn.direction == "credit":
            self._take_back(txn, amount, policy, r)
        else:
            self._put_back(txn, amount)
        self.model.txns[r.transaction_id] = MTxn("reverse", "-", txn.member, amount)
        self.receipt_matches_the_model(r, txn.member)

    @rule(member=st.sampled_from(MEMBERS), policy=st.sampled_from(["within_balance", "debt"]))
    def clawback(self, member: str, policy: str) -> None:
        """Refund the member's latest credit after spending: the shortfall paths."""
        credits = [
            t for t, x in self.model.txns.items()
            if x.member == member and x.direction == "credit" and x.reversed < x.points
        ]  # fmt: skip
        if credits:
            self.reverse(pick=0, part=None, policy=policy, txn_id=max(credits))

    @rule(member=st.sampled_from(MEMBERS), part=st.one_of(st.none(), st.integers(1, 100)))
    def refund_redemption(self, member: str, part: int | None) -> None:
        """Give back the member's latest debit (a cancelled redemption), debt or not."""
        debits = [
            t for t, x in self.model.txns.items()
            if x.member == member and x.direction == "debit" and x.reversed < x.points
        ]  # fmt: skip
        if debits:
            self.reverse(pick=0, part=part, policy="reject", txn_id=max(debits))

    def _expect_rejection(
        self, rejected: Rejected, txn: MTxn, amount: int, left: int, policy: str
    ) -> None:
        if amount > left or left == 0:
            assert rejected.code is RejectionCode.REVERSAL_EXCEEDS_ORIGINAL
            return
        own = self.model.lots.get(txn.lot) if txn.lot is not None else None
        in_lot = own.remaining if own and own.state in ("available", "pending") else 0
        gone = own.unclaimed if own else 0
        assert txn.direction == "credit" and policy == "reject" and in_lot + gone < amount
        assert rejected.code is RejectionCode.POINTS_ALREADY_SPENT

    def _take_back(self, txn: MTxn, amount: int, policy: str, r: Receipt) -> None:
        written_off, debt = r.written_off, r.debt_added
        own = [txn.lot] if txn.lot is not None and self.model.lots[txn.lot].state in (
            "available", "pending") else []  # fmt: skip
        taken = sum(p for _, p in self.model.draw(own, amount, "reversed"))
        already_expired = 0
        if txn.lot is not None:  # expired points are gone already: no shortfall
            lot = self.model.lots[txn.lot]
            already_expired = min(amount - taken, lot.unclaimed)
            lot.claimed += already_expired
        assert r.already_expired == already_expired
        short = amount - taken - already_expired
        assert policy != "reject" or short == 0
        others = [i for i in self.model.spendable(txn.member, self.now) if i != txn.lot]
        rest = short - sum(p for _, p in self.model.draw(others, short, "spent"))
        if policy == "debt":
            self.model.debt[txn.member] += rest
            assert (debt, written_off) == (rest, 0)
        else:
            assert (debt, written_off) == (0, rest)
            if txn.lot is not None:
                self.model.lots[txn.lot].written_off += rest

    def _put_back(self, txn: MTxn, amount: int) -> None:
        repay = min(amount, self.model.debt[txn.member])
        self.model.debt[txn.member] -= repay
        left = amount - repay
        for lot_id, drawn in reversed(txn.draws):
            give = min(left, drawn - txn.refilled.get(lot_id, 0))
            if give <= 0:
                continue
            txn.refilled[lot_id] = txn.refilled.get(lot_id, 0) + give
            lot = self.model.lots[lot_id]
            # points a refund of the lot's earn wrote off go back out of written_off,
            # not to the member (as under debt they repay the debt)
            cancelled = min(give, lot.written_off - lot.restored)
            lot.restored += cancelled
            if give > cancelled:
                lot.remaining += give - cancelled
                lot.state = "available"
            left -= give
        assert left == 0

    @invariant()
    def books_match_the_model(self) -> None:
        for m in MEMBERS:
            b = self.ledger.balance("shop", m, "points", as_of=self.now)
            assert (b.available, b.pending, b.debt) == self.model.balance(m, self.now), m
        assert check_invariants(self.db) == []


def _run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
         backend: str, examples: int, steps: int) -> None:  # fmt: skip
    def factory() -> LedgerMachine:
        db = make_database(backend, request, tmp_path_factory.mktemp("sm"))
        return LedgerMachine(db)

    run_state_machine_as_test(
        factory,
        settings=settings(
            max_examples=examples,
            stateful_step_count=steps,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        ),
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_random_operation_sequences_match_the_model(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, backend: str
) -> None:
    _run(request, tmp_path_factory, backend, examples=25, steps=30)


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_long_random_operation_sequences_match_the_model(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, backend: str
) -> None:
    _run(request, tmp_path_factory, backend, examples=80, steps=50)
