"""A write racing the member's erasure is answered as one sent after it (PostgreSQL).

The write finds the member by its reference, then waits for the member's lock, which
the erasure holds; once the erasure commits, the write reads the member again under the
lock and finds it erased. Sent with the reference the erasure took away, it is then
``unknown_member`` for that reference, as the same write sent after the erasure is
(``member_erased`` is for the tombstone, and must not name the erased reference); a
reversal of one of the member's transactions is ``member_erased`` naming the tombstone,
as after the erasure. Nothing is written. Deterministic: the test holds the member's
lock, starts the write in a thread, waits until it waits for the lock, erases, commits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from fidelite.ledger import Ledger, Rejected, RejectionCode
from fidelite.privacy import erase_member
from fidelite.store import Database
from fidelite.store.locking import lock_member
from tests.conftest import make_database
from tests.support import T0, snapshot, waits_on_a_row_lock

DAY = timedelta(days=1)
ERASED_AT = T0 + 2 * DAY
LATER = T0 + 3 * DAY

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_only(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """An empty migrated PostgreSQL database: the race needs a server's row locks."""
    database = make_database("postgresql", request, tmp_path)
    yield database
    database.dispose()


def _ann(ledger: Ledger) -> tuple[int, int]:
    """Ann holds 100 points; her member id and the transaction that earned them."""
    ledger.open_program("shop", ["points"])
    member = ledger.create_member("shop", "ann")
    earned = ledger.earn("shop", "ann", "points", 100, key="e1", at=T0)
    return member.member_id, earned.transaction_id


def race_erasure(db: Database, member_id: int, write: Callable[[], Any]) -> tuple[str, Any]:
    """Run ``write`` while the erasure of ``ann`` holds her lock: the write is started
    once the lock is held, the erasure done once the write waits for it. Returns the
    tombstone and what the write raised (or returned)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        with db.write() as holder:
            lock_member(holder, member_id)
            pending = pool.submit(write)
            assert waits_on_a_row_lock(holder, 1), "the write never waited for the lock"
            tombstone = erase_member(holder, "shop", "ann", at=ERASED_AT).tombstone
        try:
            return tombstone, pending.result(timeout=30)
        except Rejected as refused:
            return tombstone, refused


WRITES: dict[str, Callable[[Ledger], Any]] = {
    "earn": lambda ledger: ledger.earn("shop", "ann", "points", 10, key="w", at=LATER),
    "spend": lambda ledger: ledger.spend("shop", "ann", "points", 10, key="w", at=LATER),
    "credit": lambda ledger: ledger.adjust("shop", "ann", "points", 5, key="w", reason="gift",
                                           actor="desk", at=LATER),
    "debit": lambda ledger: ledger.adjust("shop", "ann", "points", -5, key="w", reason="fix",
                                          actor="desk", at=LATER),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(WRITES))
def test_a_write_naming_the_reference_is_unknown_member(pg_only: Database, name: str) -> None:
    ledger = Ledger(pg_only)
    member_id, _ = _ann(ledger)
    tombstone, refused = race_erasure(pg_only, member_id, lambda: WRITES[name](ledger))
    assert isinstance(refused, Rejected)
    unknown = (RejectionCode.UNKNOWN_MEMBER, "no member 'ann' in program 'shop'", "member_ref")
    assert (refused.code, refused.message, refused.field) == unknown
    after = snapshot(pg_only)
    # as the same write sent after the erasure is answered, and nothing was written
    with pytest.raises(Rejected) as later:
        WRITES[name](Ledger(pg_only))
    assert (later.value.code, later.value.message) == (refused.code, refused.message)
    assert snapshot(pg_only) == after
    assert ledger.balance("shop", tombstone, "points", as_of=LATER).available == 100
    assert len(ledger.history("shop", tombstone)) == 1


def test_taking_the_lock_by_the_reference_is_unknown_member(pg_only: Database) -> None:
    ledger = Ledger(pg_only)
    member_id, _ = _ann(ledger)

    def lock() -> None:
        with pg_only.write() as conn:
            ledger.lock(conn, "shop", "ann")

    _, refused = race_erasure(pg_only, member_id, lock)
    assert isinstance(refused, Rejected)
    unknown = (RejectionCode.UNKNOWN_MEMBER, "no member 'ann' in program 'shop'")
    assert (refused.code, refused.message) == unknown


def test_a_reversal_of_its_transaction_names_the_tombstone(pg_only: Database) -> None:
    ledger = Ledger(pg_only)
    member_id, earned = _ann(ledger)

    def reverse() -> Any:
        return ledger.reverse("shop", earned, key="r", reason="oops", at=LATER)

    tombstone, refused = race_erasure(pg_only, member_id, reverse)
    assert isinstance(refused, Rejected)
    message = (f"member {tombstone!r} of program 'shop' was erased: its account takes no "
               "more changes (its balance and history stay readable)")  # fmt: skip
    assert (refused.code, refused.message) == (RejectionCode.MEMBER_ERASED, message)
    after = snapshot(pg_only)
    with pytest.raises(Rejected) as later:
        reverse()
    assert (later.value.code, later.value.message) == (refused.code, refused.message)
    assert snapshot(pg_only) == after
    assert ledger.balance("shop", tombstone, "points", as_of=LATER).available == 100
