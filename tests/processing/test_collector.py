"""Collector settings of a bulk run: applied inside, the process's own restored after."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from fidelite.processing import EventProcessor
from fidelite.processing.collector import OLDER_THRESHOLDS, YOUNG_THRESHOLD, bulk_collection
from fidelite.processing.importer import import_events
from fidelite.program import parse_program
from fidelite.store import Database
from tests.processing.test_import import GOOD, PROGRAM, write_csv

BULK = (YOUNG_THRESHOLD, *OLDER_THRESHOLDS)


@pytest.fixture(autouse=True)
def own_settings() -> Iterator[tuple[int, int, int]]:
    """Distinctive settings for the test process, and no frozen objects; put back after."""
    previous = gc.get_threshold()
    gc.unfreeze()
    gc.set_threshold(701, 11, 12)
    yield (701, 11, 12)
    gc.set_threshold(*previous)
    gc.unfreeze()


def test_bulk_run_freezes_and_raises_thresholds_then_restores() -> None:
    with bulk_collection():
        assert gc.get_threshold() == BULK
        assert gc.get_freeze_count() > 0
        assert gc.isenabled()  # cycles are still collected
    assert gc.get_threshold() == (701, 11, 12)
    assert gc.get_freeze_count() == 0


def test_bulk_run_restores_settings_when_the_block_raises() -> None:
    with pytest.raises(RuntimeError, match="database gone"), bulk_collection():
        raise RuntimeError("database gone")
    assert (gc.get_threshold(), gc.get_freeze_count()) == ((701, 11, 12), 0)


def test_bulk_run_leaves_a_freeze_it_did_not_make() -> None:
    gc.freeze()  # as the API server does after start-up
    with bulk_collection():
        assert gc.get_threshold() == BULK
    assert gc.get_freeze_count() > 0  # still frozen (unfrozen, it would be 0): not ours
    assert gc.get_threshold() == (701, 11, 12)


def test_nested_runs_restore_the_outer_settings() -> None:
    with bulk_collection():
        with bulk_collection():
            assert gc.get_threshold() == BULK
        assert gc.get_threshold() == BULK
        assert gc.get_freeze_count() > 0
    assert (gc.get_threshold(), gc.get_freeze_count()) == ((701, 11, 12), 0)


def test_import_runs_under_bulk_settings_and_restores_them(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'import.db'}")
    db.upgrade()
    seen: list[tuple[tuple[int, int, int], bool]] = []
    report = import_events(
        EventProcessor(db, parse_program(PROGRAM)),
        write_csv(tmp_path / "events.csv", GOOD),
        progress=lambda _row: seen.append((gc.get_threshold(), gc.get_freeze_count() > 0)),
    )
    db.dispose()
    assert report.summary()["processed"] == 3
    assert seen == [(BULK, True)] * 3
    assert (gc.get_threshold(), gc.get_freeze_count()) == ((701, 11, 12), 0)


def test_overlapping_runs_on_two_threads_restore_the_settings_when_both_end() -> None:
    first_inside, second_started, first_done = (threading.Event() for _ in range(3))

    def first() -> None:
        with bulk_collection():
            first_inside.set()
            second_started.wait(10)
        first_done.set()

    thread = threading.Thread(target=first)
    thread.start()
    first_inside.wait(10)
    with bulk_collection():
        second_started.set()
        first_done.wait(10)
        assert gc.get_threshold() == BULK  # the first run ended, this one has not
        assert gc.get_freeze_count() > 0
    thread.join(10)
    assert (gc.get_threshold(), gc.get_freeze_count()) == ((701, 11, 12), 0)
