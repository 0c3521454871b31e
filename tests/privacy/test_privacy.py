"""Export everything held on a member; erase their personal data, books intact."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text, update

from fidelite.ledger import Ledger, Rejected, check_invariants
from fidelite.privacy import erase_member, export_member
from fidelite.processing import EventProcessor
from fidelite.processing.tables import member_states
from fidelite.store import Database
from fidelite.store.tables import Base
from fidelite.webhooks import dispatch, log
from fidelite.webhooks import subscriptions as subs
from tests.conftest import BACKENDS, make_database
from tests.webhooks.support import processor, purchase

REF = "ann-4711"
NOW = "<wall clock>"


@pytest.fixture(params=BACKENDS)
def gdb(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    database = make_database(request.param, request, tmp_path)
    yield database
    database.dispose()


def setup(db: Database) -> EventProcessor:
    p = processor(db)
    subs.add(db, "shop", "http://127.0.0.1:9/hooks", ["*"], allow_private=True)
    p.process(purchase("p1", REF, "120.00"))
    p.redeem(REF, "mug", key="r1", at=datetime.fromisoformat("2026-11-03T10:00:00+00:00"))
    p.process(purchase("p2", "bob", "30.00"))
    dispatch(db)
    with db.write() as conn:
        conn.execute(
            update(member_states)
            .where(member_states.c.member_ref == REF)
            .values(attributes={"email": "ann@example.com", "city": "Lyon"},
                    segments=["newsletter"], birth_date=date(1990, 5, 17))
        )  # fmt: skip
    return p


def export(db: Database, ref: str) -> dict[str, Any]:
    with db.read() as conn:
        return export_member(conn, "shop", ref)


def erase(db: Database, ref: str) -> Any:
    with db.write() as conn:
        return erase_member(conn, "shop", ref, reason="request 2026-118",
                            at=datetime.fromisoformat("2026-11-20T09:00:00+00:00"))  # fmt: skip


def without_clock(value: Any) -> Any:
    """Replace wall-clock fields (recorded/created times) after checking they are times."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k in ("created_at", "recorded_at", "next_attempt_at") and isinstance(v, str):
                datetime.fromisoformat(v)
                out[k] = NOW
            else:
                out[k] = without_clock(v)
        return out
    if isinstance(value, list):
        return [without_clock(v) for v in value]
    return value


