"""Program KPIs: when members joined, and which currency is reported by default.

Members imported (``fidelite import members``, ``POST /v1/members``) carry the
enrolment's ``joined_at`` (default: the time of enrolment), which can come after
purchases imported from their history. A member joins at the earlier of that date and
their first activity, so active and redeeming members never exceed the total. Without
``currency`` the program's first declared currency is reported, as the program format
makes it the default. Real databases (SQLite file and PostgreSQL), real imports,
hand-counted figures.
"""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from fidelite.analytics.errors import InputError
from fidelite.analytics.kpis import program_kpis
from fidelite.ledger import Ledger
from fidelite.privacy import erase_member
from fidelite.processing import EventProcessor
from fidelite.processing.importer import import_events, import_members
from fidelite.program import parse_program
from fidelite.store import Database

PROGRAM = """\
id: shop
name: Shop
time_zone: UTC
currencies:
  - {id: points, name: Points, value: 0.01}
  - {id: stars, name: Stars, value: 0}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
  - {id: star, on: [purchase], fixed: 2, currency: stars}
rewards:
  - {id: cup, name: Cup, kind: free_product, sku: CUP, cost: 10}
"""
IMPORTED_AT = datetime(2024, 3, 10, 12, 0, tzinfo=UTC)  # the members file's "now"
MEMBERS = [
    ["ann", ""],  # joined_at = the import (Mar 10), but bought on Jan 5
    ["bob", ""],  # the same, bought on Jan 20; erased later
    ["cid", "2024-02-20T09:00:00+00:00"],  # no event: joined when the file says
    ["dan", ""],  # no event: joined at the import (Mar 10)
]
EVENTS = [
    ["e1", "purchase", "ann", "2024-01-05T10:00:00+00:00", "20"],
    ["e2", "purchase", "bob", "2024-01-20T10:00:00+00:00", "30"],
    ["e3", "purchase", "eve", "2024-02-03T10:00:00+00:00", "5"],  # enrolled by this event
    ["e4", "purchase", "ann", "2024-03-15T10:00:00+00:00", "10"],
]
KEYS = (
    "members_new",
    "members_total",
    "active_members",
    "active_member_rate",
    "points_earned",
    "redemptions",
    "redeeming_members",
    "redemption_rate",
    "member_spend",
)
# Joined: ann Jan 5, bob Jan 20 (first purchases); eve Feb 3 (first event); cid Feb 20
# (her joined_at); dan Mar 10 (the import). ann redeems a cup (10 points) on Jan 25.
EXPECTED = {
    "2024-01": (2, 2, 2, 100.0, 50, 1, 1, 50.0, 50.0),
    "2024-02": (2, 4, 1, 25.0, 5, 0, 0, 0.0, 5.0),
    "2024-03": (1, 5, 1, 20.0, 10, 0, 0, 0.0, 10.0),
}


def _csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _imported(db: Database, tmp_path: Path) -> EventProcessor:
    """The members file imported first, then the purchase history, then ann's cup."""
    p = EventProcessor(db, parse_program(PROGRAM))
    members = _csv(tmp_path / "crm.csv", ["member", "joined_at"], MEMBERS)
    assert import_members(p, members, now=IMPORTED_AT).rejected == []
    events = _csv(tmp_path / "ev.csv", ["event_id", "type", "member", "at", "amount"], EVENTS)
    assert import_events(p, events).summary()["processed"] == 4
    p.redeem("ann", "cup", key="r1", at=datetime(2024, 1, 25, 10, 0, tzinfo=UTC))
    return p


def _table(rows: list[dict[str, Any]], keys: tuple[str, ...] = KEYS) -> dict[str, tuple[Any, ...]]:
    return {r["period"]: tuple(r[k] for k in keys) for r in rows}


def test_members_join_at_their_first_purchase_when_imported_after_it(
    db: Database, tmp_path: Path
) -> None:
    _imported(db, tmp_path)
    rows = program_kpis(db.url, "shop", currency="points").rows
    assert _table(rows) == EXPECTED
    for r in rows:
        assert r["active_members"] <= r["members_total"]
        assert r["redeeming_members"] <= r["members_total"]


