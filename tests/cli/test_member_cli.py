"""``fidelite member add`` and ``show`` with the program file, as a user runs them:
the member is enrolled as the API enrols one, and shown as the API shows it."""

from __future__ import annotations

from pathlib import Path

import pytest

from fidelite.processing import EventProcessor
from fidelite.program import load_program
from fidelite.store import Database
from tests.cli.support import TIER_PROGRAM, as_json, fidelite

CRM = """\
member,joined_at,segments,attributes,birth_date
CARD-0002,2026-02-10T23:30:00Z,vip,"{""city"": ""Lyon""}",1990-04-01
"""


@pytest.fixture
def shop(tmp_path: Path) -> tuple[Path, str]:
    """A program in Paris and a database where CARD-0002 joined on 2026-02-10 UTC,
    late in the evening: 2026-02-11 in Paris."""
    program = tmp_path / "shop.yaml"
    program.write_text(TIER_PROGRAM, encoding="utf-8")
    db = f"sqlite:///{tmp_path / 'shop.db'}"
    fidelite("db", "upgrade", db=db)
    (tmp_path / "crm.csv").write_text(CRM, encoding="utf-8")
    fidelite("import", "members", tmp_path / "crm.csv", "-p", program, db=db)
    return program, db


def _profiles(program: Path, db: str) -> list[tuple[str, str | None, int]]:
    """Every member as the API reads them (``GET /v1/members``): ref, tier, purchases."""
    database = Database(db)
    try:
        processor = EventProcessor(database, load_program(program))
        return [(p["member_ref"], p["tier"], p["purchases"])
                for p in processor.list_members(after=None, limit=10)]  # fmt: skip
    finally:
        database.dispose()


def test_member_add_with_the_program_file_enrols_the_member_in_the_program(
    shop: tuple[Path, str],
) -> None:
    program, db = shop
    added = fidelite("member", "add", "CLI-1", "--program", program, db=db)
    assert added.stdout == "member CLI-1 enrolled in program shop (id 2)\n"
    assert _profiles(program, db) == [("CARD-0002", "bronze", 0), ("CLI-1", "bronze", 0)]
    again = fidelite("member", "add", "CLI-1", "--program", program, db=db)
    assert again.stdout == "member CLI-1 already enrolled in program shop (id 2)\n"
    assert _profiles(program, db) == [("CARD-0002", "bronze", 0), ("CLI-1", "bronze", 0)]


def test_member_add_with_the_file_gives_a_ledger_only_member_its_program_state(
    shop: tuple[Path, str],
) -> None:
    program, db = shop
    fidelite("member", "add", "OLD", "--program", "shop", db=db)
    assert _profiles(program, db) == [("CARD-0002", "bronze", 0)]
    shown = fidelite("member", "show", "OLD", "-p", program, db=db).stdout
    assert shown == (
        "OLD: active (id 2)\n"
        "  no program state yet: tier and join date come with its first event (or "
        "`fidelite member add` with the program file)\n"
    )
    fidelite("member", "add", "OLD", "--program", program, db=db)
    assert _profiles(program, db) == [("CARD-0002", "bronze", 0), ("OLD", "bronze", 0)]


def test_member_show_answers_what_the_api_shows(shop: tuple[Path, str]) -> None:
    program, db = shop
    shown = fidelite("member", "show", "CARD-0002", "-p", program, db=db).stdout
    assert shown == (
        "CARD-0002: active (id 1)\n"
        "  joined      2026-02-11 (Europe/Paris)\n"
        "  tier        bronze since 2026-02-11\n"
        "  purchases   0\n"
        "  segments    vip\n"
        "  attributes  city=Lyon\n"
        "  birth date  1990-04-01\n"
    )
    assert as_json(fidelite("member", "show", "CARD-0002", "-p", program, "-f", "json",
                            db=db)) == {
        "member_id": 1, "program_id": "shop", "ref": "CARD-0002", "status": "active",
        "tier": "bronze", "tier_since": "2026-02-11T00:30:00+01:00", "segments": ["vip"],
        "attributes": {"city": "Lyon"}, "purchases": 0,
        "joined_at": "2026-02-11T00:30:00+01:00", "birth_date": "1990-04-01",
    }  # fmt: skip


def test_member_show_by_id_shows_the_ledger_view_and_says_what_is_missing(
    shop: tuple[Path, str],
) -> None:
    _, db = shop
    shown = fidelite("member", "show", "CARD-0002", "-p", "shop", db=db).stdout
    assert shown == (
        "CARD-0002: active (id 1)\n"
        "  program state: give the program file (--program FILE) to show it\n"
    )
    as_id = as_json(fidelite("member", "show", "CARD-0002", "-p", "shop", "-f", "json", db=db))
    assert as_id == {
        "member_id": 1, "program_id": "shop", "ref": "CARD-0002", "status": "active",
        "tier": None, "tier_since": None, "segments": None, "attributes": None,
        "purchases": None, "joined_at": None, "birth_date": None,
    }  # fmt: skip
