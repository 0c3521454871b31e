"""Planner statistics refreshed as tables grow: at the first threshold and every
doubling, on the caller's thread or on one of its own; one process at a time."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from fidelite.processing.statistics import RUNNING_TARGET, StatisticsRefresh
from fidelite.store import Database
from fidelite.store.database import _ANALYZE_LOCK


def analyses(db: Database) -> int:
    with db.read() as conn:
        return int(conn.execute(text(
            "SELECT analyze_count FROM pg_stat_user_tables WHERE relname = 'members'"
        )).scalar_one())  # fmt: skip


@pytest.mark.postgres
@pytest.mark.parametrize("pdb", ["postgresql"], indirect=True)
@pytest.mark.parametrize("background", [False, True])
def test_refreshes_at_the_threshold_and_each_doubling(pdb: Database, background: bool) -> None:
    refresh = StatisticsRefresh(pdb, ("members",), first=10, background=background)
    before = analyses(pdb)
    seen = []
    for _ in range(8):  # 5, 10, 15, ... 40 events written
        refresh.count(5)
        if refresh._running is not None:
            refresh._running.join(30)
        seen.append(analyses(pdb) - before)
    assert seen == [0, 1, 1, 2, 2, 2, 2, 3]  # at 10, 20 and 40
    assert refresh.next_at == 80


@pytest.mark.postgres
@pytest.mark.parametrize("pdb", ["postgresql"], indirect=True)
def test_a_refresh_running_elsewhere_makes_this_one_skip(pdb: Database) -> None:
    before = analyses(pdb)
    with pdb.writer.connect().execution_options(isolation_level="AUTOCOMMIT") as other:
        other.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _ANALYZE_LOCK})
        pdb.refresh_statistics(["members"])
        assert analyses(pdb) == before
        other.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _ANALYZE_LOCK})
    pdb.refresh_statistics(["members"])
    assert analyses(pdb) == before + 1


def histogram_size(db: Database) -> int:
    """Bounds of the planner's histogram of members.ref (at most target + 1)."""
    with db.read() as conn:
        return int(conn.execute(text(
            "SELECT array_length(histogram_bounds, 1) FROM pg_stats "
            "WHERE tablename = 'members' AND attname = 'ref'"
        )).scalar_one())  # fmt: skip


@pytest.mark.postgres
@pytest.mark.parametrize("pdb", ["postgresql"], indirect=True)
def test_running_refreshes_sample_little_and_the_last_one_at_the_default(pdb: Database) -> None:
    from fidelite.ledger import Ledger

    ledger = Ledger(pdb)
    ledger.open_program("shop", ["points"])
    for n in range(300):
        ledger.create_member("shop", f"m{n:03d}")
    refresh = StatisticsRefresh(pdb, ("members",), first=10)
    refresh.count(10)  # while the job runs
    assert histogram_size(pdb) == RUNNING_TARGET + 1
    refresh.finish()  # the job is done: the server's default target (100)
    assert histogram_size(pdb) == 101
    with pdb.writer.connect() as conn:  # the session setting did not stay behind
        assert conn.exec_driver_sql("SHOW default_statistics_target").scalar_one() == "100"
