"""A report that cannot be written leaves the --out folder exactly as it was."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fidelite.cli.main import _register, app

_register()

TX = """customer_id,timestamp,amount,order_id
A,2024-01-03,10,o1
A,2024-02-10,30,o2
B,2024-01-20,50,o3
C,2024-02-05,5,o4
"""


def _tree(root: Path) -> dict[str, str | None]:
    """Every path under ``root`` with its text (None for a folder)."""
    return {
        str(p.relative_to(root)): None if p.is_dir() else p.read_text()
        for p in sorted(root.rglob("*"))
    }


@pytest.mark.parametrize("in_the_way", ["report.html", "report.json"])
def test_a_directory_in_the_way_leaves_the_old_report_alone(
    tmp_path: Path, in_the_way: str
) -> None:
    src = tmp_path / "tx.csv"
    src.write_text(TX)
    out = tmp_path / "out"
    out.mkdir()
    old = "report.json" if in_the_way == "report.html" else "report.html"
    (out / old).write_text("the older report")
    (out / in_the_way).mkdir()
    before = _tree(out)
    result = CliRunner().invoke(app, ["report", str(src), "--out", str(out), "--format", "json"])
    assert result.exit_code == 1
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "io"
    assert error["message"] == (
        f"--out {out}: cannot write the report: {in_the_way} in it is a directory"
    )
    assert _tree(out) == before  # no new file beside a stale one, no temporary left


def test_a_failed_write_removes_the_folders_it_created(tmp_path: Path) -> None:
    parent = tmp_path / "parent"
    parent.mkdir()
    (parent / "keep.txt").write_text("kept")
    out = parent / "new" / "deeper"
    from fidelite.report.build import write_files

    # the second file cannot be written (its folder does not exist) after the first was
    with pytest.raises(FileNotFoundError):
        write_files(out, {"report.html": "<html>", "missing/report.json": "{}"})
    assert _tree(parent) == {"keep.txt": "kept"}  # new/ and new/deeper/ removed again


SMALL = 32 * 1024


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or os.geteuid() != 0 or shutil.which("unshare") is None,
    reason="needs root and unshare to mount a small tmpfs",
)
def test_a_full_disk_leaves_the_folder_as_it_was(tmp_path: Path) -> None:
    """A real 32 KB file system, too small for the whole report."""
    src = tmp_path / "tx.csv"
    rows = [f"C{i},2024-{1 + i % 12:02d}-{1 + i % 28:02d},{i % 50 + 1},o{i}" for i in range(300)]
    src.write_text("customer_id,timestamp,amount,order_id\n" + "\n".join(rows) + "\n")
    small = tmp_path / "small"
    small.mkdir()
    script = (
        f"mount -t tmpfs -o size={SMALL} tmpfs {small} || exit 77; "
        f"mkdir {small}/old && echo old > {small}/old/report.json && "
        f"{sys.executable} -c 'from fidelite.cli.main import main; main()' "
        f"report {src} --out {small}/old -f json > {tmp_path}/old.out; echo rc=$?; "
        f"{sys.executable} -c 'from fidelite.cli.main import main; main()' "
        f"report {src} --out {small}/new -f json > {tmp_path}/new.out; echo rc=$?; "
        f"cd {small} && find . | sort && cat old/report.json"
    )
    run = subprocess.run(
        ["unshare", "-m", "sh", "-c", script], capture_output=True, text=True, check=False
    )
    if run.returncode == 77:
        pytest.skip(f"cannot mount a tmpfs here: {run.stderr.strip()}")
    for name in ("old", "new"):
        error = json.loads((tmp_path / f"{name}.out").read_text())["error"]
        assert error["message"] == (
            f"--out {small}/{name}: cannot write the report: No space left on device"
        )
    # the old JSON is kept, no new file beside it, no temporary, no new/ folder
    assert run.stdout.splitlines() == ["rc=1", "rc=1", ".", "./old", "./old/report.json", "old"]
