"""``fidelite member export -o FILE``: a file that cannot be written is a clear error
(``invalid_file``), and with ``-f json`` the answer is a JSON object."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.support import as_json, fidelite


@pytest.fixture
def db(tmp_path: Path) -> str:
    """A database where program shop has one member, C1."""
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    fidelite("db", "upgrade", db=url)
    fidelite("ledger", "open", "shop", db=url)
    fidelite("member", "add", "C1", "-p", "shop", db=url)
    return url


@pytest.mark.parametrize("fmt", ["table", "json"])
def test_export_to_a_missing_directory_or_a_directory_is_a_clear_error(
    db: str, tmp_path: Path, fmt: str
) -> None:
    missing = tmp_path / "nodir" / "x.json"
    for target, why in ((missing, "No such file or directory"), (tmp_path, "Is a directory")):
        proc = fidelite("member", "export", "C1", "-p", "shop", "-o", target, "-f", fmt, db=db,
                        ok=False)  # fmt: skip
        assert proc.returncode == 1
        assert "Traceback" not in proc.stderr
        message = f"cannot write {target}: {why}"
        if fmt == "json":
            assert as_json(proc) == {"error": {"code": "invalid_file", "message": message}}
            assert proc.stderr == ""
        else:
            assert proc.stdout == ""
            assert proc.stderr == f"error [invalid_file] {message}\n"
    assert not missing.parent.exists()


def test_export_to_a_file_with_json_format_answers_a_json_object(db: str, tmp_path: Path) -> None:
    out = tmp_path / "c1.json"
    proc = fidelite("member", "export", "C1", "-p", "shop", "-o", out, "-f", "json", db=db)
    assert as_json(proc) == {"member": "C1", "program": "shop", "file": str(out)}
    document = json.loads(out.read_text(encoding="utf-8"))
    assert (document["program"], document["member"]["ref"]) == ("shop", "C1")
    table = fidelite("member", "export", "C1", "-p", "shop", "-o", out, db=db)
    assert table.stdout == f"exported member C1 to {out}\n"
