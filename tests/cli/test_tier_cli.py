"""``fidelite tier``: the daily review, manual assignments (once per key) and a member's
timeline, as a user runs them (the installed script on a real SQLite file; two runs at
once on PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.cli.support import TIER_EVENTS as EVENTS
from tests.cli.support import TIER_PROGRAM as PROGRAM
from tests.cli.support import as_json, at_once_while_held, fidelite
from tests.conftest import make_database


@pytest.fixture
def shop(tmp_path: Path) -> tuple[Path, str]:
    """A program file and a database where ann is silver since 2026-01-10, bob bronze."""
    program = tmp_path / "shop.yaml"
    program.write_text(PROGRAM, encoding="utf-8")
    db = f"sqlite:///{tmp_path / 'shop.db'}"
    fidelite("db", "upgrade", db=db)
    (tmp_path / "events.csv").write_text(EVENTS, encoding="utf-8")
    fidelite("import", "events", tmp_path / "events.csv", "-p", program, db=db)
    return program, db


def timeline(program: Path, db: str, member: str) -> list[tuple[str, str, str, str]]:
    shown = as_json(fidelite("tier", "show", member, "-p", program, "-f", "json", db=db))
    return [(t["at"][:10], t["kind"], t["from"], t["to"]) for t in shown["timeline"]]


def test_every_tier_and_coupon_command_has_help_with_an_example() -> None:
    for command in (["tier", "review"], ["tier", "assign"], ["tier", "show"],
                    ["coupon", "issue"]):  # fmt: skip
        text = fidelite(*command, "--help").stdout
        assert "Example" in text and f"fidelite {' '.join(command)}" in text, command


def test_tier_review_applies_what_is_due_once(shop: tuple[Path, str]) -> None:
    program, db = shop
    early = fidelite("tier", "review", "-p", program, "--as-of", "2027-01-09", "-f", "json", db=db)
    assert as_json(early)["changes"] == []
    # ann's review is due on 2027-01-10 (Paris): below 100, grace for a month, then bronze
    due = fidelite("tier", "review", "-p", program, "--as-of", "2027-02-11", "-f", "json", db=db)
    assert as_json(due) == {
        "as_of": "2027-02-10T23:00:00+00:00",
        "changes": [
            {"member": "ann", "at": "2027-01-10T09:00:00+00:00", "kind": "grace_started",
             "from": "silver", "to": "silver", "value": "0.0000",
             "reason": "spend 0 below 100; grace until 2027-02-10"},
            {"member": "ann", "at": "2027-02-10T09:00:00+00:00", "kind": "downgrade",
             "from": "silver", "to": "bronze", "value": "0.0000",
             "reason": "spend 0 below 100 at re-qualification"},
        ],
    }  # fmt: skip
    again = fidelite("tier", "review", "-p", program, "--as-of", "2027-02-11", db=db)
    assert "0 tier change(s) for 0 member(s)" in again.stdout
    assert timeline(program, db, "ann") == [
        ("2026-01-10", "upgrade", "bronze", "silver"),
        ("2027-01-10", "grace_started", "silver", "silver"),
        ("2027-02-10", "downgrade", "silver", "bronze"),
    ]


REFUSALS = [
    (["review", "--as-of", "2027-02-10T10:00"], 2,
     "--as-of: '2027-02-10T10:00' needs a UTC offset"),
    (["review", "--as-of", "soon"], 2, "--as-of: 'soon' is not an ISO 8601 date or time"),
    (["review", "--as-of", "0001-01-01"], 2,
     "--as-of: '0001-01-01' is outside the calendar once in UTC"),  # Paris midnight: year 0
    (["assign", "ann", "platinum", "--until", "2099-01-01", "--reason", "x", "-k", "k1"], 1,
     "[unknown_tier] no tier 'platinum' (tiers: bronze, silver, gold)"),
    (["assign", "carol", "gold", "--until", "2099-01-01", "--reason", "x", "-k", "k1"], 1,
     "[unknown_member] no member 'carol' in program 'shop'"),
    (["assign", "ann", "gold", "--until", "2020-01-01", "--reason", "x", "-k", "k1"], 1,
     "[invalid_assignment] until: 2019-12-31T23:00:00+00:00 is not after"),
    (["assign", "ann", "gold", "--until", "2099-01-01", "--reason", "x"], 2,
     "Missing option '--key' / '-k'"),
    (["assign", "ann", "gold", "--until", "2099-01-01", "--reason", "x", "-k", "k" * 201], 1,
     "[invalid_request] key: must be at most 200 characters"),
    (["show", "carol"], 1, "[unknown_member] no member 'carol' in program 'shop'"),
]  # fmt: skip


def test_tier_commands_refuse_bad_input_and_change_nothing(shop: tuple[Path, str]) -> None:
    program, db = shop
    for args, status, message in REFUSALS:
        refused = fidelite("tier", *args, "-p", program, db=db, ok=False)
        assert refused.returncode == status, args
        assert message in " ".join(refused.stderr.split()), args
    assert timeline(program, db, "ann") == [("2026-01-10", "upgrade", "bronze", "silver")]
    assert timeline(program, db, "bob") == []


def test_tier_assign_until_a_date_then_the_review_ends_it(shop: tuple[Path, str]) -> None:
    program, db = shop
    until = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()
    assigned = fidelite("tier", "assign", "bob", "gold", "--until", until, "--reason",
                        "complaint 118", "--key", "c118", "-p", program, "-f", "json",
                        db=db)  # fmt: skip
    body = as_json(assigned)
    assert (body["member"], body["kind"], body["from"], body["to"], body["reason"]) == (
        "bob", "assigned", "bronze", "gold", "complaint 118")  # fmt: skip
    shown = as_json(fidelite("tier", "show", "bob", "-p", program, "-f", "json", db=db))
    ends = datetime.fromisoformat(shown["assigned_until"])
    assert (shown["tier"], shown["review_at"]) == ("gold", None)
    # midnight in the program's zone, whatever its offset that day (+01:00 or +02:00)
    assert ends == datetime.combine(date.fromisoformat(until), time(), ZoneInfo("Europe/Paris"))
    review = fidelite("tier", "review", "-p", program, "--as-of", until, "-f", "json", db=db)
    assert [(c["member"], c["kind"], c["to"]) for c in as_json(review)["changes"]] == [
        ("bob", "assignment_expired", "bronze")
    ]


def test_tier_review_of_a_program_without_tiers_is_an_error(
    shop: tuple[Path, str], tmp_path: Path
) -> None:
    _, db = shop
    plain = tmp_path / "plain.yaml"
    plain.write_text(PROGRAM.split("tiers:")[0], encoding="utf-8")
    refused = fidelite("tier", "review", "-p", plain, "-f", "json", db=db, ok=False)
    assert refused.returncode == 1
    assert as_json(refused)["error"]["code"] == "no_tiers"


def test_tier_review_refuses_a_database_not_migrated(tmp_path: Path) -> None:
    program = tmp_path / "shop.yaml"
    program.write_text(PROGRAM, encoding="utf-8")
    (tmp_path / "new.db").write_bytes(b"")  # an empty SQLite database (a missing file is
    # refused as not found)
    refused = fidelite("tier", "review", "-p", program, db=f"sqlite:///{tmp_path / 'new.db'}",
                       ok=False)  # fmt: skip
    assert refused.returncode == 1 and "run `fidelite db upgrade` first" in refused.stderr


def standing(program: Path, db: str, member: str) -> dict[str, Any]:
    shown: dict[str, Any] = as_json(fidelite("tier", "show", member, "-p", program, "-f", "json",
                                             db=db))  # fmt: skip
    return shown


ASSIGN = ["tier", "assign", "bob", "gold", "--until", "2099-01-01", "--reason", "complaint 118",
          "--key", "c118"]  # fmt: skip


def test_tier_assign_again_with_its_key_changes_nothing_and_prints_the_first_answer(
    shop: tuple[Path, str],
) -> None:
    program, db = shop
    first = as_json(fidelite(*ASSIGN, "-p", program, "-f", "json", db=db))
    # bob's spend when assigned (now): his 20 EUR of 10 January 2026 while in the window
    left = datetime(2026, 1, 10, 9, tzinfo=UTC) + timedelta(days=365)
    value = "20.0000" if datetime.fromisoformat(first["at"]) < left else "0.0000"
    assert first == {
        "member": "bob", "at": first["at"], "kind": "assigned", "from": "bronze",
        "to": "gold", "value": value, "reason": "complaint 118",
        "until": "2098-12-31T23:00:00+00:00", "replayed": False,
    }  # fmt: skip
    after = standing(program, db, "bob")
    assert after["timeline"] == [
        {"at": first["at"], "kind": "assigned", "from": "bronze", "to": "gold",
         "value": value, "reason": "complaint 118", "event_id": None,
         "until": "2098-12-31T23:00:00+00:00"},
    ]  # fmt: skip
    # a script retried after a timeout; the same end written with its offset is the same
    again = fidelite("tier", "assign", "bob", "gold", "--until", "2099-01-01T00:00:00+01:00",
                     "--reason", "complaint 118", "-k", "c118", "-p", program, "-f", "json",
                     db=db)  # fmt: skip
    assert as_json(again) == first | {"replayed": True}
    table = fidelite(*ASSIGN, "-p", program, db=db)
    assert " ".join(table.stdout.split()) == (
        "bob: bronze -> gold until 2098-12-31T23:00:00+00:00 (complaint 118) "
        "(replayed: already done with this key)"
    )
    assert standing(program, db, "bob") == after


def test_tier_assign_with_the_key_of_another_request_is_refused_and_changes_nothing(
    shop: tuple[Path, str],
) -> None:
    program, db = shop
    fidelite(*ASSIGN, "-p", program, db=db)
    bob, ann = standing(program, db, "bob"), standing(program, db, "ann")
    others = [
        ["bob", "silver", "--until", "2099-01-01", "--reason", "complaint 118"],
        ["bob", "gold", "--until", "2098-01-01", "--reason", "complaint 118"],
        ["bob", "gold", "--until", "2099-01-01", "--reason", "complaint 119"],
        ["ann", "gold", "--until", "2099-01-01", "--reason", "complaint 118"],
    ]
    for args in others:
        refused = fidelite("tier", "assign", *args, "--key", "c118", "-p", program, "-f", "json",
                           db=db, ok=False)  # fmt: skip
        assert refused.returncode == 1, args
        assert as_json(refused) == {"error": {
            "code": "idempotency_conflict", "field": "key",
            "message": "key 'c118' was already used for a different request"}}, args  # fmt: skip
    assert (standing(program, db, "bob"), standing(program, db, "ann")) == (bob, ann)


def test_tier_assign_refused_leaves_its_key_to_the_corrected_request(
    shop: tuple[Path, str],
) -> None:
    program, db = shop
    wrong = ["tier", "assign", "bob", "platinum", "--until", "2099-01-01", "--reason",
             "complaint 118", "--key", "c118"]  # fmt: skip
    refused = fidelite(*wrong, "-p", program, db=db, ok=False)
    assert refused.returncode == 1 and "[unknown_tier]" in refused.stderr
    done = as_json(fidelite(*ASSIGN, "-p", program, "-f", "json", db=db))
    assert (done["to"], done["replayed"]) == ("gold", False)
    assert timeline(program, db, "bob") == [(done["at"][:10], "assigned", "bronze", "gold")]


@pytest.mark.postgres
def test_tier_assign_run_twice_at_once_with_one_key_assigns_once(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Both runs wait: one for bob, whom another session holds, after claiming the key;
    the other for that claim. The second must answer with the first's assignment."""
    database = make_database("postgresql", request, tmp_path)
    program = tmp_path / "shop.yaml"
    program.write_text(PROGRAM, encoding="utf-8")
    (tmp_path / "events.csv").write_text(EVENTS, encoding="utf-8")
    fidelite("import", "events", tmp_path / "events.csv", "-p", program, db=database.url)
    run = [*ASSIGN, "-p", program]
    answers = at_once_while_held(database, "bob", run, run)
    database.dispose()
    assert [a["replayed"] for a in answers] == [False, True]
    assert answers[1] == answers[0] | {"replayed": True}
    assert timeline(program, database.url, "bob") == [
        (answers[0]["at"][:10], "assigned", "bronze", "gold")
    ]
