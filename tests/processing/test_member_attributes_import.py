"""The members import refuses what the API refuses, with the same check: an attribute
with a lone surrogate (``"\\ud800"``, in its value or its name: the member was saved, then
``member show -f json`` failed, and PostgreSQL rules reading it), a list or an object
(accepted, while the API refused them), NaN or an infinity at any depth (stored by
SQLite as invalid JSON, a raw DataError on PostgreSQL), JSON nested too deeply (a
RecursionError) rejects its row naming the field, and nothing is written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fidelite.processing.importer import import_members
from fidelite.store import Database
from tests.processing.test_import_members import NOW, processor, profile

SURROGATE = (
    "must be text UTF-8 can encode: character 1 is a lone surrogate (U+D800), half of a character"
)
OBJECT = "must be text, a whole number, a finite number or true/false, got an object"


def _file(path: Path, lines: list[str], header: str = "member,attributes") -> Path:
    path.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    return path


def _summary(**counts: Any) -> dict[str, Any]:
    base = {"rows": 1, "created": 0, "updated": 0, "unchanged": 0, "rejected": 0,
            "rejected_by_code": {}}  # fmt: skip
    return {**base, **counts}


def _rejected(pdb: Database, file: Path) -> tuple[dict[str, Any], list[tuple[int, str]]]:
    report = import_members(processor(pdb), file, now=NOW)
    return report.summary(), [(r.row, r.message) for r in report.rejected]


def test_an_attribute_the_api_refuses_rejects_its_row(pdb: Database, tmp_path: Path) -> None:
    start = _file(tmp_path / "a.csv", ['bo,"{""city"": ""Lyon""}"'])
    assert import_members(processor(pdb), start, now=NOW).summary() == _summary(created=1)
    deep = "[" * 100_000 + "]" * 100_000
    rows = [
        'bo,"{""x"": ""\\ud800""}"',
        'bo,"{""\\ud800"": 1}"',
        'bo,"{""x"": {""y"": 1}}"',
        'bo,"{""x"": {""y"": NaN}}"',
        'bo,"{""x"": [Infinity]}"',
        'bo,"{""x"": NaN}"',
        'bo,"{""x"": null}"',
        f'bo,"{{""x"": {deep}}}"',
        'new,"{""x"": ""\\ud800""}"',
    ]
    summary, told = _rejected(pdb, _file(tmp_path / "b.csv", rows))
    assert summary == _summary(rows=9, rejected=9, rejected_by_code={"invalid_row": 9})
    assert told == [
        (2, f"attributes.x: {SURROGATE}"),
        (3, f"attributes: the name '\\ud800' {SURROGATE}"),
        (4, f"attributes.x: {OBJECT}"),
        (5, f"attributes.x: {OBJECT}"),
        (6, "attributes.x: must be text, a whole number, a finite number or true/false, "
            "got a list"),
        (7, "attributes.x: must be a finite number (not NaN or infinity), got nan"),
        (8, "attributes.x: must be text, a whole number, a finite number or true/false, "
            "got null"),
        (9, "attributes: invalid JSON (nested too deeply)"),
        (10, f"attributes.x: {SURROGATE}"),
    ]  # fmt: skip
    member = profile(pdb, "bo")
    assert member is not None and member["attributes"] == {"city": "Lyon"}
    assert profile(pdb, "new") is None