def test_export_holds_everything_about_the_member_and_nothing_else(gdb: Database) -> None:
    setup(gdb)
    got = without_clock(export(gdb, REF))
    code = got["redemptions"][0]["code"]
    earned = {"currency": "points", "points": 120, "transaction_id": 1, "event_id": "p1",
              "event_type": "purchase", "occurred_at": "2026-11-02T10:00:00+00:00",
              "expires_at": None, "pending_until": None}  # fmt: skip
    tier = {"from_tier": "bronze", "to_tier": "silver", "kind": "upgrade",
            "reason": "spend 120 reached 100", "at": "2026-11-02T10:00:00+00:00",
            "event_id": "p1"}  # fmt: skip

    def pending(delivery_id: int) -> list[dict[str, Any]]:
        """The one delivery (dispatched, not yet tried) of each event to the subscription."""
        return [{"id": delivery_id, "subscription_id": 1, "state": "pending", "attempts": 0,
                 "next_attempt_at": NOW, "lease_token": None, "lease_until": None,
                 "last_attempt_at": None, "last_status": None, "last_error": None,
                 "delivered_at": None, "created_at": NOW, "attempt_log": []}]  # fmt: skip

    request_hash = got["idempotency_records"][0]["request_hash"]
    assert len(request_hash) == 64 and int(request_hash, 16) >= 0
    assert got == {
        "program": "shop",
        "member": {"id": 1, "ref": REF, "status": "active", "created_at": NOW},
        "profile": {
            "tier": "silver", "tier_since": "2026-11-02T10:00:00+00:00",
            "review_at": "2027-11-02T10:00:00+00:00", "grace_until": None,
            "assigned_until": None, "segments": ["newsletter"],
            "attributes": {"email": "ann@example.com", "city": "Lyon"}, "purchases": 1,
            "joined_at": "2026-11-02T10:00:00+00:00", "birth_date": "1990-05-17",
        },
        "balances": [
            {"currency": "points", "kind": "available", "account_balance": 20},
            {"currency": "points", "kind": "debt", "account_balance": 0},
            {"currency": "points", "kind": "pending", "account_balance": 0},
        ],
        "ledger": [
            {"id": 1, "kind": "earn", "currency": "points", "points": 120, "reversed_points": 0,
             "reverses_id": None, "reason": "purchase", "source": "p1", "actor": None,
             "detail": None, "occurred_at": "2026-11-02T10:00:00+00:00", "recorded_at": NOW,
             "postings": [{"account": "available", "lot_id": 1, "points": 120}]},
            {"id": 2, "kind": "spend", "currency": "points", "points": 100, "reversed_points": 0,
             "reverses_id": None, "reason": "reward mug", "source": "mug", "actor": None,
             "detail": None, "occurred_at": "2026-11-03T10:00:00+00:00", "recorded_at": NOW,
             "postings": [{"account": "available", "lot_id": 1, "points": -100}]},
        ],
        "lots": [
            {"id": 1, "member_id": 1, "currency": "points", "earn_transaction_id": 1,
             "points": 120, "remaining": 20, "state": "available",
             "earned_at": "2026-11-02T10:00:00+00:00", "expires_at": None,
             "pending_until": None},
        ],
        "events": [
            {"event_id": "p1", "member_ref": REF, "type": "purchase",
             "occurred_at": "2026-11-02T10:00:00+00:00", "amount": "120.0000",
             "refunded_amount": "0.0000", "coupon": None, "coupon_accepted": None,
             "refund_of": None, "recorded_at": NOW,
             "trace": [{"rule": "base", "outcome": "matched", "points": 120,
                        "currency": "points"}]},
        ],
        "redemptions": [
            {"id": 1, "member_ref": REF, "reward_id": "mug", "key": "r1", "points": 100,
             "transaction_id": 2, "code": code, "status": "active",
             "redeemed_at": "2026-11-03T10:00:00+00:00", "cancel_transaction_id": None,
             "used_at": None, "used_store": None, "used_key": None, "used_by": None},
        ],
        "tier_changes": [
            {"id": 1, "member_ref": REF, "at": "2026-11-02T10:00:00+00:00", "kind": "upgrade",
             "from_tier": "bronze", "to_tier": "silver", "value": "120.0000",
             "reason": "spend 120 reached 100", "event_id": "p1", "assigned_until": None},
        ],
        "coupons": [],
        "coupon_rollbacks": [],
        "rule_usage": [],
        "webhook_events": [
            {"id": 1, "event_type": "member.created", "created_at": NOW,
             "payload": {"member": REF, "joined_at": "2026-11-02T10:00:00+00:00"},
             "deliveries": pending(1)},
            {"id": 2, "event_type": "points.earned", "created_at": NOW,
             "payload": {"member": REF, **earned}, "deliveries": pending(2)},
            {"id": 3, "event_type": "tier.changed", "created_at": NOW,
             "payload": {"member": REF, **tier}, "deliveries": pending(3)},
            {"id": 4, "event_type": "points.spent", "created_at": NOW,
             "payload": {"member": REF, "currency": "points", "points": 100,
                         "transaction_id": 2, "reason": "reward mug",
                         "occurred_at": "2026-11-03T10:00:00+00:00"},
             "deliveries": pending(4)},
            {"id": 5, "event_type": "reward.redeemed", "created_at": NOW,
             "payload": {"member": REF, "redemption_id": 1, "reward_id": "mug", "points": 100,
                         "currency": "points", "code": code,
                         "redeemed_at": "2026-11-03T10:00:00+00:00"},
             "deliveries": pending(5)},
        ],
        "stored_answers": [],
        "idempotency_records": [
            {"key": f"member:{REF}", "request_hash": request_hash, "result": {"member_id": 1},
             "created_at": NOW},
        ],
        "erasure": None,
    }  # fmt: skip
    with pytest.raises(Rejected, match="no member 'nobody' in program 'shop'"):
        export(gdb, "nobody")


def every_row(db: Database) -> str:
    """Every row of every table, as text (to search for personal data)."""
    with db.read() as conn:
        return "\n".join(
            str(tuple(row))
            for table in sorted(Base.metadata.tables)
            for row in conn.execute(text(f"SELECT * FROM {table}"))
        )


def test_erasure_removes_personal_data_and_keeps_the_books(gdb: Database) -> None:
    setup(gdb)
    processor(gdb).process(purchase("p3", REF, "5.00"))  # announced, not yet dispatched
    before = export(gdb, REF)
    bob_before = export(gdb, "bob")
    assert REF in every_row(gdb) and "ann@example.com" in every_row(gdb)
    done = erase(gdb, REF)
    assert (done.member_id, done.tombstone, done.replayed) == (1, "erased-1", False)
    assert check_invariants(gdb, "shop") == []
    dump = every_row(gdb)
    # The birth date as SQLite stores it and as a driver returns it; a bare "1990"
    # would also match the microseconds of an unrelated timestamp.
    birth = ("1990-05-17", "date(1990, 5, 17)")
    for personal in (REF, "ann@example.com", "Lyon", "newsletter", *birth):
        assert personal not in dump
    after = export(gdb, "erased-1")
    for section in ("balances", "ledger", "lots"):
        assert after[section] == before[section]  # the books did not move
    assert after["member"]["status"] == "erased"
    profile = after["profile"]
    assert (profile["attributes"], profile["segments"], profile["birth_date"]) == ({}, [], None)
    assert profile["tier"] == "silver"
    assert [e["member_ref"] for e in after["events"]] == ["erased-1", "erased-1"]
    assert {e["event_type"]: e["payload"] for e in after["webhook_events"]}["points.earned"] == {
        "member": "erased-1",
        "erased": True,
    }
    assert after["erasure"] == {"tombstone": "erased-1", "reason": "request 2026-118",
                                "erased_at": "2026-11-20T09:00:00+00:00"}  # fmt: skip
    assert dispatch(gdb) == 0  # p3's event will never be sent
    states = {(d["event_id"], d["state"], d["last_error"]) for d in log(gdb, "shop")}
    assert {s for s in states if s[0] <= 5} == {(i, "dead", "member erased") for i in range(1, 6)}
    assert {(s[0], s[1]) for s in states if s[0] > 5} == {(6, "pending"), (7, "pending")}  # bob
    assert export(gdb, "bob") == bob_before


