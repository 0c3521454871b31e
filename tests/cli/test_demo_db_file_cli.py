"""``fidelite demo --db-file``: an existing file is replaced only if an earlier demo made
it; a program's database (even one with a café named cafe) is refused and left as it
is unless ``--force``; a directory, or a directory that does not exist, is a clear error."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.support import as_json, fidelite


def _program_db(path: Path, program: str, *members: str) -> bytes:
    """A real program database at ``path``; its bytes."""
    url = f"sqlite:///{path}"
    fidelite("db", "upgrade", db=url)
    fidelite("ledger", "open", program, db=url)
    for member in members:
        fidelite("member", "add", member, "-p", program, db=url)
    return path.read_bytes()


@pytest.mark.parametrize(("program", "members"), [("shop", ["C1"]), ("cafe", ["ana", "carl"])])
def test_an_existing_program_database_is_refused_and_left_as_it_is(
    tmp_path: Path, program: str, members: list[str]
) -> None:
    victim = tmp_path / "victim.db"
    before = _program_db(victim, program, *members)
    for fmt in ("table", "json"):
        proc = fidelite("demo", "--db-file", victim, "-f", fmt, ok=False)
        assert proc.returncode == 1
        message = (
            f"{victim} exists and is not a database made by `fidelite demo`: it is left as it "
            "is (choose another --db-file, or --force to replace it)"
        )
        if fmt == "json":
            assert as_json(proc) == {"error": {"code": "exists", "message": message}}
        else:
            assert (proc.stdout, proc.stderr) == ("", f"error [exists] {message}\n")
        assert victim.read_bytes() == before
    text = tmp_path / "notes.txt"
    text.write_text("hello\n", encoding="utf-8")
    assert fidelite("demo", "--db-file", text, ok=False).returncode == 1
    assert text.read_text(encoding="utf-8") == "hello\n"


def test_a_demo_database_is_replaced_and_force_replaces_anything(tmp_path: Path) -> None:
    path = tmp_path / "cafe.db"
    first = as_json(fidelite("demo", "--db-file", path, "-f", "json"))
    fidelite("ledger", "history", "ana", "--program", "cafe", "--db", path)  # explored
    again = as_json(fidelite("demo", "--db-file", path, "-f", "json"))
    assert again == first and again["books_balance"] is True
    victim = tmp_path / "victim.db"
    _program_db(victim, "shop", "C1")
    forced = as_json(fidelite("demo", "--db-file", victim, "--force", "-f", "json"))
    assert forced["books_balance"] is True
    shops = fidelite("member", "show", "C1", "-p", "shop", "--db", victim, ok=False)
    assert shops.returncode == 1


def test_a_directory_or_a_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x", encoding="utf-8")
    cases = [
        (tmp_path, f"{tmp_path} is a directory: give a file name for --db-file (e.g. "
                   f"{tmp_path / 'fidelite-demo.db'})"),
        (tmp_path / "nodir" / "cafe.db",
         f"cannot create {tmp_path / 'nodir' / 'cafe.db'}: {tmp_path / 'nodir'} does not exist"),
        (tmp_path / "afile" / "cafe.db",
         f"cannot create {tmp_path / 'afile' / 'cafe.db'}: {tmp_path / 'afile'} is not a "
         "directory"),
    ]  # fmt: skip
    for target, message in cases:
        proc = fidelite("demo", "--db-file", target, "-f", "json", ok=False)
        assert proc.returncode == 1
        assert as_json(proc) == {"error": {"code": "invalid_file", "message": message}}
        assert "Traceback" not in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]
