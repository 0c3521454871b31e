"""Using a redemption in store against cancelling it: one transaction each under the
member's lock, so a use and a cancellation sent at once never both succeed (PostgreSQL,
both waiting on a held lock); a redemption of an erased member is not used."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, text

from fidelite.ledger import Rejected
from fidelite.privacy import erase_member
from fidelite.processing import EventProcessor, ProcessingError
from fidelite.processing import redemptions as found
from fidelite.processing.tables import redemptions
from fidelite.store import Database
from fidelite.webhooks.tables import outbox
from tests.processing.test_redemptions import AT, available, setup
from tests.support import waits_on_a_row_lock

LATER = AT + timedelta(minutes=5)
NOW = datetime(2031, 1, 1, tzinfo=UTC)


def outcome(call: Any) -> str:
    try:
        call()
    except ProcessingError as refused:
        return refused.code
    return "done"


def row(db: Database, rid: int) -> Any:
    with db.read() as conn:
        return conn.execute(
            select(redemptions.c.status, redemptions.c.used_at, redemptions.c.used_store).where(
                redemptions.c.id == rid
            )
        ).one()


def test_a_use_and_a_cancellation_at_once_never_both_succeed(pg_only: Database) -> None:
    p = setup(pg_only)
    other = EventProcessor(pg_only, p.program)  # a second till
    rid = p.redeem("ann", "mug", key="r1", at=AT).id
    holder = pg_only.writer.connect()
    holder.execute(text("SELECT id FROM members WHERE ref = 'ann' FOR UPDATE"))
    with ThreadPoolExecutor(max_workers=2) as pool:
        try:
            use = pool.submit(outcome, lambda: found.use(p, rid, key="api:u1", at=LATER,
                                                         now=NOW, store="paris-04"))  # fmt: skip
            cancel = pool.submit(outcome, lambda: other.cancel_redemption(rid, at=LATER))
            assert waits_on_a_row_lock(holder, 2)
        finally:
            holder.rollback()
            holder.close()
        results = {use.result(), cancel.result()}
    state = row(pg_only, rid)
    if results == {"done", "redemption_used"}:  # the use went first
        assert (state.status, state.used_at, state.used_store) == ("active", LATER, "paris-04")
        assert available(p, "ann") == 50
    else:
        assert results == {"done", "redemption_cancelled"}
        assert (state.status, state.used_at, state.used_store) == ("cancelled", None, None)
        assert available(p, "ann") == 150


def test_a_redemption_of_an_erased_member_is_not_used(pdb: Database) -> None:
    p = setup(pdb)
    rid = p.redeem("ann", "coffee", key="r1", at=AT).id
    with pdb.write() as conn:
        erase_member(conn, "shop", "ann", reason="request", at=LATER)
    with pytest.raises(Rejected) as refused:
        found.use(p, rid, key="api:u1", at=LATER, now=NOW)
    assert refused.value.code.value == "member_erased"
    assert row(pdb, rid).used_at is None
    assert found.record(p, rid).state == "active"


def test_a_use_is_announced_once_to_webhooks(pdb: Database) -> None:
    """``reward.used`` is written with the use, in its transaction; the same key sent
    again (a replay) and a refused use announce nothing more."""
    p = setup(pdb)
    redeemed = p.redeem("ann", "mug", key="r1", at=AT)
    found.use(p, redeemed.id, key="api:u1", at=LATER, now=NOW, store="paris-04")
    found.use(p, redeemed.id, key="api:u1", at=LATER, now=NOW, store="paris-04")  # replay
    with pytest.raises(ProcessingError):
        found.use(p, redeemed.id, key="api:u2", at=LATER, now=NOW)
    with pdb.read() as conn:
        payloads = [r.payload for r in conn.execute(
            select(outbox.c.payload).where(outbox.c.event_type == "reward.used"))]  # fmt: skip
    assert payloads == [{
        "member": "ann", "redemption_id": redeemed.id, "reward_id": "mug",
        "code": redeemed.code, "used_at": LATER.isoformat(), "used_store": "paris-04",
    }]  # fmt: skip
