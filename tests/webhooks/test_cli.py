"""``fidelite webhooks`` and ``fidelite member export|erase`` on a real SQLite file."""

from __future__ import annotations

import json
import re
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from fidelite.cli.main import _register, app
from fidelite.ledger import check_invariants
from fidelite.program import load_program
from fidelite.store import Database
from fidelite.webhooks import announce_expiring_points, verify
from tests.cli.support import fidelite
from tests.webhooks.conftest import Receiver
from tests.webhooks.support import PROGRAM, outbox_rows, processor, purchase

_register()
runner = CliRunner()


@pytest.fixture
def dbfile(tmp_path: Path) -> Path:
    path = tmp_path / "shop.db"
    db = Database(f"sqlite:///{path}")
    db.upgrade()
    processor(db)
    db.dispose()
    return path


def cli(dbfile: Path, *args: str, code: int = 0) -> Any:
    result = runner.invoke(app, [*args, "--db", f"sqlite:///{dbfile}", "--format", "json"])
    assert result.exit_code == code, result.output
    return json.loads(result.stdout)


def test_subscribe_deliver_log_replay_remove(dbfile: Path, receiver: Receiver) -> None:
    made = cli(dbfile, "webhooks", "add", receiver.url, "-e", "points.earned", "--allow-private",
               "--program", "shop", "--key", "crm-1")  # fmt: skip
    assert made["event_types"] == ["points.earned"] and made["secret"].startswith("whsec_")
    listed = cli(dbfile, "webhooks", "list", "--program", "shop")
    assert [(s["id"], "secret" in s) for s in listed] == [(made["id"], False)]
    db = Database(f"sqlite:///{dbfile}")
    processor(db).process(purchase("p1", "ann", "42.00"))
    receiver.script.append(500)
    report = cli(dbfile, "webhooks", "deliver", "--allow-private")
    assert report == {
        "claimed": 1,
        "delivered": 0,
        "failed": 1,
        "dead": 0,
        "lost": 0,
        "released": 0,
        "postponed": 0,
    }
    (entry,) = cli(dbfile, "webhooks", "log", "--program", "shop", "--state", "failed")
    assert (entry["event_type"], entry["last_status"]) == ("points.earned", 500)
    cli(dbfile, "webhooks", "replay", str(entry["id"]), "--program", "shop")
    assert cli(dbfile, "webhooks", "deliver", "--allow-private")["delivered"] == 1
    tries = cli(dbfile, "webhooks", "log", "--program", "shop", "--delivery", str(entry["id"]))
    assert [(t["number"], t["status"]) for t in tries] == [(1, 500), (2, 200)]
    last = receiver.requests[-1]
    assert verify(made["secret"], last.body, last.headers["Fidelite-Signature"]) > 0
    assert json.loads(last.body)["data"]["points"] == 42
    removed = cli(dbfile, "webhooks", "remove", str(made["id"]), "--program", "shop")
    assert removed["active"] is False
    db.dispose()


def test_refusals_name_the_field_and_exit_non_zero(dbfile: Path) -> None:
    error = cli(dbfile, "webhooks", "add", "http://169.254.169.254/", "--program", "shop",
                "-k", "k1", code=1)  # fmt: skip
    assert error["error"]["code"] == "unsafe_url" and error["error"]["field"] == "url"
    assert "cloud metadata" in error["error"]["message"]
    error = cli(dbfile, "webhooks", "add", "https://93.184.216.34/", "-e", "nope", "-k", "k1",
                code=1)  # fmt: skip
    assert error["error"]["field"] == "event_types"
    error = cli(dbfile, "webhooks", "replay", "77", "--program", "shop", code=1)
    assert error["error"]["code"] == "unknown_delivery"
    assert cli(dbfile, "webhooks", "list", "--program", "shop") == []


