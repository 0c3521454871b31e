"""Commands that write to the program database and are safe to run again as they are (a
daily job, an import, an enrolment, a keyed ledger move): run twice, the second run
changes nothing in the database (every row of every table, on a real SQLite file).

Commands that would change something again take ``--key``: ``ledger
earn|spend|adjust|reverse|release``, ``tier assign``, ``coupon issue`` and ``webhooks
add``; run again with the same key, they change nothing either.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from fidelite.cli.main import _register, app
from tests.cli.support import TIER_EVENTS, TIER_PROGRAM

_register()
runner = CliRunner()

POLICIES = """\
expiry: {mode: after_earning, months: 12}
pending: {days: 14, event_types: [purchase]}
coupons:
  - {id: gift, name: Gift, prefix: GIFT}
"""
PROGRAM = TIER_PROGRAM + POLICIES
MEMBERS = "member,segments\nann,vip\nbob,\n"
EVENTS = TIER_EVENTS
MORE_EVENTS = EVENTS + "p3,purchase,bob,2026-02-10T10:00:00+01:00,35\n"
MORE_MEMBERS = MEMBERS + "cid,\n"


def cli(db: Path, *args: str | Path) -> Any:
    """Run ``fidelite args --format json`` on ``db``; it must succeed."""
    result = runner.invoke(app, [*map(str, args), "-f", "json"],
                           env={"FIDELITE_DB": f"sqlite:///{db}"})  # fmt: skip
    assert result.exit_code == 0, (args, result.output)
    return json.loads(result.stdout)


def everything(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table (the WAL is read too: what was committed)."""
    with closing(sqlite3.connect(db)) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {name: sorted(conn.execute(f'SELECT * FROM "{name}"').fetchall(), key=repr)
                for name in sorted(names)}  # fmt: skip


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A database where ann and bob were imported with their purchases (pending for 14
    days), ann was given 100 points by an operator (expiring on 5 May 2026) and 40
    more held until 1 February, and an API key exists; the files the commands read; the
    ids they need."""
    folder = tmp_path_factory.mktemp("rerun")
    db = folder / "shop.db"
    for name, text in {"shop.yaml": PROGRAM, "members.csv": MEMBERS, "events.csv": EVENTS,
                       "more_events.csv": MORE_EVENTS,
                       "more_members.csv": MORE_MEMBERS}.items():  # fmt: skip
        (folder / name).write_text(text, encoding="utf-8")
    cli(db, "db", "upgrade")
    cli(db, "import", "members", folder / "members.csv", "-p", folder / "shop.yaml")
    cli(db, "import", "events", folder / "events.csv", "-p", folder / "shop.yaml")
    given = cli(db, "ledger", "earn", "ann", "100", "-k", "gift-1", "-p", "shop",
                "--at", "2026-01-05T10:00:00+00:00",
                "--expires", "2026-05-05T00:00:00+00:00")  # fmt: skip
    held = cli(db, "ledger", "earn", "ann", "40", "-k", "held-1", "-p", "shop",
               "--at", "2026-01-06T10:00:00+00:00",
               "--pending-until", "2026-02-01T00:00:00+00:00")  # fmt: skip
    key = cli(db, "apikey", "create", "-p", "shop", "--role", "admin")
    with closing(sqlite3.connect(db)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return {"folder": folder, "db": db, "given": str(given["transaction_id"]),
            "held": str(held["transaction_id"]), "key": key["key_id"]}  # fmt: skip


def _args(base: dict[str, Any], case: list[str]) -> list[str | Path]:
    """``case`` with {name} placeholders filled from ``base``, files from its folder."""
    return [base["folder"] / arg[1:] if arg.startswith("@") else arg.format(**base)
            for arg in case]  # fmt: skip


AT = "2026-03-01T10:00:00+00:00"
CASES: dict[str, tuple[list[str], bool]] = {  # command, whether its first run changes something
    "db upgrade": (["db", "upgrade"], False),
    "ledger open": (["ledger", "open", "shop", "-c", "points", "-c", "miles"], True),
    "member add": (["member", "add", "dan", "-p", "shop"], True),
    "member add --key": (["member", "add", "eve", "-p", "shop", "--key", "crm-eve"], True),
    "member erase": (["member", "erase", "bob", "-p", "shop", "--yes"], True),
    "import members": (["import", "members", "@more_members.csv", "-p", "@shop.yaml"], True),
    "import events": (["import", "events", "@more_events.csv", "-p", "@shop.yaml"], True),
    "tier review": (["tier", "review", "-p", "@shop.yaml", "--as-of", "2027-02-11"], True),
    "ledger release-due": (["ledger", "release-due", "-p", "shop", "--as-of", AT], True),
    "ledger expire": (["ledger", "expire", "--as-of", "2026-06-01T00:00:00+00:00",
                       "--program-file", "@shop.yaml"], True),
    "ledger earn": (["ledger", "earn", "bob", "25", "-k", "e-1", "-p", "shop", "--at", AT], True),
    "ledger spend": (["ledger", "spend", "ann", "30", "-k", "s-1", "-p", "shop", "--at", AT],
                     True),
    "ledger adjust": (["ledger", "adjust", "ann", "20", "--reason", "outage", "--actor", "ops",
                       "-k", "a-1", "-p", "shop", "--at", AT], True),
    "ledger reverse": (["ledger", "reverse", "{given}", "--points", "10", "-k", "r-1", "-p",
                        "shop", "--at", AT], True),
    "ledger release": (["ledger", "release", "{held}", "-k", "rel-1", "-p", "shop", "--at",
                        "2026-01-07T10:00:00+00:00"], True),
    "apikey revoke": (["apikey", "revoke", "{key}"], True),
    "tier assign --key": (["tier", "assign", "bob", "silver", "--until", "2099-01-01",
                           "--reason", "complaint 118", "-k", "c-1", "-p", "@shop.yaml"], True),
    "coupon issue --key": (["coupon", "issue", "gift", "-n", "2", "--member", "ann", "-o",
                            "{tmp}/codes.csv", "-k", "c-2", "-p", "@shop.yaml"], True),
    "webhooks add --key": (["webhooks", "add", "https://93.184.216.34/hooks", "-k", "w-1",
                            "-p", "shop"], True),
}  # fmt: skip


@pytest.mark.parametrize("name", CASES)
def test_rerunnable_command_changes_nothing_the_second_time(
    name: str, base: dict[str, Any], tmp_path: Path
) -> None:
    case, changes = CASES[name]
    db = tmp_path / "shop.db"
    shutil.copy(base["db"], db)
    before = everything(db)
    args = _args(base | {"tmp": tmp_path}, case)
    cli(db, *args)
    once = everything(db)
    assert (once != before) is changes
    cli(db, *args)
    assert everything(db) == once


def test_apikey_create_is_the_documented_exception(base: dict[str, Any], tmp_path: Path) -> None:
    """`apikey create` has no --key: each run makes a new key, as README.md says of it."""
    db = tmp_path / "shop.db"
    shutil.copy(base["db"], db)
    first = cli(db, "apikey", "create", "-p", "shop", "--role", "integration")
    second = cli(db, "apikey", "create", "-p", "shop", "--role", "integration")
    assert first["key_id"] != second["key_id"]
    listed = {k["key_id"] for k in cli(db, "apikey", "list", "-p", "shop")}
    assert listed == {base["key"], first["key_id"], second["key_id"]}
    readme = (Path(__file__).parents[2] / "README.md").read_text().split()
    assert "exception is `apikey create`: each run makes a new key" in " ".join(readme)