def test_an_erased_member_keeps_counting_from_the_same_moment(db: Database, tmp_path: Path) -> None:
    _imported(db, tmp_path)
    with db.write() as conn:
        erase_member(conn, "shop", "bob", at=datetime(2024, 3, 20, tzinfo=UTC))
    assert _table(program_kpis(db.url, "shop", currency="points").rows) == EXPECTED


def test_the_first_declared_currency_is_the_default(db: Database, tmp_path: Path) -> None:
    _imported(db, tmp_path)
    default = program_kpis(db.url, "shop")
    assert default.parameters["currency"] == "points"
    assert _table(default.rows) == EXPECTED
    stars = program_kpis(db.url, "shop", currency="stars")
    assert stars.parameters["currency"] == "stars"
    assert _table(stars.rows, ("points_earned", "members_total")) == {
        "2024-01": (4, 2),
        "2024-02": (2, 4),
        "2024-03": (2, 5),
    }


def test_the_default_follows_the_declared_order_not_the_alphabet(db: Database) -> None:
    ledger = Ledger(db, clock=lambda: datetime(2024, 1, 2, tzinfo=UTC))
    ledger.open_program("club", ["stars", "points"])
    ledger.create_member("club", "ann")
    ledger.earn("club", "ann", "stars", 7, key="s", at="2024-01-05T10:00:00+00:00")
    ledger.earn("club", "ann", "points", 40, key="p", at="2024-01-05T10:00:00+00:00")
    # opened again with a currency declared first: it comes after those opened before
    ledger.open_program("club", ["miles", "stars", "points"])
    result = program_kpis(db.url, "club")
    assert result.parameters["currency"] == "stars"
    assert [(r["period"], r["points_earned"]) for r in result.rows] == [("2024-01", 7)]
    with pytest.raises(InputError) as caught:
        program_kpis(db.url, "club", currency="euros")
    assert caught.value.reason == (
        "program 'club' has no currency 'euros'; its currencies: stars, points, miles"
    )


def test_cli_on_the_example_program_counts_imported_members(
    sqlite_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The example program (points, then stars); members imported today, their purchases
    in October 2026: they joined in October, and points are reported without --currency."""
    import shutil

    from fidelite.cli.main import _register, app

    _register()
    monkeypatch.chdir(tmp_path)
    shutil.copy(sqlite_template, tmp_path / "k.db")
    (tmp_path / "crm.csv").write_text("member\nann\nbob\n", encoding="utf-8")
    (tmp_path / "ev.csv").write_text(
        "event_id,type,member,at,amount\n"
        "e1,purchase,ann,2026-10-05T10:00:00+02:00,20\n"
        "e2,purchase,bob,2026-10-06T10:00:00+02:00,30\n",
        encoding="utf-8",
    )
    runner = CliRunner()
    for args in (
        ["program", "init", "shop.yaml"],
        ["import", "members", "crm.csv", "--program", "shop.yaml", "--db", "k.db"],
        ["import", "events", "ev.csv", "--program", "shop.yaml", "--db", "k.db"],
    ):
        done = runner.invoke(app, args)
        assert done.exit_code == 0, done.output
    done = runner.invoke(app, ["metrics", "program-kpis", "--db", "k.db", "-f", "json"])
    assert done.exit_code == 0, done.output
    out = json.loads(done.stdout)
    assert out["parameters"]["currency"] == "points"
    keys = ("members_new", "members_total", "active_members", "active_member_rate")
    assert _table(out["rows"], (*keys, "points_earned")) == {"2026-10": (2, 2, 2, 100.0, 50)}
    refused = runner.invoke(
        app, ["metrics", "program-kpis", "--db", "k.db", "--currency", "miles", "-f", "json"]
    )
    assert refused.exit_code == 1
    assert json.loads(refused.stdout)["error"]["message"].endswith(
        "program 'cafe_club' has no currency 'miles'; its currencies: points, stars"
    )
