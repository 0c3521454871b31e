"""The members import takes at most 50 segment names as written, as the API does (it
took 60), and keeps each once, sorted; a name no rule can write (a lone surrogate in
a JSON list) rejects the row."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fidelite.processing.importer import import_members
from fidelite.store import Database
from tests.processing.test_import_members import NOW, processor, profile


def _file(path: Path, lines: list[str], header: str) -> Path:
    path.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    return path


def _rejected(pdb: Database, file: Path) -> tuple[dict[str, Any], list[tuple[int, str]]]:
    report = import_members(processor(pdb), file, now=NOW)
    return report.summary(), [(r.row, r.message) for r in report.rejected]


def _summary(**counts: Any) -> dict[str, Any]:
    base = {"rows": 1, "created": 0, "updated": 0, "unchanged": 0, "rejected": 0,
            "rejected_by_code": {}}  # fmt: skip
    return {**base, **counts}


def test_segments_are_at_most_50_as_written(pdb: Database, tmp_path: Path) -> None:
    fifty = ";".join(f"s{i:02}" for i in range(50))
    rows = [f"ann,{fifty};s50", 'bo,"[""vip"", ""club"", ""vip""]"', f"cid,{fifty}",
            'dan,"[""\\ud800""]"']  # fmt: skip
    summary, told = _rejected(pdb, _file(tmp_path / "s.csv", rows, "member,segments"))
    assert summary == _summary(rows=4, created=2, rejected=2,
                               rejected_by_code={"invalid_row": 2})  # fmt: skip
    assert told == [
        (2, "segments: at most 50 segment names, got 51"),
        (5, "segments: '\\ud800' is not a segment name (lower-case letters, digits and _, "
            "starting with a letter, at most 64 characters, as rules write them)"),
    ]  # fmt: skip
    assert profile(pdb, "ann") is None and profile(pdb, "dan") is None
    bo, cid = profile(pdb, "bo"), profile(pdb, "cid")
    assert bo is not None and bo["segments"] == ["club", "vip"]
    assert cid is not None and cid["segments"] == [f"s{i:02}" for i in range(50)]
