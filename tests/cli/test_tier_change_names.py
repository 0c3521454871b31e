"""``fidelite tier`` names a tier change's tiers as the API does (``from``, ``to``), in
JSON, CSV and tables, so a script reads the same keys from both (the installed script on
a real SQLite file); an assignment answer stored under its key before the CLI took these
names is replayed with them too."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import update

from fidelite.api.routes.tiers import TierChangeOut
from fidelite.store import Database
from fidelite.store.tables import IdempotencyRecord
from tests.cli.support import TIER_EVENTS, TIER_PROGRAM, as_json, fidelite

# the API's names of a timeline entry (GET /v1/members/{id}/tier), as its schema says
API_KEYS = list(TierChangeOut.model_json_schema(by_alias=True)["properties"])
ASSIGN = ["tier", "assign", "bob", "gold", "--until", "2099-01-01", "--reason", "complaint 118",
          "--key", "c118"]  # fmt: skip


@pytest.fixture
def shop(tmp_path: Path) -> tuple[Path, str]:
    """ann silver since 2026-01-10 (event p1), bob bronze."""
    program = tmp_path / "shop.yaml"
    program.write_text(TIER_PROGRAM, encoding="utf-8")
    db = f"sqlite:///{tmp_path / 'shop.db'}"
    fidelite("db", "upgrade", db=db)
    (tmp_path / "events.csv").write_text(TIER_EVENTS, encoding="utf-8")
    fidelite("import", "events", tmp_path / "events.csv", "-p", program, db=db)
    return program, db


def test_the_tier_commands_name_a_change_as_the_api_does(shop: tuple[Path, str]) -> None:
    program, db = shop
    assert API_KEYS == ["at", "kind", "from", "to", "value", "reason", "event_id", "until"]
    shown = as_json(fidelite("tier", "show", "ann", "-p", program, "-f", "json", db=db))
    assert shown["timeline"] == [
        {"at": "2026-01-10T09:00:00+00:00", "kind": "upgrade", "from": "bronze", "to": "silver",
         "value": "120.0000", "reason": "spend 120 reached 100", "event_id": "p1",
         "until": None},
    ]  # fmt: skip
    assert list(shown["timeline"][0]) == API_KEYS
    # fidelite event show gives the same change under the same names
    event = as_json(fidelite("event", "show", "p1", "-p", "shop", "-f", "json", db=db))
    assert list(event["tier_changes"][0]) == API_KEYS
    review = ("tier", "review", "-p", program, "--as-of", "2027-01-11")
    as_csv = fidelite(*review, "-f", "csv", db=db).stdout
    assert as_csv.splitlines()[0] == "member,at,kind,from,to,value,reason"
    later = as_json(fidelite("tier", "review", "-p", program, "--as-of", "2027-02-11", "-f",
                             "json", db=db))  # fmt: skip
    assert later["changes"] == [
        {"member": "ann", "at": "2027-02-10T09:00:00+00:00", "kind": "downgrade",
         "from": "silver", "to": "bronze", "value": "0.0000",
         "reason": "spend 0 below 100 at re-qualification"},
    ]  # fmt: skip
    table = fidelite("tier", "show", "ann", "-p", program, db=db).stdout
    assert "from_tier" not in table and "to_tier" not in table


def test_an_assignment_stored_under_the_former_names_is_replayed_with_the_api_names(
    shop: tuple[Path, str],
) -> None:
    program, db = shop
    first = as_json(fidelite(*ASSIGN, "-p", program, "-f", "json", db=db))
    assert (first["from"], first["to"], first["replayed"]) == ("bronze", "gold", False)
    assert "from_tier" not in first and "to_tier" not in first
    # the answer as the CLI stored it before it took the API's names
    database = Database(db)
    try:
        with database.write() as conn:
            stored = {k: v for k, v in first.items() if k not in ("member", "replayed")}
            stored |= {"from_tier": stored.pop("from"), "to_tier": stored.pop("to")}
            conn.execute(update(IdempotencyRecord).where(IdempotencyRecord.key == "c118")
                         .values(result=stored))  # fmt: skip
    finally:
        database.dispose()
    again = as_json(fidelite(*ASSIGN, "-p", program, "-f", "json", db=db))
    assert again == first | {"replayed": True}
    table = " ".join(fidelite(*ASSIGN, "-p", program, db=db).stdout.split())
    assert table.startswith("bob: bronze -> gold until 2098-12-31T23:00:00+00:00")
