"""``fidelite member add`` refuses a member id the API's member URLs cannot reach, with
the API's words, exit status 1 and nothing enrolled, with the program file as with
the program id alone (the ledger's own enrolment applies the rule)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from fidelite.engine.member_id import MEMBER_ID_RULE
from fidelite.store import Database
from fidelite.store.tables import Member
from tests.cli.support import TIER_PROGRAM, fidelite
from tests.conftest import BACKENDS, make_database

SLASH = "'CARD/0002' holds '/', which no member URL (/v1/members/<id>) can carry"


@pytest.fixture(params=BACKENDS)
def shop(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """The program file and a migrated database where the program is open."""
    database = make_database(request.param, request, tmp_path)
    database.dispose()
    program = tmp_path / "shop.yaml"
    program.write_text(TIER_PROGRAM, encoding="utf-8")
    fidelite("member", "add", "CARD-0001", "--program", program, db=database.url)
    yield program, database.url


def _members(url: str) -> list[str]:
    database = Database(url)
    try:
        with database.read() as conn:
            return list(conn.execute(select(Member.ref).order_by(Member.ref)).scalars())
    finally:
        database.dispose()


@pytest.mark.parametrize("program_given", ["file", "id"])
def test_member_add_refuses_an_id_with_a_slash(shop: tuple[Path, str], program_given: str) -> None:
    program, url = shop
    which = str(program) if program_given == "file" else "shop"
    refused = fidelite("member", "add", "CARD/0002", "-p", which, "-f", "json", db=url, ok=False)
    assert refused.returncode == 1
    assert json.loads(refused.stdout or refused.stderr)["error"] == {
        "code": "invalid_request", "field": "member_ref",
        "message": f"member_ref: {SLASH} ({MEMBER_ID_RULE})",
    }  # fmt: skip
    padded = fidelite("member", "add", " CARD-0003", "-p", which, db=url, ok=False)
    assert padded.returncode == 1
    assert "member_ref: ' CARD-0003' has spaces at its start or end" in padded.stderr
    assert _members(url) == ["CARD-0001"]
