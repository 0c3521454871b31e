"""Program-wide limits hold under concurrency: a campaign budget and a reward's stock.

Member locks serialise one member's events; these limits are shared by all members, so
many members racing for the last points of a budget or the last item in stock must
still never overrun them (SQLite file and PostgreSQL).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Connection, func, select, text

from fidelite.engine import Event
from fidelite.ledger import assert_invariants
from fidelite.processing import EventProcessor, ProcessingError
from fidelite.processing.batch import process_events
from fidelite.processing.tables import redemptions, rule_budgets
from fidelite.program import parse_program
from fidelite.store import Database
from fidelite.store.locking import shared_lock_key
from tests.conftest import make_database

PROGRAM = """\
id: shop
name: Shop
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
  - {id: launch, on: [purchase], fixed: 30, budget: 100}
rewards:
  - {id: mug, name: Mug, kind: free_product, sku: MUG, cost: 50, stock: 5}
"""
MEMBERS = [f"m{i:02d}" for i in range(16)]
AT = datetime.fromisoformat("2026-11-05T10:00:00+01:00")


def _purchase(member: str, amount: str = "100") -> Event:
    return Event.model_validate(
        {"id": f"p-{member}", "type": "purchase", "member": member,
         "at": "2026-11-02T10:00:00+01:00", "amount": Decimal(amount)}
    )  # fmt: skip


def _race(fn: object, items: list[str]) -> list[object]:
    """Run ``fn(item)`` for every item at once; return each result or exception."""

    def attempt(item: str) -> object:
        try:
            return fn(item)  # type: ignore[operator]
        except ProcessingError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=len(items)) as pool:
        return list(pool.map(attempt, items))


@pytest.mark.parametrize("run", range(2))
def test_campaign_budget_never_overrun_by_concurrent_members(pdb: Database, run: int) -> None:
    p = EventProcessor(pdb, parse_program(PROGRAM))
    results = _race(lambda m: p.process(_purchase(m)), MEMBERS)
    launch = [
        line.points
        for r in results
        for line in r.decision.trace  # type: ignore[attr-defined]
        if line.rule == "launch" and line.points
    ]
    # 30 + 30 + 30 + 10 (trimmed to what is left) = exactly the budget of 100.
    assert sorted(launch) == [10, 30, 30, 30]
    with pdb.read() as conn:
        used = conn.execute(select(rule_budgets.c.used)).scalar_one()
    assert used == 100
    total = sum(p.ledger.balance("shop", m, "points", as_of=AT).available for m in MEMBERS)
    assert total == 16 * 100 + 100
    assert_invariants(pdb, "shop")


@pytest.mark.parametrize("run", range(2))
def test_reward_stock_never_overrun_by_concurrent_members(pdb: Database, run: int) -> None:
    p = EventProcessor(pdb, parse_program(PROGRAM.replace("budget: 100", "budget: 1")))
    for m in MEMBERS:
        p.process(_purchase(m))
    results = _race(lambda m: p.redeem(m, "mug", key=f"r-{m}", at=AT), MEMBERS)
    won = [r for r in results if not isinstance(r, ProcessingError)]
    lost = [r for r in results if isinstance(r, ProcessingError)]
    assert len(won) == 5
    assert {e.code for e in lost} == {"reward_out_of_stock"} and len(lost) == 11
    with pdb.read() as conn:
        active = conn.execute(
            select(func.count()).where(redemptions.c.status == "active")
        ).scalar_one()
    assert active == 5
    balances = sorted(p.ledger.balance("shop", m, "points", as_of=AT).available for m in MEMBERS)
    # every member earned 100 + (the first one) the 1-point budget; winners paid 50.
    assert sum(balances) == 16 * 100 + 1 - 5 * 50
    assert_invariants(pdb, "shop")


def test_redemption_key_reused_for_another_reward_is_refused(pdb: Database) -> None:
    program = PROGRAM + "  - {id: cup, name: Cup, kind: free_product, sku: CUP, cost: 10}\n"
    p = EventProcessor(pdb, parse_program(program))
    p.process(_purchase("ann"))
    first = p.redeem("ann", "mug", key="k1", at=AT)
    before = p.ledger.balance("shop", "ann", "points", as_of=AT).available
    with pytest.raises(ProcessingError) as refused:
        p.redeem("ann", "cup", key="k1", at=AT)
    assert refused.value.code == "idempotency_conflict"
    assert p.ledger.balance("shop", "ann", "points", as_of=AT).available == before
    assert p.redeem("ann", "mug", key="k1", at=AT) == first


# --- which events take a budget's lock (PostgreSQL: SQLite's writers are serial) ---

WINDOWED = PROGRAM.replace(
    "budget: 100}",
    "budget: 100, window: {start: '2026-11-01T00:00:00+01:00', end: '2026-11-03T00:00:00+01:00'}}",
)
INSIDE, OUTSIDE = "2026-11-02T10:00:00+01:00", "2026-11-05T10:00:00+01:00"


@pytest.fixture
def pg_only(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    database = make_database("postgresql", request, tmp_path)
    yield database
    database.dispose()


def _event(event_id: str, member: str, at: str) -> Event:
    return Event.model_validate(
        {"id": event_id, "type": "purchase", "member": member, "at": at, "amount": "100"}
    )


def _waits_on_advisory_lock(holder: Connection, deadline: float = 30.0) -> bool:
    """True once another session waits for an advisory lock (polled; False at deadline)."""
    waiting = text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock' AND wait_event = 'advisory'"
    )
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if holder.execute(waiting).scalar_one() > 0:
            return True
        time.sleep(0.02)
    return False


@pytest.mark.postgres
@pytest.mark.parametrize("path", ["single", "batch"])
def test_budget_lock_taken_only_inside_the_campaign_window(pg_only: Database, path: str) -> None:
    """An event outside the budgeted rule's window passes while another writer holds the
    budget's lock; one inside it waits for that writer, then spends from the budget."""
    p = EventProcessor(pg_only, parse_program(WINDOWED))

    def apply(events: list[Event]) -> object:
        if path == "single":
            return [p.process(e) for e in events]
        with pg_only.write() as conn:
            return process_events(p, conn, events)

    holder = pg_only.writer.connect()
    holder.execute(
        text("SELECT pg_advisory_lock(:k)"), {"k": shared_lock_key("budget:shop:launch")}
    )
    holder.commit()
    # The lock is released before the pool is shut down, also when an assertion fails:
    # a worker still waiting for it would otherwise keep the test from ending.
    with ThreadPoolExecutor(max_workers=1) as pool:
        try:
            outside = pool.submit(apply, [_event("late", "ann", OUTSIDE)])
            outside.result(timeout=30)  # times out if this event waits for the lock
            inside = pool.submit(apply, [_event("early", "bob", INSIDE)])
            assert _waits_on_advisory_lock(holder)
            assert not inside.done()
        finally:
            holder.execute(text("SELECT pg_advisory_unlock_all()"))
            holder.commit()
            holder.close()
        inside.result(timeout=30)
    with pg_only.read() as conn:
        used = conn.execute(select(rule_budgets.c.used)).scalar_one()
    assert used == 30
    as_of = datetime.fromisoformat("2026-11-06T00:00:00+01:00")
    assert p.ledger.balance("shop", "ann", "points", as_of=as_of).available == 100
    assert p.ledger.balance("shop", "bob", "points", as_of=as_of).available == 130
    assert_invariants(pg_only, "shop")


