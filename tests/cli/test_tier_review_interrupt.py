"""Ctrl-C during ``fidelite tier review``: the job stops after the member in progress,
prints the changes it committed (a killed daily job leaves a record of what it did) and
exits 130; a run again applies the rest, nothing twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from fidelite.store import Database
from tests.cli.support import FIDELITE, TIER_PROGRAM, fidelite
from tests.conftest import make_database
from tests.support import waits_on_a_row_lock

EVENTS = """\
event_id,type,member,at,amount
p1,purchase,a1,2025-01-10T10:00:00+01:00,120
p2,purchase,a2,2025-01-10T10:00:00+01:00,130
p3,purchase,a3,2025-01-10T10:00:00+01:00,140
"""


def grace(member: str, value: str = "0.0000") -> dict[str, str]:
    return {"member": member, "at": "2026-01-10T09:00:00+00:00", "kind": "grace_started",
            "from": "silver", "to": "silver", "value": value,
            "reason": "spend 0 below 100; grace until 2026-02-10"}  # fmt: skip


@pytest.fixture
def pg(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    database = make_database("postgresql", request, tmp_path)
    yield database
    database.dispose()


def test_ctrl_c_prints_the_changes_committed_and_exits_130(pg: Database, tmp_path: Path) -> None:
    program = tmp_path / "shop.yaml"
    program.write_text(TIER_PROGRAM, encoding="utf-8")
    (tmp_path / "events.csv").write_text(EVENTS, encoding="utf-8")
    fidelite("import", "events", tmp_path / "events.csv", "-p", program, db=pg.url)
    review = [FIDELITE, "tier", "review", "-p", str(program), "--as-of", "2026-01-11",
              "-f", "json"]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "FIDELITE_DB"} | {"FIDELITE_DB": pg.url}
    # a2's lock held elsewhere: the job has committed a1 and waits on a2 when Ctrl-C lands
    holder = pg.writer.connect()
    holder.execute(text("SELECT id FROM members WHERE ref = 'a2' FOR UPDATE"))
    job = subprocess.Popen(review, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           env=env)  # fmt: skip
    try:
        assert waits_on_a_row_lock(holder, 1)
        job.send_signal(signal.SIGINT)
        time.sleep(1)  # the signal handled while a2 is still waited on
    finally:
        holder.rollback()
        holder.close()
    out, err = job.communicate(timeout=120)
    assert job.returncode == 130, err
    # a1, and a2 (the member in progress, finished), committed and printed; a3 not reached
    assert json.loads(out) == {"as_of": "2026-01-10T23:00:00+00:00",
                               "changes": [grace("a1"), grace("a2")],
                               "interrupted": True}  # fmt: skip
    assert "Interrupted: the 2 tier change(s) printed are committed" in err
    with pg.read() as conn:
        kinds = conn.execute(
            text(
                "SELECT member_ref, kind FROM tier_changes "
                "WHERE kind = 'grace_started' ORDER BY member_ref"
            )
        ).all()
    assert [tuple(row) for row in kinds] == [("a1", "grace_started"), ("a2", "grace_started")]
    again = subprocess.run(review, capture_output=True, text=True, env=env, timeout=120)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout) == {"as_of": "2026-01-10T23:00:00+00:00",
                                        "changes": [grace("a3")]}  # fmt: skip
