"""The outbox: processing writes its events in the same transaction as the change."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Connection, func, select

from fidelite.processing import ProcessingError
from fidelite.processing.tables import member_states
from fidelite.store import Database
from fidelite.webhooks import dispatch, record, subscriptions
from fidelite.webhooks.expiring import announce_expiring
from fidelite.webhooks.tables import deliveries, outbox
from tests.webhooks.support import count, outbox_rows, processor, purchase

AT = "2026-11-02T10:00:00+00:00"


def test_processing_announces_member_earnings_tiers_and_redemptions(wdb: Database) -> None:
    p = processor(wdb)
    p.process(purchase("p1", "ann", "120.00"))
    redemption = p.redeem("ann", "mug", key="r1", at=datetime.fromisoformat(AT))
    rows = outbox_rows(wdb)
    assert [(r["event_type"], r["member_ref"]) for r in rows] == [
        ("member.created", "ann"),
        ("points.earned", "ann"),
        ("tier.changed", "ann"),
        ("points.spent", "ann"),
        ("reward.redeemed", "ann"),
    ]
    created, earned, tier, spent, redeemed = (r["payload"] for r in rows)
    assert created == {"member": "ann", "joined_at": "2026-11-02T10:00:00+00:00"}
    assert earned == {
        "member": "ann", "currency": "points", "points": 120,
        "transaction_id": earned["transaction_id"], "event_id": "p1", "event_type": "purchase",
        "occurred_at": "2026-11-02T10:00:00+00:00", "expires_at": None, "pending_until": None,
    }  # fmt: skip
    assert (tier["from_tier"], tier["to_tier"], tier["kind"], tier["event_id"]) == (
        "bronze", "silver", "upgrade", "p1",
    )  # fmt: skip
    assert (spent["points"], spent["currency"], spent["reason"]) == (100, "points", "reward mug")
    assert redeemed == {
        "member": "ann", "redemption_id": redemption.id, "reward_id": "mug", "points": 100,
        "currency": "points", "code": redemption.code, "redeemed_at": "2026-11-02T10:00:00+00:00",
    }  # fmt: skip
    p.redeem("ann", "mug", key="r1", at=datetime.fromisoformat(AT))  # a retry announces nothing
    p.process(purchase("p1", "ann", "120.00"))  # a duplicate event neither
    assert len(outbox_rows(wdb)) == 5


def test_a_change_that_fails_writes_no_event(wdb: Database) -> None:
    p = processor(wdb)
    with pytest.raises(RuntimeError), wdb.write() as conn:  # the caller's transaction fails
        p.process(purchase("p1", "ann", "50.00"), conn=conn)
        assert count_in(conn) == 2  # written inside the transaction...
        raise RuntimeError("till crashed")
    assert outbox_rows(wdb) == []  # ...and gone with it, like the member
    with wdb.read() as conn:
        assert conn.execute(select(member_states)).first() is None
    with pytest.raises(ProcessingError, match="unknown_purchase"):
        refund = {"type": "refund", "refund_of": "nope"}
        p.process(purchase("r1", "ann", "5.00").model_copy(update=refund))
    assert outbox_rows(wdb) == []


def count_in(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(outbox)).scalar_one())


def test_events_fan_out_to_matching_active_subscriptions(wdb: Database) -> None:
    p = processor(wdb)
    p.ledger.open_program("shop", ["points"])
    every = subscriptions.add(wdb, "shop", "http://127.0.0.1:9/a", ["*"], allow_private=True)
    earned = subscriptions.add(wdb, "shop", "http://127.0.0.1:9/b", ["points.earned"],
                               allow_private=True)  # fmt: skip
    other = subscriptions.add(wdb, "other", "http://127.0.0.1:9/c", ["*"], allow_private=True)
    p.process(purchase("p1", "ann", "50.00"))
    assert count(wdb, deliveries) == 0  # the event's transaction wrote only the outbox
    assert dispatch(wdb) == 2
    with wdb.read() as conn:
        pairs = conn.execute(
            select(deliveries.c.subscription_id, outbox.c.event_type, deliveries.c.state)
            .join(outbox, outbox.c.id == deliveries.c.outbox_id)
            .order_by(deliveries.c.id)
        ).all()  # fmt: skip
    assert [tuple(r) for r in pairs] == [
        (every.id, "member.created", "pending"),
        (every.id, "points.earned", "pending"),
        (earned.id, "points.earned", "pending"),
    ]
    assert other.id not in {r[0] for r in pairs}


def test_a_subscription_is_not_sent_the_history_recorded_before_it(wdb: Database) -> None:
    """A backlog left undispatched (no worker ran, or an import just ended) goes to the
    subscriptions that existed when each event was recorded, not to one added since."""
    added = datetime(2026, 11, 2, 12, tzinfo=UTC)
    processor(wdb)
    with wdb.write() as conn:
        record(conn, "shop", "points.earned", {"n": 1}, at=added - timedelta(microseconds=1))
        record(conn, "shop", "points.earned", {"n": 2}, at=added)
        record(conn, "shop", "points.earned", {"n": 3}, at=added + timedelta(hours=1))
    late = subscriptions.add(wdb, "shop", "http://127.0.0.1:9/a", ["*"], allow_private=True,
                             at=added)  # fmt: skip
    assert dispatch(wdb) == 3  # all three leave the backlog...
    with wdb.read() as conn:
        sent = conn.execute(
            select(deliveries.c.subscription_id, outbox.c.payload)
            .join(outbox, outbox.c.id == deliveries.c.outbox_id)
            .order_by(deliveries.c.id)
        ).all()  # fmt: skip
    assert [(r[0], r[1]["n"]) for r in sent] == [(late.id, 2), (late.id, 3)]  # ...two to it


def test_record_with_a_dedup_key_writes_once(wdb: Database) -> None:
    processor(wdb)
    with wdb.write() as conn:
        first = record(conn, "shop", "points.expiring", {"n": 1}, dedup_key="k")
        again = record(conn, "shop", "points.expiring", {"n": 2}, dedup_key="k")
    assert (first, again) == (True, False)
    assert [r["payload"] for r in outbox_rows(wdb)] == [{"n": 1}]


def test_expiring_lots_are_announced_once_each(wdb: Database) -> None:
    p = processor(wdb)
    p.process(purchase("p0", "ann", "1.00"))  # enrol ann
    as_of = datetime(2026, 11, 20, tzinfo=UTC)
    for key, days, points in (("soon", 10, 7), ("later", 40, 9), ("edge", 30, 5)):
        p.ledger.earn("shop", "ann", "points", points, key=key, at=as_of,
                      expires_at=as_of + timedelta(days=days))  # fmt: skip
    before = count(wdb, outbox)
    assert announce_expiring(wdb, "shop", as_of, days=30) == 2
    assert announce_expiring(wdb, "shop", as_of, days=30) == 0  # a re-run: nothing twice
    new = [r["payload"] for r in outbox_rows(wdb)[before:]]
    assert [(e["points"], e["expires_at"]) for e in new] == [
        (7, "2026-11-30T00:00:00+00:00"),
        (5, "2026-12-20T00:00:00+00:00"),
    ]
    assert {e["member"] for e in new} == {"ann"}


def test_refunds_and_cancelled_redemptions_are_announced(wdb: Database) -> None:
    p = processor(wdb)
    p.process(purchase("p1", "ann", "150.00"))
    redemption = p.redeem("ann", "mug", key="r1", at=datetime.fromisoformat(AT))
    before = len(outbox_rows(wdb))
    refund = {"type": "refund", "refund_of": "p1", "id": "rf1"}
    p.process(purchase("rf1", "ann", "30.00").model_copy(update=refund))
    p.cancel_redemption(redemption.id, at=datetime.fromisoformat(AT))
    p.cancel_redemption(redemption.id, at=datetime.fromisoformat(AT))  # a retry: once
    new = outbox_rows(wdb)[before:]
    assert [r["event_type"] for r in new] == ["points.reversed", "reward.cancelled"]
    reversed_, cancelled = (r["payload"] for r in new)
    assert (reversed_["points"], reversed_["refund_of"], reversed_["event_id"]) == (30, "p1", "rf1")
    assert (reversed_["written_off"], reversed_["debt_added"]) == (0, 0)
    assert cancelled == {
        "member": "ann", "redemption_id": redemption.id, "reward_id": "mug", "points": 100,
        "currency": "points", "points_spendable": 100, "points_expired": 0, "debt_repaid": 0,
        "written_off_restored": 0, "expired_lots": [],
        "transaction_id": cancelled["transaction_id"],
        "cancelled_at": "2026-11-02T10:00:00+00:00",
    }  # fmt: skip


def test_announcements_can_be_switched_off_for_loading_history(wdb: Database) -> None:
    from fidelite.processing import EventProcessor
    from fidelite.program import parse_program
    from tests.webhooks.support import PROGRAM

    quiet = EventProcessor(wdb, parse_program(PROGRAM), announce=False)
    quiet.process(purchase("p1", "ann", "120.00"))
    assert quiet.member_tier("ann") == "silver"  # processed, tier moved...
    assert outbox_rows(wdb) == []  # ...and nothing announced
