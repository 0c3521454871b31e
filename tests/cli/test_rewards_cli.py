"""``fidelite rewards``: the catalogue with its stock left, redeeming once per key,
cancelling, a member's history, and every refusal changing nothing (the installed
script on a real SQLite file; two runs at once with one key on PostgreSQL)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from fidelite.store import Database
from tests.cli.support import as_json, at_once_while_held, fidelite
from tests.conftest import make_database

PROGRAM = """\
id: shop
name: Shop
time_zone: Europe/Paris
currencies:
  - {id: points, name: Points, value: 0.01}
  - {id: miles, name: Miles, value: 0.02}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
tiers:
  levels:
    - {id: bronze, name: Bronze, threshold: 0}
    - {id: silver, name: Silver, threshold: 100}
    - {id: gold, name: Gold, threshold: 500}
rewards:
  - {id: mug, name: Mug, kind: free_product, sku: MUG, cost: 100, stock: 1}
  - {id: coffee, name: Coffee, kind: free_product, sku: ESP, cost: 30, per_member_limit: 1}
  - {id: tour, name: Tour, kind: experience, cost: 1000}
  - {id: lounge, name: Lounge, kind: experience, cost: 10, tiers: [gold]}
  - {id: summer, name: Summer voucher, kind: voucher, cost: 10,
     valid_from: 2019-06-01T00:00:00+02:00, valid_until: 2019-09-01T00:00:00+02:00}
  - {id: flight, name: Flight, kind: partner, partner: AirCo, cost: 5, currency: miles}
  - {id: future, name: Future, kind: voucher, cost: 10, valid_from: 2999-01-01T00:00:00+00:00}
