"""The members import saves what differs type for type: an attribute corrected from 1 to
true (or 1.0) is saved and counted updated (it was counted unchanged and kept 1, and a
rule reading ``member.attributes.optin == true`` never matched)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fidelite.processing.importer import import_members
from fidelite.store import Database
from tests.processing.test_import_members import NOW, processor, profile


def _file(path: Path, lines: list[str], header: str = "member,attributes") -> Path:
    path.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    return path


def _summary(**counts: Any) -> dict[str, Any]:
    base = {"rows": 1, "created": 0, "updated": 0, "unchanged": 0, "rejected": 0,
            "rejected_by_code": {}}  # fmt: skip
    return {**base, **counts}


def test_an_attribute_corrected_to_another_type_is_saved(pdb: Database, tmp_path: Path) -> None:
    first = _file(tmp_path / "a.csv", ['bo,"{""optin"": 1}"'])
    assert import_members(processor(pdb), first, now=NOW).summary() == _summary(created=1)
    for value, kind in (("true", bool), ("1.0", float), ("1", int), ("true", bool)):
        file = _file(tmp_path / "b.csv", [f'bo,"{{""optin"": {value}}}"'])
        assert import_members(processor(pdb), file, now=NOW).summary() == _summary(updated=1)
        member = profile(pdb, "bo")
        assert member is not None
        assert member["attributes"] == {"optin": kind(1)}
        assert type(member["attributes"]["optin"]) is kind
        again = import_members(processor(pdb), file, now=NOW)
        assert again.summary() == _summary(unchanged=1)
