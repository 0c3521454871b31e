"""Garbage-collector settings for a bulk run (an import of many events).

A bulk run allocates a few container objects per event (events, decisions, trace
lines, statement parameters) that live only until their chunk is written. CPython's
cyclic collector runs a young pass every 700 net allocations and, now and then, a full
pass over everything alive, including the program, the compiled rules and every
imported module. On the import benchmark those passes were about a fifth of the time
(SQLite: 2,415 events/s with the default settings, 2,938/s with these; the collector
off altogether: 2,941/s).

:func:`bulk_collection` keeps what exists when the run starts out of the collector's
passes (``gc.freeze``: it lives as long as the run anyway) and lets the young
generation grow to :data:`YOUNG_THRESHOLD` objects before it is scanned. Cycles are
still collected, only less often; objects without cycles are freed by reference
counting as soon as they are dropped, as always. The previous settings come back when
the last overlapping run ends, so calling it from a long-lived process (the API server
freezes its own start-up objects) changes nothing outside the runs.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

YOUNG_THRESHOLD = 20_000
"""Net allocations between young passes during a bulk run (CPython's default: 700)."""
OLDER_THRESHOLDS = (20, 20)
"""Young passes per middle pass and middle passes per full pass (default: 10, 10)."""


_lock = threading.Lock()
_runs = 0  # bulk runs in progress in this process (threads may overlap)
_saved: tuple[tuple[int, int, int], bool] = ((700, 10, 10), False)


@contextmanager
def bulk_collection() -> Iterator[None]:
    """Run the block with start-up objects frozen and fewer collector passes.

    The first run to start applies the settings and the last to end restores the
    thresholds (runs may overlap on several threads). It unfreezes only what it froze:
    if the process had already frozen objects (a server after start-up), the freeze is
    left to it.
    """
    global _runs, _saved
    with _lock:
        if _runs == 0:
            froze = gc.get_freeze_count() == 0
            _saved = (gc.get_threshold(), froze)
            if froze:
                gc.collect()
                gc.freeze()
            gc.set_threshold(YOUNG_THRESHOLD, *OLDER_THRESHOLDS)
        _runs += 1
    try:
        yield
    finally:
        with _lock:
            _runs -= 1
            if _runs == 0:
                thresholds, froze = _saved
                gc.set_threshold(*thresholds)
                if froze:
                    gc.unfreeze()