"""
EVENTS = """\
event_id,type,member,at,amount
p1,purchase,ann,2026-01-10T10:00:00+01:00,150
p2,purchase,bob,2026-01-10T10:00:00+01:00,120
p3,purchase,dan,2026-01-10T10:00:00+01:00,100
"""


@pytest.fixture
def shop(tmp_path: Path) -> tuple[Path, str]:
    """A program file and a SQLite file where ann has 150 points, bob 120, dan 100 (all silver)."""
    return prepare(tmp_path, f"sqlite:///{tmp_path / 'shop.db'}")


def prepare(tmp_path: Path, db: str) -> tuple[Path, str]:
    program = tmp_path / "shop.yaml"
    program.write_text(PROGRAM, encoding="utf-8")
    fidelite("db", "upgrade", db=db)
    (tmp_path / "events.csv").write_text(EVENTS, encoding="utf-8")
    fidelite("import", "events", tmp_path / "events.csv", "-p", program, db=db)
    return program, db


def state(db: str) -> dict[str, Any]:
    """Everything a redemption or a cancellation changes: the members' balances, the
    ledger's transactions and postings, the redemptions (and so the stock) and the
    webhook events announced."""
    database = Database(db)
    try:
        with database.read() as conn:

            def rows(sql: str) -> list[tuple[Any, ...]]:
                return [tuple(r) for r in conn.execute(text(sql))]

            return {
                "balances": rows(
                    "SELECT m.ref, a.currency, a.kind, a.balance FROM accounts a "
                    "JOIN members m ON m.id = a.member_id ORDER BY m.ref, a.currency, a.kind"
                ),
                "transactions": rows("SELECT count(*) FROM ledger_transactions"),
                "postings": rows("SELECT count(*) FROM postings"),
                "redemptions": rows(
                    "SELECT id, member_ref, reward_id, status FROM redemptions ORDER BY id"
                ),
                "idempotency": rows("SELECT count(*) FROM idempotency_records"),
            }
    finally:
        database.dispose()


def available(program: Path, db: str, member: str) -> int:
    shown = as_json(fidelite("ledger", "balance", member, "-p", program, "-f", "json", db=db))
    return int(shown["available"])


def catalogue(program: Path, db: str) -> dict[str, Any]:
    listed = as_json(fidelite("rewards", "list", "-p", program, "-f", "json", db=db))
    return {row["id"]: row for row in listed}


def test_every_rewards_command_has_help_with_an_example() -> None:
    for command in ("list", "redeem", "cancel", "show", "history"):
        shown = fidelite("rewards", command, "--help").stdout
        assert "Example: fidelite rewards " + command in " ".join(shown.split()), command


def test_rewards_list_shows_the_catalogue_with_the_stock_left(shop: tuple[Path, str]) -> None:
    program, db = shop
    assert catalogue(program, db) == {
        "mug": {"id": "mug", "name": "Mug", "kind": "free_product", "cost": 100,
                "currency": "points", "stock": 1, "left": 1, "per_member_limit": None,
                "tiers": [], "valid_from": None, "valid_until": None},
        "coffee": {"id": "coffee", "name": "Coffee", "kind": "free_product", "cost": 30,
                   "currency": "points", "stock": None, "left": None, "per_member_limit": 1,
                   "tiers": [], "valid_from": None, "valid_until": None},
        "tour": {"id": "tour", "name": "Tour", "kind": "experience", "cost": 1000,
                 "currency": "points", "stock": None, "left": None, "per_member_limit": None,
                 "tiers": [], "valid_from": None, "valid_until": None},
        "lounge": {"id": "lounge", "name": "Lounge", "kind": "experience", "cost": 10,
                   "currency": "points", "stock": None, "left": None,
                   "per_member_limit": None, "tiers": ["gold"], "valid_from": None,
                   "valid_until": None},
        "summer": {"id": "summer", "name": "Summer voucher", "kind": "voucher", "cost": 10,
                   "currency": "points", "stock": None, "left": None,
                   "per_member_limit": None, "tiers": [],
                   "valid_from": "2019-05-31T22:00:00+00:00",
                   "valid_until": "2019-08-31T22:00:00+00:00"},
        "flight": {"id": "flight", "name": "Flight", "kind": "partner", "cost": 5,
                   "currency": "miles", "stock": None, "left": None, "per_member_limit": None,
                   "tiers": [], "valid_from": None, "valid_until": None},
        "future": {"id": "future", "name": "Future", "kind": "voucher", "cost": 10,
                   "currency": "points", "stock": None, "left": None, "per_member_limit": None,
                   "tiers": [], "valid_from": "2999-01-01T00:00:00+00:00", "valid_until": None},
    }  # fmt: skip
    assert list(catalogue(program, db)) == [
        "mug", "coffee", "tour", "lounge", "summer", "flight", "future"
    ]  # fmt: skip
    table = fidelite("rewards", "list", "-p", program, db=db).stdout
    assert "Rewards of shop" in table and "Summer voucher" in table
    mug = next(line for line in table.splitlines() if "│ mug " in line)
    assert [cell.strip() for cell in mug.split("│")[1:8]] == [
        "mug", "Mug", "free_product", "100", "points", "1", "1"
    ]  # fmt: skip
    lounge = next(line for line in table.splitlines() if "│ lounge " in line)
    assert "│ gold " in lounge
    done = fidelite("rewards", "redeem", "ann", "mug", "-k", "m1", "-p", program, "-f", "json",
                    db=db)  # fmt: skip
    assert catalogue(program, db)["mug"]["left"] == 0
    fidelite("rewards", "cancel", str(as_json(done)["id"]), "-p", program, db=db)
    assert catalogue(program, db)["mug"]["left"] == 1


def test_rewards_redeem_spends_once_per_key_and_prints_the_code(shop: tuple[Path, str]) -> None:
    program, db = shop
    first = as_json(fidelite("rewards", "redeem", "ann", "mug", "--key", "desk-1", "-p", program,
                             "-f", "json", db=db))  # fmt: skip
    code = first["code"]
    assert code.startswith("RW-")
    assert first == {"id": 1, "member": "ann", "reward": "mug", "points": 100,
                     "currency": "points", "code": code, "status": "active",
                     "redeemed_at": first["redeemed_at"], "transaction_id": 4,
                     "cancel_transaction_id": None, "replayed": False}  # fmt: skip
    assert available(program, db, "ann") == 50
    before = state(db)
    again = as_json(fidelite("rewards", "redeem", "ann", "mug", "--key", "desk-1", "-p", program,
                             "-f", "json", db=db))  # fmt: skip
    assert again == first | {"replayed": True}
    shown = fidelite("rewards", "redeem", "ann", "mug", "-k", "desk-1", "-p", program, db=db)
    assert " ".join(shown.stdout.split()) == (
        f"redeemed mug for ann: 100 points spent; code {code} (redemption 1) "
        "(replayed: already done with this key)"
    )
    assert state(db) == before
    other = fidelite("rewards", "redeem", "ann", "coffee", "--key", "desk-1", "-p", program,
                     "-f", "json", db=db, ok=False)  # fmt: skip
    assert other.returncode == 1
    assert as_json(other) == {"error": {
        "code": "idempotency_conflict", "message": "key already used to redeem 'mug' for 'ann'"
    }}  # fmt: skip
    assert state(db) == before
    coffee = fidelite("rewards", "redeem", "ann", "coffee", "--key", "desk-2", "-p", program,
                      db=db)  # fmt: skip
    assert "redeemed coffee for ann: 30 points spent; code RW-" in coffee.stdout
    assert "(redemption 2)" in coffee.stdout and "replayed" not in coffee.stdout
    assert available(program, db, "ann") == 20


def test_rewards_cancel_returns_the_points_once(shop: tuple[Path, str]) -> None:
    program, db = shop
    fidelite("rewards", "redeem", "bob", "coffee", "-k", "b1", "-p", program, db=db)
    assert available(program, db, "bob") == 90
    cancelled = as_json(fidelite("rewards", "cancel", "1", "-p", program, "-f", "json", db=db))
    assert (cancelled["id"], cancelled["member"], cancelled["reward"], cancelled["points"],
            cancelled["status"], cancelled["replayed"]) == (1, "bob", "coffee", 30, "cancelled",
                                                            False)  # fmt: skip
    assert cancelled["cancel_transaction_id"] == 5
    assert (cancelled["points_spendable"], cancelled["points_expired"], cancelled["debt_repaid"],
            cancelled["expired_lots"]) == (30, 0, 0, [])  # fmt: skip
    assert available(program, db, "bob") == 120
    before = state(db)
    again = fidelite("rewards", "cancel", "1", "-p", program, db=db)
    assert " ".join(again.stdout.split()) == (
        "cancelled redemption 1 (coffee for bob), 30 points: 30 points back, spendable "
        "(already cancelled: nothing changed)"
    )
    assert as_json(fidelite("rewards", "cancel", "1", "-p", program, "-f", "json", db=db)) == (
        cancelled | {"replayed": True}
    )
    assert state(db) == before
    # the cancelled one no longer counts against bob's limit of one coffee
    fidelite("rewards", "redeem", "bob", "coffee", "-k", "b2", "-p", program, db=db)
    assert available(program, db, "bob") == 90


def test_rewards_redeem_replayed_after_a_cancel_hands_over_no_code(
    shop: tuple[Path, str],
) -> None:
    """The replay used to print "redeemed coffee for bob: 30 points spent; code ..." for
    a redemption since cancelled: a desk would hand over a void code."""
    program, db = shop
    fidelite("rewards", "redeem", "bob", "coffee", "-k", "b1", "-p", program, db=db)
    fidelite("rewards", "cancel", "1", "-p", program, db=db)
    before = state(db)
    again = fidelite("rewards", "redeem", "bob", "coffee", "-k", "b1", "-p", program, db=db)
    code = as_json(fidelite("rewards", "show", "1", "-p", program, "-f", "json", db=db))["code"]
    assert " ".join(again.stdout.split()) == (
        f"not redeemed again: key already used by redemption 1 of coffee for bob, since "
        f"cancelled: its code {code} is void and its points were returned; redeem under a "
        "new key to redeem again"
    )
    replay = as_json(fidelite("rewards", "redeem", "bob", "coffee", "-k", "b1", "-p", program,
                              "-f", "json", db=db))  # fmt: skip
    assert (replay["status"], replay["replayed"]) == ("cancelled", True)
    assert state(db) == before
    assert available(program, db, "bob") == 120


@pytest.mark.parametrize("key", ["", "  "])
def test_rewards_redeem_refuses_a_blank_key(shop: tuple[Path, str], key: str) -> None:
    """A blank key became the one key 'cli:', shared by every later redemption."""
    program, db = shop
    before = state(db)
    proc = fidelite("rewards", "redeem", "bob", "coffee", "--key", key, "-p", program,
                    "-f", "json", db=db, ok=False)  # fmt: skip
    assert proc.returncode == 2
    assert as_json(proc) == {"error": {
        "code": "usage",
        "message": "--key must be a non-empty text (the API refuses an empty Idempotency-Key "
        "too)",
    }}  # fmt: skip
    assert state(db) == before


def test_rewards_show_and_history_list_a_members_redemptions(shop: tuple[Path, str]) -> None:
    program, db = shop
    mug = as_json(fidelite("rewards", "redeem", "ann", "mug", "-k", "a1", "-p", program,
                           "-f", "json", db=db))  # fmt: skip
    coffee = as_json(fidelite("rewards", "redeem", "ann", "coffee", "-k", "a2", "-p", program,
                              "-f", "json", db=db))  # fmt: skip
    fidelite("rewards", "redeem", "bob", "coffee", "-k", "b1", "-p", program, db=db)
    fidelite("rewards", "cancel", str(mug["id"]), "-p", program, db=db)
    shown = as_json(fidelite("rewards", "show", str(mug["id"]), "-p", program, "-f", "json",
                             db=db))  # fmt: skip
    assert shown == {k: v for k, v in mug.items() if k != "replayed"} | {
        "status": "cancelled",
        "cancel_transaction_id": 7,
    }
    table = fidelite("rewards", "show", str(mug["id"]), "-p", program, db=db).stdout
    assert mug["code"] in table and "cancelled" in table
    history = as_json(fidelite("rewards", "history", "ann", "-p", program, "-f", "json", db=db))
    # the latest first: the coffee was redeemed after the mug (or at the same instant, and
    # then the higher id comes first)
    assert [(h["id"], h["reward"], h["status"], h["code"]) for h in history] == [
        (coffee["id"], "coffee", "active", coffee["code"]),
        (mug["id"], "mug", "cancelled", mug["code"]),
    ]
    table = fidelite("rewards", "history", "ann", "-p", program, db=db).stdout
    row = next(line for line in table.splitlines() if f"│ {mug['id']} " in line)
    assert [cell.strip() for cell in row.split("│")[1:7]] == [
        str(mug["id"]), "mug", "100", "points", mug["code"], "cancelled"
    ]  # fmt: skip
    csv = fidelite("rewards", "history", "ann", "-p", program, "-f", "csv", db=db).stdout
    assert csv.splitlines()[0] == (
        "id,member,reward,points,currency,code,status,redeemed_at,transaction_id,"
        "cancel_transaction_id"
    )
    (tmp := program.parent / "crm.csv").write_text("member\ncarl\n", encoding="utf-8")
    fidelite("import", "members", tmp, "-p", program, db=db)
    assert as_json(fidelite("rewards", "history", "carl", "-p", program, "-f", "json",
                            db=db)) == []  # fmt: skip


REFUSALS = [
    # (member, reward, code, words of the message)
    ("ann", "tour", "insufficient_points",
     "cannot redeem 'tour': member 'ann' has 150 points available, 1000 requested"),
    ("ann", "lounge", "reward_not_available_for_tier",
     "cannot redeem 'lounge': member 'ann' has tier 'silver'; for tiers gold only"),
    ("ann", "summer", "reward_expired",
     "cannot redeem 'summer': available until 2019-08-31T22:00:00+00:00"),
    ("ann", "future", "reward_not_yet_available",
     "cannot redeem 'future': available from 2999-01-01T00:00:00+00:00"),
    ("ann", "nothing", "reward_unknown",
     "cannot redeem 'nothing': no reward 'nothing' in the catalogue (rewards: mug, coffee, "
     "tour, lounge, summer, flight, future)"),
    ("zoe", "mug", "unknown_member", "no member 'zoe' in program 'shop'"),
    ("bob", "mug", "reward_out_of_stock", "cannot redeem 'mug': out of stock, all 1 redeemed"),
    ("bob", "coffee", "reward_limit_reached",
     "cannot redeem 'coffee': member 'bob' has redeemed it 1 time(s), the limit per member is "
     "1 (over the reward's lifetime, cancelled redemptions not counted)"),
]  # fmt: skip


@pytest.mark.parametrize(("member", "reward", "code", "message"), REFUSALS,
                         ids=[r[2] for r in REFUSALS])  # fmt: skip
def test_rewards_redeem_refusals_change_nothing(
    shop: tuple[Path, str], member: str, reward: str, code: str, message: str
) -> None:
    program, db = shop
    fidelite("rewards", "redeem", "bob", "coffee", "-k", "bob-coffee", "-p", program, db=db)
    fidelite("rewards", "redeem", "dan", "mug", "-k", "dan-mug", "-p", program, db=db)
    assert available(program, db, "ann") == 150 and available(program, db, "bob") == 90
    before = state(db)
    refused = fidelite("rewards", "redeem", member, reward, "-k", "new", "-p", program,
                       "-f", "json", db=db, ok=False)  # fmt: skip
    assert refused.returncode == 1
    error = as_json(refused)["error"]
    assert (error["code"], error["message"]) == (code, message)
    said = fidelite("rewards", "redeem", member, reward, "-k", "new", "-p", program, db=db,
                    ok=False)  # fmt: skip
    assert said.returncode == 1 and said.stdout == ""
    assert " ".join(said.stderr.split()) == f"error [{code}] {message}"
    assert state(db) == before
    assert catalogue(program, db)["mug"]["left"] == 0
    # a refusal does not use up its key: the same key redeems once the cause is gone
    if code == "insufficient_points":
        assert error["detail"] == {"available": 150, "requested": 1000}
        fidelite("rewards", "redeem", "ann", "coffee", "-k", "new", "-p", program, db=db)
        assert available(program, db, "ann") == 120


def test_rewards_cancel_and_show_refuse_an_unknown_redemption(shop: tuple[Path, str]) -> None:
    program, db = shop
    fidelite("rewards", "redeem", "ann", "coffee", "-k", "a1", "-p", program, db=db)
    before = state(db)
    for command in ("cancel", "show"):
        refused = fidelite("rewards", command, "7", "-p", program, "-f", "json", db=db, ok=False)
        assert refused.returncode == 1
        assert as_json(refused) == {"error": {"code": "unknown_redemption",
                                              "message": "no redemption 7"}}  # fmt: skip
        zero = fidelite("rewards", command, "0", "-p", program, db=db, ok=False)
        assert zero.returncode == 2 and "must be at least 1, got 0" in zero.stderr
    unknown = fidelite("rewards", "history", "zoe", "-p", program, "-f", "json", db=db, ok=False)
    assert as_json(unknown) == {
        "error": {
            "code": "unknown_member",
            "field": "member_ref",
            "message": "no member 'zoe' in program 'shop'",
        }
    }
    assert state(db) == before


@pytest.mark.postgres
def test_rewards_redeem_run_twice_at_once_with_one_key_spends_once(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Both runs wait on ann, whom another session holds; once she is free one spends
    and the other answers with its redemption."""
    database = make_database("postgresql", request, tmp_path)
    program, db = prepare(tmp_path, database.url)
    run = ["rewards", "redeem", "ann", "mug", "-k", "desk-1", "-p", program]
    answers = at_once_while_held(database, "ann", run, run)
    database.dispose()
    assert [a["replayed"] for a in answers] == [False, True]
    assert answers[1] == answers[0] | {"replayed": True}
    assert available(program, db, "ann") == 50
    assert catalogue(program, db)["mug"]["left"] == 0
    history = as_json(fidelite("rewards", "history", "ann", "-p", program, "-f", "json", db=db))
    assert [(h["id"], h["code"]) for h in history] == [(answers[0]["id"], answers[0]["code"])]
    refused = fidelite("rewards", "redeem", "bob", "mug", "-k", "desk-2", "-p", program,
                       "-f", "json", db=db, ok=False)  # fmt: skip
    assert as_json(refused)["error"]["code"] == "reward_out_of_stock"
    cancelled = as_json(fidelite("rewards", "cancel", str(answers[0]["id"]), "-p", program,
                                 "-f", "json", db=db))  # fmt: skip
    assert (cancelled["status"], available(program, db, "ann")) == ("cancelled", 150)


