"""``fidelite apikey create --program``: a key for an id no program file can declare
(``"No Such Prog"``) is refused (exit 2, nothing stored), since no server could ever
take it; an id a program file can declare gets its key before the program is first
served, as docs/api.md's quick start does it (db upgrade, apikey create, serve)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fidelite.api.keys import ApiKeyError, create_key, list_keys
from fidelite.store import Database
from tests.api.conftest import PROGRAM

FIDELITE = str(Path(sys.executable).parent / "fidelite")
RULE = ("a program id starts with a lowercase letter, then lowercase letters, digits or "
        "'_', at most 64 characters (e.g. cafe_club)")  # fmt: skip


def _create(db: Database, program: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([FIDELITE, "apikey", "create", "--program", program, "--role",
                           "admin", "--db", db.url, "-f", "json"],
                          capture_output=True, text=True, timeout=120)  # fmt: skip


@pytest.mark.parametrize("program", ["No Such Prog", "Cafe", "cafe-club", "c" * 65, "1cafe"])
def test_a_key_for_no_program_id_is_refused(db: Database, program: str) -> None:
    done = _create(db, program)
    assert done.returncode == 2, done.stdout + done.stderr
    error = json.loads(done.stdout)["error"]
    assert error == {"code": "usage", "message": f"{program!r} is not a program id, so no "
                     f"server could ever take the key: {RULE}; give the id its program file "
                     "declares, or the file"}  # fmt: skip
    assert list_keys(db) == []
    with pytest.raises(ApiKeyError):
        create_key(db, program, "admin")
    assert list_keys(db) == []


def test_a_key_before_the_first_serve(db: Database, tmp_path: Path) -> None:
    done = _create(db, "cafe_club")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["program_id"] == "cafe_club"
    file = tmp_path / "shop.yaml"
    file.write_text(PROGRAM)
    assert _create(db, str(file)).returncode == 0
    assert sorted(k.program_id for k in list_keys(db)) == ["cafe_club", "shop"]
