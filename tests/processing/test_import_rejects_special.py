"""`--rejects` naming something that is not a regular file is refused before anything
is imported (``invalid_rejects_path``), and left as it is: the import removes the
rejects file an earlier run left and writes a new one, so it unlinked a device
(``/dev/null`` as root), blocked forever on a named pipe, and replaced a symbolic link
by a plain file (the file it pointed to kept an earlier run's rejects)."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fidelite.cli.main import _register, app
from fidelite.processing.importer import ImportFileError, RejectedRow, write_rejects
from tests.processing.test_import_files import AT, HEADER, PROGRAM

pytestmark = pytest.mark.timeout(60)  # the old code waited forever for a pipe's reader
GIVE = "not a regular file: give the path of a file, or of none yet"


def _fifo(path: Path) -> str:
    os.mkfifo(path)
    return "a named pipe (FIFO)"


def _link(path: Path) -> str:
    (path.parent / "target.csv").write_text("kept\n", encoding="utf-8")
    path.symlink_to("target.csv")
    return "a symbolic link"


def _dangling(path: Path) -> str:
    path.symlink_to("nowhere.csv")
    return "a symbolic link"


def _device(path: Path) -> str:
    if os.geteuid() != 0:
        pytest.skip("making a device file needs root")
    os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # /dev/null's numbers
    return "a character device"


MAKE: dict[str, Callable[[Path], str]] = {
    "fifo": _fifo, "symlink": _link, "dangling-symlink": _dangling, "device": _device,
}  # fmt: skip


@pytest.mark.parametrize("kind", list(MAKE))
def test_cli_import_refuses_a_rejects_path_that_is_no_regular_file(
    tmp_path: Path, kind: str
) -> None:
    program = tmp_path / "program.yaml"
    program.write_text(PROGRAM, encoding="utf-8")
    file = tmp_path / "events.csv"
    file.write_text(HEADER + f"e1,purchase,ann,{AT},12\ne2,purchase,ann,nope,1\n", "utf-8")
    rejects = tmp_path / "rejects"
    what = MAKE[kind](rejects)
    before = os.lstat(rejects)
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    _register()
    args = ["import", "events", str(file), "--program", str(program), "--db", url,
            "--rejects", str(rejects), "--format", "json"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    assert json.loads(result.stdout)["error"] == {
        "code": "invalid_rejects_path",
        "message": f"--rejects {rejects}: cannot write the rejects file: it is {what}, {GIVE}",
    }
    after = os.lstat(rejects)  # still there, the same thing
    assert (after.st_ino, after.st_mode, after.st_rdev) == (
        before.st_ino, before.st_mode, before.st_rdev,
    )  # fmt: skip
    if kind == "symlink":
        assert (tmp_path / "target.csv").read_text(encoding="utf-8") == "kept\n"
    assert not (tmp_path / "nowhere.csv").exists()
    assert not (tmp_path / "shop.db").exists()  # refused before the database is opened


def test_a_symbolic_link_put_at_the_path_after_the_check_is_neither_removed_nor_followed(
    tmp_path: Path,
) -> None:
    from fidelite.processing.importer import clear_rejects

    target = tmp_path / "target.csv"
    target.write_text("kept\n", encoding="utf-8")
    link = tmp_path / "rejects.csv"
    link.symlink_to(target)
    with pytest.raises(ImportFileError, match="it is a symbolic link"):
        clear_rejects(link)
    assert link.is_symlink()
    with pytest.raises(OSError, match="it is a symbolic link"):
        write_rejects(link, [RejectedRow(2, "e1", "invalid_row", "bad")])
    assert link.is_symlink() and target.read_text(encoding="utf-8") == "kept\n"
    plain = tmp_path / "plain.csv"
    plain.write_text("stale\n", encoding="utf-8")
    clear_rejects(plain)
    assert not plain.exists()
    write_rejects(plain, [RejectedRow(2, "e1", "invalid_row", "bad")])
    assert plain.read_text(encoding="utf-8") == "row,event_id,code,message\n2,e1,invalid_row,bad\n"