def test_add_again_with_its_key_subscribes_once(dbfile: Path) -> None:
    """A retry after a lost answer must not subscribe the URL twice (every event would be
    delivered twice); the same key for another subscription is refused."""
    add = ("webhooks", "add", "https://93.184.216.34/hooks", "-e", "points.earned",
           "--program", "shop", "-k", "crm-1")  # fmt: skip
    first = cli(dbfile, *add)
    again = cli(dbfile, *add)
    assert first["replayed"] is False and again == first | {"replayed": True}
    listed = cli(dbfile, "webhooks", "list", "--program", "shop")
    assert [s["id"] for s in listed] == [first["id"]]
    other = cli(dbfile, *add[:2], "https://93.184.216.34/other", *add[3:], code=1)
    assert other["error"]["code"] == "idempotency_conflict"
    assert [s["id"] for s in cli(dbfile, "webhooks", "list", "--program", "shop")] == [first["id"]]
    refused = cli(dbfile, "webhooks", "add", "http://169.254.169.254/", "--program", "shop",
                  "-k", "crm-2", code=1)  # fmt: skip
    assert refused["error"]["code"] == "unsafe_url"
    fixed = cli(
        dbfile, "webhooks", "add", "https://93.184.216.34/two", "--program", "shop", "-k", "crm-2"
    )  # a refusal kept nothing: the corrected retry may use the key
    assert fixed["replayed"] is False and fixed["id"] != first["id"]
    with sqlite3.connect(dbfile) as conn:  # the secret stays in its subscription only
        kept = [row[0] for row in conn.execute("SELECT result FROM idempotency_records")]
    assert len(kept) == 2 and not any(made["secret"] in r for made in (first, fixed) for r in kept)
    cli(dbfile, "webhooks", "remove", str(first["id"]), "--program", "shop")
    removed = cli(dbfile, *add, code=1)  # a retry must not pretend the URL is subscribed
    assert removed["error"] == {
        "code": "subscription_removed", "field": "key",
        "message": f"key 'crm-1' added subscription {first['id']}, removed since: nothing is "
        "subscribed; use a new key to subscribe again",
    }  # fmt: skip


def test_member_export_and_erase(dbfile: Path, tmp_path: Path) -> None:
    db = Database(f"sqlite:///{dbfile}")
    processor(db).process(purchase("p1", "CARD-9", "15.00"))
    out = tmp_path / "card.json"
    result = runner.invoke(app, ["member", "export", "CARD-9", "--program", "shop", "-o", str(out),
                                 "--db", f"sqlite:///{dbfile}"])  # fmt: skip
    assert result.exit_code == 0, result.output
    document = json.loads(out.read_text())
    assert (document["member"]["ref"], document["balances"][0]["account_balance"]) == ("CARD-9", 15)
    erased = cli(dbfile, "member", "erase", "CARD-9", "--program", "shop", "--yes")
    assert (erased["tombstone"], erased["replayed"]) == (
        f"erased-{document['member']['id']}",
        False,
    )
    assert cli(dbfile, "member", "erase", "CARD-9", "--program", "shop", "--yes")["replayed"]
    error = cli(dbfile, "member", "export", "CARD-9", "--program", "shop", code=1)
    assert error["error"]["code"] == "unknown_member"
    assert check_invariants(db, "shop") == []
    db.dispose()


