"""``fidelite coupon issue`` killed (SIGKILL, or SIGTERM, which it does not handle):
the run created the --out file first, so a kill left an empty file there, and the retry
with the same command was refused (``[exists] ... codes are never written over a
file``). Now the codes go to a hidden file beside it, named after the key, and get the
name asked for once stored: killed before, nothing is stored and the retry issues the
codes; killed after, the retry names the file holding the codes the killed run stored.
The kill is a real signal in a real process, at a chosen point; SQLite file and
PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fidelite.store import Database
from tests.cli.support import as_json, fidelite
from tests.cli.test_coupon_cli import prepare, read_csv, stored
from tests.conftest import make_database

# The child runs the real command line; it kills itself with ``signal`` at ``point``:
# once the codes are generated (before the transaction storing them commits), or once
# they are stored (before the file gets its name).
CHILD = """
import os, signal, sys
point, signum = sys.argv[1], int(sys.argv[2])
import fidelite.cli.coupons as cli
from fidelite.processing import EventProcessor
if point == "before_commit":
    issue = EventProcessor.issue_coupons
    def killed(self, *args, **kwargs):
        issue(self, *args, **kwargs)
        os.kill(os.getpid(), signum)
    EventProcessor.issue_coupons = killed
else:
    def killed_place(*args, **kwargs):
        os.kill(os.getpid(), signum)
    cli._place = killed_place
from fidelite.cli.entry import main
sys.argv = ["fidelite", *sys.argv[3:]]
main()
"""
ISSUE = ["coupon", "issue", "gift", "-n", "3", "--member", "ann", "--key", "ann-1"]


def _killed(point: str, signum: int, db: str, *args: str | Path) -> int:
    env = os.environ | {"FIDELITE_DB": db}
    cmd = [sys.executable, "-c", CHILD, point, str(signum), *map(str, args)]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, check=False).returncode


def _url(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    database: Database = make_database(kind, request, tmp_path)
    url = database.url
    database.dispose()
    return url


@pytest.mark.parametrize("signum", [9, 15])
@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_killed_before_the_codes_are_stored_the_retry_issues_them(
    kind: str, signum: int, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    db = _url(kind, request, tmp_path)
    program = prepare(tmp_path, db)
    out = tmp_path / "ann.csv"
    args = [*ISSUE, "-o", out, "-p", program]
    assert _killed("before_commit", signum, db, *args) == -signum
    assert not out.exists() and stored(db) == []
    done = as_json(fidelite(*args, "-f", "json", db=db))
    assert (done["count"], done["file"], done["replayed"]) == (3, str(out), False)
    written = read_csv(out)
    assert written[0] == ["code", "campaign", "member"] and len(written) == 4
    assert stored(db) == sorted((code, "gift", "issued", "ann") for code, _, _ in written[1:])
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("fidelite.db")) == [
        "ann.csv", "crm.csv", "shop.yaml"]  # fmt: skip


@pytest.mark.parametrize("signum", [9, 15])
@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_killed_after_the_codes_are_stored_the_retry_writes_them_out(
    kind: str, signum: int, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    db = _url(kind, request, tmp_path)
    program = prepare(tmp_path, db)
    out = tmp_path / "ann.csv"
    args = [*ISSUE, "-o", out, "-p", program]
    assert _killed("after_commit", signum, db, *args) == -signum
    codes = stored(db)
    assert len(codes) == 3 and not out.exists()
    again = as_json(fidelite(*args, "-f", "json", db=db))
    assert again == {"campaign": "gift", "member": "ann", "count": 3, "file": str(out),
                     "replayed": True}  # fmt: skip
    written = read_csv(out)
    assert written[0] == ["code", "campaign", "member"]
    assert sorted((code, "gift", "issued", "ann") for code, _, _ in written[1:]) == codes
    assert stored(db) == codes  # nothing issued again
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("fidelite.db")) == [
        "ann.csv", "crm.csv", "shop.yaml"]  # fmt: skip
    # a third run: the same answer, the same file
    assert as_json(fidelite(*args, "-f", "json", db=db)) == again
    assert read_csv(out) == written