def _waits_on_a_row_lock(watcher: Connection, deadline: float = 30.0) -> bool:
    """True once a session waits for a row (polled; False at deadline). Each poll is
    a transaction of its own: within one, PostgreSQL shows the same activity snapshot."""
    waiting = text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock' AND wait_event IN ('transactionid', 'tuple')"
    )
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        found = watcher.execute(waiting).scalar_one()
        watcher.rollback()
        if found > 0:
            return True
        time.sleep(0.02)
    return False


@pytest.mark.postgres
def test_a_chunk_with_a_refund_locks_its_members_before_any_budget(pg_only: Database) -> None:
    """A chunk whose purchases spend from a budget and which then refunds another
    member's purchase takes every member's lock first: while another writer holds the
    refunded member (as an API request does, before it waits for the budget), the chunk
    waits holding no budget lock, so the two cannot deadlock. It used to take the budget
    with its purchases, then wait for the member: the other writer's wait for the budget
    closed the circle (PostgreSQL's deadlock detector then failed one of them)."""
    p = EventProcessor(pg_only, parse_program(PROGRAM))
    p.process(_event("b1", "bob", INSIDE))
    refund = Event.model_validate(
        {"id": "r1", "type": "refund", "member": "bob", "at": OUTSIDE, "amount": "100",
         "refund_of": "b1"}
    )  # fmt: skip

    def chunk() -> object:
        with pg_only.write() as conn:
            return process_events(p, conn, [_event("a1", "ann", INSIDE), refund])

    holder, watcher = pg_only.writer.connect(), pg_only.writer.connect()
    holder.execute(text("SELECT id FROM members WHERE ref = 'bob' FOR UPDATE"))
    # this test's database only: a test on another worker may hold advisory locks at once
    advisory = text(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND database = "
        "(SELECT oid FROM pg_database WHERE datname = current_database())"
    )
    with ThreadPoolExecutor(max_workers=1) as pool:
        try:
            running = pool.submit(chunk)
            assert _waits_on_a_row_lock(watcher)
            assert watcher.execute(advisory).scalar_one() == 0
        finally:
            holder.rollback()
            holder.close()
            watcher.close()
        answers = running.result(timeout=30)
    assert [type(a).__name__ for a in answers] == ["Result", "Result"]
    with pg_only.read() as conn:
        used = conn.execute(select(rule_budgets.c.used)).scalar_one()
    assert used == 30  # bob's purchase and ann's took 30 each; bob's full refund gave 30 back
    assert_invariants(pg_only, "shop")
