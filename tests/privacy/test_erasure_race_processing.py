"""Events, redemptions and the daily jobs racing a member's erasure (PostgreSQL).

Each finds the member by its reference, then waits for the member's lock, which the
erasure holds. Once the erasure commits it is answered as the same request sent after
the erasure: an event of the erased history is ``member_erased`` naming the reference as
sent and the day of the erasure (docs/api.md), a later event enrols the reference as a
new member, a refund of a purchase made before the erasure is taken back from the
anonymised account, a redemption naming the reference is ``unknown_member``, the
cancellation of one of the member's redemptions is ``member_erased`` naming the
tombstone, and the tier job leaves the member to its next run instead of failing.
Deterministic: the test holds the member's lock, starts the request in a thread, waits
until it waits for the lock, erases, commits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from fidelite.engine import Event
from fidelite.ledger import Rejected, RejectionCode, assert_invariants
from fidelite.privacy import erase_member
from fidelite.processing import EventProcessor, Outcome, ProcessingError, Result
from fidelite.processing.tables import member_states, redemptions
from fidelite.program import parse_program
from fidelite.store import Database
from fidelite.store.locking import lock_member
from tests.conftest import make_database
from tests.support import snapshot, waits_on_a_row_lock

PROGRAM = """\
id: shop
name: Shop
time_zone: UTC
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
rewards:
  - {id: plain, name: Plain, kind: discount_amount, value: 1, cost: 10}
tiers:
  grace_months: 1
  levels:
    - {id: bronze, name: Bronze, threshold: 0}
    - {id: silver, name: Silver, threshold: 100}
refunds: {shortfall: debt}
"""
BOUGHT_AT = datetime.fromisoformat("2026-11-02T10:00:00+00:00")
ERASED_AT = datetime.fromisoformat("2026-11-20T09:00:00+00:00")
LATER = ERASED_AT + timedelta(days=1)
ERASED_HISTORY = (
    "the member 'ann' was erased on 2026-11-20: an event dated at or before the erasure "
    "belongs to the erased history and is not recorded (an event after it enrols the "
    "reference as a new member)"
)

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_only(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """An empty migrated PostgreSQL database: the race needs a server's row locks."""
    database = make_database("postgresql", request, tmp_path)
    yield database
    database.dispose()


def purchase(event_id: str, when: datetime, amount: str = "150") -> Event:
    return Event(id=event_id, type="purchase", member="ann", at=when, amount=Decimal(amount))


def bought(db: Database) -> tuple[EventProcessor, int]:
    """ann bought for 150 (150 points, silver) and redeemed once (10 points); the
    processor, which remembers ann as enrolled, and ann's member id."""
    p = EventProcessor(db, parse_program(PROGRAM))
    p.process(purchase("p1", BOUGHT_AT))
    p.redeem("ann", "plain", key="r1", at=BOUGHT_AT)
    return p, p.ledger.get_member("shop", "ann").member_id