def test_erasure_is_idempotent_and_the_reference_may_enrol_again(gdb: Database) -> None:
    setup(gdb)
    first = erase(gdb, REF)
    dump = every_row(gdb)
    again = erase(gdb, REF)
    by_tombstone = erase(gdb, "erased-1")
    assert again.replayed and by_tombstone.replayed
    assert (again.member_id, again.tombstone) == (by_tombstone.member_id, "erased-1")
    assert again.erased_at == first.erased_at
    assert every_row(gdb) == dump  # nothing changed
    p = processor(gdb)
    # (events dated after each erasure: one dated at or before it is member_erased)
    p.process(purchase("p8", REF, "10.00", "2026-11-21T10:00:00+00:00"))  # remembers REF...
    with gdb.write() as conn:  # ...erased again meanwhile
        erase_member(conn, "shop", REF, at=datetime.fromisoformat("2026-11-22T09:00:00+00:00"))
    p.process(purchase("p9", REF, "10.00", "2026-11-23T10:00:00+00:00"))  # enrols it anew
    again = export(gdb, REF)  # member 3 (from p8) was erased too: this is member 4
    assert (again["member"]["id"], [t["source"] for t in again["ledger"]]) == (4, ["p9"])
    assert export(gdb, "erased-3")["erasure"]["tombstone"] == "erased-3"
    assert check_invariants(gdb, "shop") == []


def test_erasing_an_unknown_member_is_refused_and_changes_nothing(gdb: Database) -> None:
    setup(gdb)
    dump = every_row(gdb)
    with pytest.raises(Rejected, match="no member 'nobody'") as caught:
        erase(gdb, "nobody")
    assert caught.value.field == "member_ref"
    assert every_row(gdb) == dump
    with gdb.read() as conn:
        assert conn.execute(select(member_states.c.member_ref)).scalars().all() != []


@pytest.mark.parametrize("job", ["expire", "lapse12"])
def test_erasure_leaves_no_reference_in_expiry_keys_old_or_new(gdb: Database, job: str) -> None:
    p = setup(gdb)
    due = datetime.fromisoformat("2026-12-01T00:00:00+00:00")
    p.ledger.earn("shop", REF, "points", 7, key="bonus", at=datetime.fromisoformat(
        "2026-11-04T00:00:00+00:00"), expires_at=due)  # fmt: skip

    def keys() -> list[str]:
        with gdb.read() as conn:
            sql = "SELECT idempotency_key FROM ledger_transactions WHERE kind = 'expire'"
            return list(conn.execute(text(sql)).scalars())

    assert p.ledger.expire("shop", due).points == {"points": 7}
    (key,) = keys()
    assert key.startswith("expire:points:") and REF not in key
    legacy = f"{job}:{REF}:points:{due.isoformat()}"  # an earlier version named the member
    with gdb.write() as conn:
        conn.execute(text("UPDATE ledger_transactions SET idempotency_key = :k "
                          "WHERE kind = 'expire'"), {"k": legacy})  # fmt: skip
    erase(gdb, REF)
    assert REF not in every_row(gdb)
    assert keys() == [f"{job}:erased-1:points:{due.isoformat()}"]
    assert p.ledger.balance("shop", "erased-1", "points", as_of=due).available == 20
    assert check_invariants(gdb, "shop") == []


def test_export_names_debt_as_the_signed_account_balance(gdb: Database) -> None:
    """The export's balances are the accounts as stored, under a name that says so:
    the debt account is -300 (what the ledger section's postings add up to), while the
    balance reports the same debt as 300 points owed."""
    ledger = Ledger(gdb)
    ledger.open_program("shop", ["points"])
    ledger.create_member("shop", "ann")
    at = datetime.fromisoformat("2026-11-02T10:00:00+00:00")
    earned = ledger.earn("shop", "ann", "points", 300, key="e1", at=at)
    ledger.spend("shop", "ann", "points", 300, key="s1", at=at)
    ledger.reverse("shop", earned.transaction_id, key="r1", shortfall="debt", at=at)

    data = export(gdb, "ann")
    assert data["balances"] == [
        {"currency": "points", "kind": "available", "account_balance": 0},
        {"currency": "points", "kind": "debt", "account_balance": -300},
        {"currency": "points", "kind": "pending", "account_balance": 0},
    ]
    debt_postings = [
        p["points"] for t in data["ledger"] for p in t["postings"] if p["account"] == "debt"
    ]
    assert debt_postings == [-300]
    assert ledger.balance("shop", "ann", "points", as_of=at).debt == 300
