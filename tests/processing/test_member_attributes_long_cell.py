"""A CSV cell of more than the csv reader's default 131,072 characters (a long text
attribute) is read whole, as from Parquet or the API: it stopped the whole file as a
"badly quoted record" whose quote was "never closed", though the quoting was right."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fidelite.processing.importer import import_members
from fidelite.processing.rows import read_rows
from fidelite.store import Database
from tests.processing.test_import_members import NOW, processor, profile


def _file(path: Path, lines: list[str], header: str = "member,attributes") -> Path:
    path.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    return path


def _summary(**counts: Any) -> dict[str, Any]:
    base = {"rows": 1, "created": 0, "updated": 0, "unchanged": 0, "rejected": 0,
            "rejected_by_code": {}}  # fmt: skip
    return {**base, **counts}


def test_a_cell_longer_than_the_csv_default_limit_is_read(pdb: Database, tmp_path: Path) -> None:
    note = "x" * 200_000
    file = _file(tmp_path / "long.csv", [f'bo,"{{""note"": ""{note}""}}"', "cid,"])
    assert [row.number for row in read_rows(file, (["member"], ["attributes"]))] == [2, 3]
    report = import_members(processor(pdb), file, now=NOW)
    assert report.summary() == _summary(rows=2, created=2)
    member = profile(pdb, "bo")
    assert member is not None and member["attributes"] == {"note": note}
