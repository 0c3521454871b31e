"""``fidelite event show``: a past event as recorded, as a user runs it (the installed
script, on a SQLite file and on PostgreSQL)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fidelite.store import Database
from tests.cli.support import as_json, fidelite

PROGRAM = """\
id: shop
name: Shop
time_zone: Europe/Paris
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
  - {id: big_basket, on: [purchase], when: "event.amount >= 1000.0", fixed: 50}
tiers:
  levels:
    - {id: bronze, name: Bronze, threshold: 0}
    - {id: silver, name: Silver, threshold: 100}
"""
EVENTS = """\
event_id,type,member,at,amount,refund_of
p1,purchase,ann,2026-01-10T10:00:00+01:00,120.50,
r1,refund,ann,2026-01-12T10:00:00+01:00,40,p1
"""


def _shop(tmp_path: Path, db: Database) -> str:
    program = tmp_path / "shop.yaml"
    program.write_text(PROGRAM, encoding="utf-8")
    (tmp_path / "events.csv").write_text(EVENTS, encoding="utf-8")
    fidelite("import", "events", tmp_path / "events.csv", "-p", program, db=db.url)
    return db.url


def _show(db: str, *args: str, ok: bool = True) -> Any:
    return fidelite("event", "show", *args, "--program", "shop", "--db", db, ok=ok)


def test_event_show_explains_a_past_event_or_fails_clearly(tmp_path: Path, db: Database) -> None:
    url = _shop(tmp_path, db)
    shown = as_json(_show(url, "p1", "--format", "json"))
    assert shown.pop("recorded_at")[:2] == "20"
    earned = shown["transactions"]
    assert shown == {
        "event_id": "p1", "outcome": "processed", "type": "purchase", "member": "ann",
        "at": "2026-01-10T09:00:00+00:00", "amount": "120.5000", "refund_of": None,
        "coupon": None, "coupon_accepted": None, "points": {"points": 120},
        "transactions": earned,
        "tier_changes": [{"at": "2026-01-10T09:00:00Z", "kind": "upgrade",
                          "from": "bronze", "to": "silver", "value": "120.5000",
                          "reason": "spend 120.5 reached 100", "event_id": "p1",
                          "until": None}],
        "trace": [
            {"rule": "base", "outcome": "matched", "points": 120, "currency": "points"},
            {"rule": "big_basket", "outcome": "condition_false", "points": 0},
        ],
        "refunded_amount": "40.0000", "reversed": {"points": 39},
        "refunds": [{"event_id": "r1", "at": "2026-01-12T09:00:00+00:00",
                     "amount": "40.0000", "points": {"points": -39}}],
    }  # fmt: skip
    refund = as_json(_show(url, "r1", "-f", "json"))
    # a refund shows what it refunded: its amount and the points it took back
    assert (refund["points"], refund["refund_of"], refund["refunded_amount"],
            refund["reversed"], refund["trace"]) == (
        {"points": -39}, "p1", "40.0000", {"points": 39},
        [{"transaction_id": earned[0], "currency": "points", "points": 39,
          "written_off": 0, "debt_added": 0}],
    )  # fmt: skip
    table = _show(url, "p1").stdout
    for text in ("p1: purchase by ann at 2026-01-10T09:00:00+00:00, amount 120.5000",
                 "Decision trace", "big_basket", "condition_false", "Tier changes",
                 "Refunds (40.0000 refunded)"):  # fmt: skip
        assert text in table, text
    # the line names the transaction by its id: "ledger transactions: 3" read as a count
    assert f"ledger transaction id: {earned[0]}" in table.splitlines()
    assert "ledger transactions" not in table
    # an event id the program has not recorded: exit status 1, a clear message
    missing = _show(url, "nope", ok=False)
    assert (missing.returncode, missing.stdout) == (1, "")
    assert "no event 'nope' in program 'shop'" in missing.stderr
    as_json_error = _show(url, "nope", "-f", "json", ok=False)
    assert (as_json_error.returncode, as_json(as_json_error)) == (1, {"error": {
        "code": "unknown_event", "message": "no event 'nope' in program 'shop'"}})  # fmt: skip


def test_event_show_help_has_an_example() -> None:
    assert "Example: fidelite event show " in fidelite("event", "show", "--help").stdout


def test_event_show_names_no_tombstone_after_an_erasure(tmp_path: Path, db: Database) -> None:
    """An erased member's events stay for the books, shown without a member: naming
    the tombstone would link the event id to the anonymised account."""
    url = _shop(tmp_path, db)
    fidelite("member", "erase", "ann", "--yes", "-p", "shop", "--db", url)
    shown = as_json(_show(url, "p1", "--format", "json"))
    assert (shown["event_id"], shown["member"], shown["points"]) == ("p1", None, {"points": 120})
    table = _show(url, "r1").stdout
    assert "r1: refund of p1 by a member erased since at 2026-01-12T09:00:00+00:00" in table
    assert "erased-" not in table + str(shown)


TWO_CURRENCIES = """\
id: air
name: Air
currencies:
  - {id: points, name: Points, value: 0.01}
  - {id: miles, name: Miles, value: 0.02}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
  - {id: air, on: [purchase], currency: miles, per_amount: {points: 2}}
"""


def test_event_show_lists_the_ids_of_an_event_earning_in_two_currencies(
    tmp_path: Path, db: Database
) -> None:
    program = tmp_path / "air.yaml"
    program.write_text(TWO_CURRENCIES, encoding="utf-8")
    (tmp_path / "events.csv").write_text(
        "event_id,type,member,at,amount\np1,purchase,ann,2026-01-10T10:00:00+01:00,10\n",
        encoding="utf-8",
    )
    fidelite("import", "events", tmp_path / "events.csv", "-p", program, db=db.url)
    shown = fidelite("event", "show", "p1", "-p", "air", "--db", db.url)
    ids = as_json(fidelite("event", "show", "p1", "-p", "air", "--db", db.url, "-f", "json"))
    assert len(ids["transactions"]) == 2
    line = f"ledger transaction ids: {ids['transactions'][0]}, {ids['transactions'][1]}"
    assert line in shown.stdout.splitlines()