def race_erasure(db: Database, member_id: int, write: Callable[[], Any]) -> tuple[str, Any]:
    """Run ``write`` while the erasure of ``ann`` holds her lock: the write is started
    once the lock is held, the erasure done once the write waits for it. Returns the
    tombstone and what the write returned (or raised)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        with db.write() as holder:
            lock_member(holder, member_id)
            pending = pool.submit(write)
            assert waits_on_a_row_lock(holder, 1), "the write never waited for the lock"
            tombstone = erase_member(holder, "shop", "ann", at=ERASED_AT).tombstone
        try:
            return tombstone, pending.result(timeout=30)
        except (Rejected, ProcessingError) as refused:
            return tombstone, refused


@pytest.mark.parametrize("remembered", [True, False], ids=["remembered", "new-processor"])
def test_an_event_of_the_erased_history_is_member_erased(
    pg_only: Database, remembered: bool
) -> None:
    """Whether or not the processor remembers ann as enrolled (another API worker)."""
    p, member_id = bought(pg_only)
    sender = p if remembered else EventProcessor(pg_only, parse_program(PROGRAM))
    late = purchase("p2", ERASED_AT - timedelta(hours=1), "40")
    tombstone, refused = race_erasure(pg_only, member_id, lambda: sender.process(late))
    assert isinstance(refused, ProcessingError)
    assert (refused.code, refused.message) == ("member_erased", ERASED_HISTORY)
    after = snapshot(pg_only)
    with pytest.raises(ProcessingError) as again:  # as it is answered after the erasure
        EventProcessor(pg_only, parse_program(PROGRAM)).process(late)
    assert (again.value.code, again.value.message) == (refused.code, refused.message)
    assert snapshot(pg_only) == after
    assert p.member_profile("ann") is None
    assert p.ledger.balance("shop", tombstone, "points", as_of=LATER).available == 140


@pytest.mark.parametrize("remembered", [True, False], ids=["remembered", "new-processor"])
def test_a_later_event_enrols_a_new_member(pg_only: Database, remembered: bool) -> None:
    p, member_id = bought(pg_only)
    sender = p if remembered else EventProcessor(pg_only, parse_program(PROGRAM))
    tombstone, result = race_erasure(
        pg_only, member_id, lambda: sender.process(purchase("p2", LATER, "40"))
    )
    assert isinstance(result, Result) and result.outcome is Outcome.processed
    fresh = p.ledger.get_member("shop", "ann")
    assert fresh.member_id != member_id
    assert p.ledger.balance("shop", "ann", "points", as_of=LATER).available == 40
    assert p.ledger.balance("shop", tombstone, "points", as_of=LATER).available == 140
    with pg_only.read() as conn:
        joined = conn.execute(
            select(member_states.c.joined_at).where(member_states.c.member_ref == "ann")
        ).scalar_one()
    assert joined == LATER
    assert_invariants(pg_only, "shop")


def test_a_refund_of_an_earlier_purchase_is_taken_from_the_erased_account(
    pg_only: Database,
) -> None:
    p, member_id = bought(pg_only)
    back = Event(id="f1", type="refund", member="ann", at=LATER, amount=Decimal("50"),
                 refund_of="p1")  # fmt: skip
    tombstone, result = race_erasure(pg_only, member_id, lambda: p.process(back))
    assert isinstance(result, Result) and result.outcome is Outcome.processed
    assert [r.points for r in result.receipts] == [50]
    assert p.ledger.balance("shop", tombstone, "points", as_of=LATER).available == 90
    assert p.member_profile("ann") is None  # the reference was not enrolled again
    assert_invariants(pg_only, "shop")


def test_a_redemption_naming_the_reference_is_unknown_member(pg_only: Database) -> None:
    p, member_id = bought(pg_only)
    tombstone, refused = race_erasure(
        pg_only, member_id, lambda: p.redeem("ann", "plain", key="r2", at=LATER)
    )
    assert isinstance(refused, Rejected)
    assert (refused.code, refused.message, refused.field) == (
        RejectionCode.UNKNOWN_MEMBER, "no member 'ann' in program 'shop'", "member_ref"
    )  # fmt: skip
    after = snapshot(pg_only)
    with pytest.raises(Rejected) as again:
        p.redeem("ann", "plain", key="r3", at=LATER)
    assert (again.value.code, again.value.message) == (refused.code, refused.message)
    assert snapshot(pg_only) == after
    assert p.ledger.balance("shop", tombstone, "points", as_of=LATER).available == 140


def test_a_cancellation_of_its_redemption_names_the_tombstone(pg_only: Database) -> None:
    p, member_id = bought(pg_only)
    with pg_only.read() as conn:
        redemption_id = conn.execute(select(redemptions.c.id)).scalar_one()
    tombstone, refused = race_erasure(
        pg_only, member_id, lambda: p.cancel_redemption(redemption_id, at=LATER)
    )
    assert isinstance(refused, Rejected)
    message = (f"member {tombstone!r} of program 'shop' was erased: its account takes no "
               "more changes (its balance and history stay readable)")  # fmt: skip
    assert (refused.code, refused.message) == (RejectionCode.MEMBER_ERASED, message)
    after = snapshot(pg_only)
    with pytest.raises(Rejected) as again:
        p.cancel_redemption(redemption_id, at=LATER)
    assert (again.value.code, again.value.message) == (refused.code, refused.message)
    assert snapshot(pg_only) == after
    assert p.ledger.balance("shop", tombstone, "points", as_of=LATER).available == 140


def test_the_tier_job_leaves_a_member_erased_meanwhile_to_its_next_run(
    pg_only: Database,
) -> None:
    p, member_id = bought(pg_only)
    as_of = datetime.fromisoformat("2028-03-10T10:00:00+00:00")
    tombstone, changes = race_erasure(pg_only, member_id, lambda: p.review_tiers(as_of))
    assert changes == []
    assert p.member_tier(tombstone) == "silver"
    later = p.review_tiers(as_of)
    assert [(ref, c.kind.value, c.to_tier) for ref, c in later] == [
        (tombstone, "grace_started", "silver"),
        (tombstone, "downgrade", "bronze"),
    ]