@pytest.mark.parametrize(
    "command",
    [
        ["webhooks", c]
        for c in ("add", "list", "remove", "deliver", "log", "replay", "expiring", "prune")
    ]
    + [["member", "export"], ["member", "erase"]],
)
def test_every_command_has_help_with_an_example(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0 and "Example: fidelite " + command[0] in result.output


def test_expiring_follows_the_program_files_warn_days(dbfile: Path, tmp_path: Path) -> None:
    program = tmp_path / "program.yaml"
    program.write_text(PROGRAM + "expiry: {mode: inactivity, months: 1, warn_days: 10}\n")
    db = Database(f"sqlite:///{dbfile}")
    processor(db).process(purchase("p1", "ann", "42.00", at="2026-11-02T10:00:00+00:00"))
    db.dispose()
    job = ["webhooks", "expiring", "--program-file", str(program)]
    # ann's points lapse on 2 December 10:00: 11 days after 21 November 10:00
    assert cli(dbfile, *job, "--as-of", "2026-11-21T10:00:00Z") == {
        "announced": 0, "days": 10, "program": "shop", "expiring": [],
    }  # fmt: skip
    assert cli(dbfile, *job, "--as-of", "2026-11-21T10:00:00Z", "--days", "11") == {
        "announced": 1, "days": 11, "program": "shop", "expiring": [
            {"member": "ann", "currency": "points", "points": 42,
             "expires_at": "2026-12-02T10:00:00+00:00", "cause": "inactivity", "lot_id": None,
             "last_activity": "2026-11-02T10:00:00+00:00"},
        ],
    }  # fmt: skip
    assert cli(dbfile, *job, "--as-of", "2026-11-22T10:00:00Z")["announced"] == 0  # once
    off = tmp_path / "off.yaml"
    off.write_text(PROGRAM + "expiry: {mode: inactivity, months: 1, warn_days: 0}\n")
    quiet = cli(dbfile, "webhooks", "expiring", "--program-file", str(off), "--as-of", "2026-11-30")
    assert quiet == {"announced": 0, "days": 0, "program": "shop", "expiring": []}
    error = cli(dbfile, *job, "--program", "cafe", code=1)["error"]
    assert (error["code"], error["field"]) == ("program_mismatch", "program")


def test_expiring_lists_the_points_it_announces_with_their_count(dbfile: Path) -> None:
    """Not only how many events were written: whose points, how many, and when they
    expire, in JSON and in the table; a re-run writes and lists nothing again."""
    db = Database(f"sqlite:///{dbfile}")
    ledger = processor(db).ledger
    for member in ("ann", "bob"):
        ledger.create_member("shop", member)
    for key, member, points, expires in (
        ("e1", "ann", 7, "2026-11-25T12:00:00+00:00"),
        ("e2", "bob", 3, "2026-11-28T08:00:00+00:00"),
        ("e3", "ann", 9, "2027-06-01T00:00:00+00:00"),
    ):
        ledger.earn("shop", member, "points", points, key=key, at="2026-11-01T00:00:00+00:00",
                    expires_at=expires)  # fmt: skip
    with db.read() as conn:
        lots = dict(conn.execute(text("SELECT points, id FROM lots")).all())
    job = ["webhooks", "expiring", "--program", "shop", "--days", "30", "--as-of"]
    assert cli(dbfile, *job, "2026-11-20T00:00:00Z") == {  # not e3: after the window
        "announced": 2, "days": 30, "program": "shop", "expiring": [
            {"member": "ann", "currency": "points", "points": 7,
             "expires_at": "2026-11-25T12:00:00+00:00", "cause": "date", "lot_id": lots[7],
             "last_activity": None},
            {"member": "bob", "currency": "points", "points": 3,
             "expires_at": "2026-11-28T08:00:00+00:00", "cause": "date", "lot_id": lots[3],
             "last_activity": None},
        ],
    }  # fmt: skip
    ledger.earn("shop", "bob", "points", 5, key="e4", at="2026-11-01T00:00:00+00:00",
                expires_at="2026-12-01T00:00:00+00:00")  # fmt: skip
    db.dispose()
    lines = fidelite(*job, "2026-11-21T00:00:00Z", db=f"sqlite:///{dbfile}").stdout.splitlines()
    assert lines[0].startswith("1 new points.expiring events (within 30 days;")
    (row,) = [line for line in lines if "│ bob " in line]
    assert [cell.strip() for cell in row.split("│")[1:6]] == [
        "bob", "points", "5", "2026-12-01T00:00:00+00:00", "date"
    ]  # fmt: skip
    again = cli(dbfile, *job, "2026-11-21T00:00:00Z")
    assert (again["announced"], again["expiring"]) == (0, [])


def test_expiring_at_the_calendars_ends(dbfile: Path, tmp_path: Path) -> None:
    """A window reaching past 9999 stops at the calendar's end (the announcement itself:
    the command refuses a date later than now); one starting in year 1 has nothing
    before it; a time whose UTC is outside the calendar is a usage error."""
    program = tmp_path / "program.yaml"
    program.write_text(PROGRAM + "expiry: {mode: inactivity, months: 1, warn_days: 10}\n")
    db = Database(f"sqlite:///{dbfile}")
    shop = processor(db)
    shop.process(purchase("p1", "ann", "42.00", at="2026-11-02T10:00:00+00:00"))
    shop.ledger.earn("shop", "ann", "points", 5, key="late", at="9999-12-20T00:00:00+00:00",
                     expires_at="9999-12-31T12:00:00+00:00")  # fmt: skip
    job = ["webhooks", "expiring", "--program-file", str(program), "--as-of"]
    assert cli(dbfile, *job, "0001-01-01")["announced"] == 0
    with db.read() as conn:
        outbox = conn.execute(text("SELECT COUNT(*) FROM outbox")).scalar_one()
    assert cli(dbfile, *job, "9999-12-25", code=2)["error"]["field"] == "as_of"  # later than now
    definition = load_program(program)
    late = announce_expiring_points(db, "shop", datetime(9999, 12, 25, tzinfo=UTC), days=10,
                                    policy=definition.expiry, zone=definition.zone)  # fmt: skip
    assert [payload["points"] for payload in late] == [5]  # the lot of 5 points
    outbox += 1
    for value in ("9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00"):
        error = cli(dbfile, *job, value, code=2)["error"]
        assert error == {
            "code": "usage",
            "message": f"--as-of: {value!r} is outside the calendar once in UTC",
        }
    with db.read() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM outbox")).scalar_one() == outbox
    db.dispose()


PROGRAM_SCOPED = ("add", "list", "log", "replay", "remove")
"""The webhooks commands that work on one program (--program, default 'default')."""


@pytest.mark.parametrize("command", PROGRAM_SCOPED)
def test_examples_of_program_scoped_commands_name_the_program(command: str) -> None:
    """Without --program, `log` lists nothing of program shop and `replay`/`remove` answer
    unknown_delivery/unknown_subscription: an example must pass it to work as shown."""
    result = runner.invoke(app, ["webhooks", command, "--help"], env={"COLUMNS": "200"})
    examples = [line for line in result.output.splitlines() if "Example: fidelite" in line]
    assert examples and all("--program" in line for line in examples), examples
    doc = (Path(__file__).parents[2] / "docs" / "webhooks.md").read_text()
    documented = re.findall(rf"^fidelite webhooks {command} .*$", doc, flags=re.M)
    assert all("--program" in line for line in documented), documented


def test_the_documented_program_scoped_commands_work_for_the_documented_program(
    dbfile: Path, receiver: Receiver
) -> None:
    """docs/webhooks.md's sequence for program shop: log, replay and remove find shop's
    delivery and subscription (ids of this database in place of the documented ones)."""
    made = cli(dbfile, "webhooks", "add", receiver.url, "--allow-private", "--program", "shop",
               "-k", "crm-1")  # fmt: skip
    db = Database(f"sqlite:///{dbfile}")
    processor(db).process(purchase("p1", "ann", "42.00"))
    receiver.script.extend([400] * 10)  # about each event: none held back
    assert cli(dbfile, "webhooks", "deliver")["failed"] == 2
    logged = cli(dbfile, "webhooks", "log", "--state", "failed", "--program", "shop")
    assert len(logged) == 2
    delivery = str(logged[0]["id"])
    tries = cli(dbfile, "webhooks", "log", "--delivery", delivery, "--program", "shop")
    assert [(t["number"], t["status"]) for t in tries] == [(1, 400)]
    (replayed,) = cli(dbfile, "webhooks", "replay", delivery, "--program", "shop")
    assert replayed["id"] == logged[0]["id"]
    removed = cli(dbfile, "webhooks", "remove", str(made["id"]), "--program", "shop")
    assert removed["active"] is False
    db.dispose()


def test_member_created_is_written_by_every_way_of_enrolling(dbfile: Path, tmp_path: Path) -> None:
    """docs/webhooks.md's member.created row: an event, `import members`, POST /v1/members
    (the processor's enrol) and `member add` with the program file; once per member."""
    program = tmp_path / "program.yaml"
    program.write_text(PROGRAM)
    db = Database(f"sqlite:///{dbfile}")
    processor(db).process(purchase("p1", "ann", "10.00"))
    members = tmp_path / "members.csv"
    members.write_text(
        "member,joined_at\nbob,2026-01-02T00:00:00+00:00\nann,2026-01-01T00:00:00Z\n"
    )
    cli(dbfile, "import", "members", str(members), "--program", str(program))
    assert processor(db).enrol("cy", at=datetime(2026, 1, 3, tzinfo=UTC)) is True
    cli(dbfile, "member", "add", "dee", "--program", str(program))
    cli(dbfile, "member", "add", "dee", "--program", str(program))  # enrolled already
    assert processor(db).enrol("cy", at=datetime(2026, 1, 4, tzinfo=UTC)) is False
    created = [r["member_ref"] for r in outbox_rows(db) if r["event_type"] == "member.created"]
    assert created == ["ann", "bob", "cy", "dee"]
    db.dispose()
    doc = (Path(__file__).parents[2] / "docs" / "webhooks.md").read_text()
    (row,) = [line for line in doc.splitlines() if line.startswith("| `member.created` |")]
    for way in ("first event", "fidelite import members", "POST /v1/members", "member add"):
        assert way in row
