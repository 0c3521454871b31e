"""Idempotency keys: a retry returns the first result; other content is refused."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from fidelite.ledger import Rejected, RejectionCode
from tests.support import T0, CheckedLedger

# Dozens of database connections at once: never beside another such test (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("one_at_a_time")


def test_retry_with_same_key_returns_the_original_receipt(ledger: CheckedLedger) -> None:
    first = ledger.earn("shop", "alice", "points", 100, key="k1", at=T0)
    ledger.spend("shop", "alice", "points", 40, key="k2", at=T0)
    again = ledger.earn("shop", "alice", "points", 100, key="k1", at=T0)
    assert again == first
    assert (first.replayed, again.replayed) == (False, True)
    assert again.available_after == 100  # the balance right after the first call
    assert ledger.balance("shop", "alice", "points", as_of=T0).available == 60


def test_retry_without_explicit_time_still_matches(ledger: CheckedLedger) -> None:
    a = ledger.earn("shop", "alice", "points", 5, key="k1")
    b = ledger.earn("shop", "alice", "points", 5, key="k1")
    assert a == b and b.replayed


def test_same_key_with_different_content_is_refused(ledger: CheckedLedger) -> None:
    ledger.earn("shop", "alice", "points", 100, key="k1", at=T0)
    for change in (
        {"points": 101},
        {"reason": "other"},
        {"member_ref": "bob"},
    ):
        args = {"member_ref": "alice", "points": 100, "reason": "earn"} | change
        with pytest.raises(Rejected) as exc:
            ledger.earn("shop", args["member_ref"], "points", args["points"], key="k1", at=T0,
                        reason=args["reason"])  # fmt: skip
        assert (exc.value.code, exc.value.field) == (RejectionCode.IDEMPOTENCY_CONFLICT, "key")
    with pytest.raises(Rejected) as exc:
        ledger.spend("shop", "alice", "points", 100, key="k1", at=T0)
    assert exc.value.code is RejectionCode.IDEMPOTENCY_CONFLICT


def test_keys_are_scoped_per_program(ledger: CheckedLedger) -> None:
    ledger.open_program("cafe", ["points"])
    ledger.create_member("cafe", "alice")
    a = ledger.earn("shop", "alice", "points", 1, key="k1", at=T0)
    b = ledger.earn("cafe", "alice", "points", 2, key="k1", at=T0)
    assert (a.replayed, b.replayed, a.transaction_id != b.transaction_id) == (False, False, True)


def test_rejected_call_does_not_consume_its_key(ledger: CheckedLedger) -> None:
    with pytest.raises(Rejected):
        ledger.spend("shop", "alice", "points", 10, key="k1", at=T0)
    ledger.earn("shop", "alice", "points", 10, key="e1", at=T0)
    r = ledger.spend("shop", "alice", "points", 10, key="k1", at=T0)
    assert (r.replayed, r.available_after) == (False, 0)


def test_create_member_is_idempotent_and_refuses_a_second_enrolment(ledger: CheckedLedger) -> None:
    first = ledger.create_member("shop", "carol", key="m-carol")
    again = ledger.create_member("shop", "carol", key="m-carol")
    assert again == first and again.replayed
    with pytest.raises(Rejected) as exc:
        ledger.create_member("shop", "carol", key="another-key")
    assert exc.value.code is RejectionCode.MEMBER_EXISTS


@pytest.mark.parametrize("round_", range(3))
def test_concurrent_calls_with_one_key_post_exactly_once(
    ledger: CheckedLedger, round_: int
) -> None:
    """32 concurrent identical requests: one posting, 32 equal receipts."""
    inner = ledger.inner  # the raw ledger: the checks run once, after the storm

    def call(_: int):
        return inner.earn("shop", "alice", "points", 250, key="storm", at=T0, reason="purchase")

    with ThreadPoolExecutor(max_workers=32) as pool:
        receipts = list(pool.map(call, range(32)))
    assert len({r.transaction_id for r in receipts}) == 1
    assert all(r == receipts[0] for r in receipts)
    assert sum(not r.replayed for r in receipts) == 1
    assert ledger.balance("shop", "alice", "points", as_of=T0).available == 250
    assert len(ledger.history("shop", "alice")) == 1
    from fidelite.ledger import assert_invariants

    assert_invariants(ledger.db)


def test_concurrent_calls_with_one_key_for_different_members_post_once(
    ledger: CheckedLedger,
) -> None:
    """Same key, different content racing on different members: one wins, others refused."""
    inner = ledger.inner

    def call(i: int):
        member = "alice" if i % 2 else "bob"
        try:
            return inner.earn("shop", member, "points", 10, key="shared", at=T0)
        except Rejected as rejected:
            return rejected.code

    with ThreadPoolExecutor(max_workers=16) as pool:
        outcomes = list(pool.map(call, range(16)))
    conflicts = [o for o in outcomes if o is RejectionCode.IDEMPOTENCY_CONFLICT]
    receipts = [o for o in outcomes if not isinstance(o, RejectionCode)]
    assert len(conflicts) == 8 and len(receipts) == 8
    assert len({r.transaction_id for r in receipts}) == 1
    total = sum(ledger.balance("shop", m, "points", as_of=T0).available for m in ("alice", "bob"))
    assert total == 10