def test_rewards_cancel_says_which_points_had_expired(shop: tuple[Path, str]) -> None:
    """dan's 100 points from the import, plus 40 ending in 12 s: the coffee (30) is paid
    from the 40, which have expired by the cancellation: nothing spendable comes back,
    and the 30 are recorded as expired."""
    import time
    from datetime import UTC, datetime, timedelta

    program, db = shop
    ends = (datetime.now(UTC) + timedelta(seconds=12)).replace(microsecond=0)
    fidelite("ledger", "earn", "dan", "40", "-k", "soon", "--expires", ends.isoformat(),
             "-p", program, db=db)  # fmt: skip
    fidelite("rewards", "redeem", "dan", "coffee", "-k", "d1", "-p", program, db=db)
    assert available(program, db, "dan") == 110
    time.sleep(max(0.0, (ends - datetime.now(UTC)).total_seconds()) + 0.5)
    assert available(program, db, "dan") == 100
    shown = fidelite("rewards", "cancel", "1", "-p", program, db=db)
    assert " ".join(shown.stdout.split()) == (
        "cancelled redemption 1 (coffee for dan), 30 points: 0 points back, spendable; 30 "
        f"already expired (30 of a lot that expired {ends.isoformat()}): expired at once, "
        "not spendable"
    )
    assert available(program, db, "dan") == 100
    again = as_json(fidelite("rewards", "cancel", "1", "-p", program, "-f", "json", db=db))
    assert (again["points_spendable"], again["points_expired"], again["expired_lots"],
            again["replayed"]) == (0, 30, [{"expires_at": ends.isoformat(), "points": 30}],
                                   True)  # fmt: skip
    assert fidelite("ledger", "check", db=db).returncode == 0
