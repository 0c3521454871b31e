"""A report whose second file cannot be put in place leaves the --out folder byte for
byte as it was: the first file, already renamed over the older report's, gets the old
one back, and no temporary or backup is left. Real file systems, no mocks."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fidelite.cli.main import _register, app
from fidelite.report.build import write_files

_register()

TX = """customer_id,timestamp,amount,order_id
A,2024-01-03,10,o1
A,2024-02-10,30,o2
B,2024-01-20,50,o3
C,2024-02-05,5,o4
"""
OLD_HTML = b"<html>the older report</html>\n"
OLD_JSON = b'{"older": true}\n'


def _tree(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root`` with its bytes (None for a folder)."""
    return {
        str(p.relative_to(root)): None if p.is_dir() else p.read_bytes()
        for p in sorted(root.rglob("*"))
    }


def _old_report(out: Path) -> None:
    out.mkdir()
    (out / "report.html").write_bytes(OLD_HTML)
    (out / "report.json").write_bytes(OLD_JSON)


def test_the_first_file_gets_its_old_text_back_when_the_second_cannot_be_renamed(
    tmp_path: Path,
) -> None:
    """The second file's temporary can be written (its hidden folder .sub exists) but
    its target cannot (sub/ does not): the rename fails after report.html was replaced."""
    out = tmp_path / "out"
    _old_report(out)
    (out / ".sub").mkdir()
    before = _tree(out)
    with pytest.raises(FileNotFoundError):
        write_files(out, {"report.html": "<html>new</html>", "sub/report.json": "{}"})
    assert _tree(out) == before


def test_a_new_file_is_deleted_again_when_the_second_cannot_be_renamed(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / ".sub").mkdir()
    before = _tree(out)
    with pytest.raises(FileNotFoundError):
        write_files(out, {"report.html": "<html>new</html>", "sub/report.json": "{}"})
    assert _tree(out) == before  # no report.html that was not there


def test_a_written_report_leaves_no_backup(tmp_path: Path) -> None:
    out = tmp_path / "out"
    _old_report(out)
    write_files(out, {"report.html": "<html>new</html>", "report.json": "{}"})
    assert _tree(out) == {"report.html": b"<html>new</html>", "report.json": b"{}"}


def _report(src: Path, out: Path) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["report", str(src), "--out", str(out), "--format", "json"])
    return result.exit_code, json.loads(result.stdout)["error"]["message"]


def _immutable_dirs(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    for parent in ("/var/tmp", "/work"):
        if os.access(parent, os.W_OK):
            yield Path(tempfile.mkdtemp(prefix="fidelite-immutable-", dir=parent))


def _chattr(flag: str, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["chattr", flag, str(path)], capture_output=True, text=True, check=False)


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or os.geteuid() != 0 or shutil.which("chattr") is None,
    reason="needs root and chattr to make report.json immutable",
)
def test_an_immutable_report_json_leaves_the_older_report_alone(tmp_path: Path) -> None:
    src = tmp_path / "tx.csv"
    src.write_text(TX)
    tried: list[str] = []
    for root in _immutable_dirs(tmp_path):
        out = root / "imm"
        _old_report(out)
        made = _chattr("+i", out / "report.json")
        if made.returncode == 0:
            break
        tried.append(f"{root}: {made.stderr.strip()}")
        shutil.rmtree(out)
        if root != tmp_path:
            shutil.rmtree(root)
    else:
        pytest.skip("chattr +i works on none of these file systems: " + "; ".join(tried))
    try:
        before = _tree(out)
        code, message = _report(src, out)
        after = _tree(out)
    finally:
        _chattr("-i", out / "report.json")
        if root != tmp_path:
            shutil.rmtree(root)
    assert (code, message) == (1, f"--out {out}: cannot write the report: Operation not permitted")
    assert after == before == {"report.html": OLD_HTML, "report.json": OLD_JSON}


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or os.geteuid() != 0 or shutil.which("unshare") is None,
    reason="needs root and unshare to mount a file over report.json",
)
def test_a_report_json_that_cannot_be_replaced_leaves_the_older_report_alone(
    tmp_path: Path,
) -> None:
    """A file bind-mounted over report.json: it cannot be renamed over (busy) nor linked
    (another mount), while report.html can be replaced."""
    src = tmp_path / "tx.csv"
    src.write_text(TX)
    out = tmp_path / "out"
    _old_report(out)
    over = tmp_path / "mounted.json"
    over.write_bytes(OLD_JSON)
    before = _tree(out)
    script = (
        f"mount --bind {over} {out}/report.json || exit 77; "
        f"{sys.executable} -c 'from fidelite.cli.main import main; main()' "
        f"report {src} --out {out} -f json > {tmp_path}/run.out; echo rc=$?; "
        f"cd {out} && find . | sort && cat report.html report.json"
    )
    run = subprocess.run(
        ["unshare", "-m", "sh", "-c", script], capture_output=True, text=True, check=False
    )
    if run.returncode == 77:
        pytest.skip(f"cannot bind-mount a file here: {run.stderr.strip()}")
    error = json.loads((tmp_path / "run.out").read_text())["error"]
    assert error["message"] == f"--out {out}: cannot write the report: Device or resource busy"
    # as seen while the file was mounted: the old report, nothing beside it
    assert run.stdout == (
        "rc=1\n.\n./report.html\n./report.json\n" + (OLD_HTML + OLD_JSON).decode()
    )
    assert _tree(out) == before  # and underneath the mount
