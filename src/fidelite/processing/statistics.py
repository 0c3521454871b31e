"""Planner statistics kept up with tables that grow under a running job (PostgreSQL).

PostgreSQL plans each query from statistics gathered by ``ANALYZE`` (autovacuum runs it
in the background, when it is on and keeps up). Tables that grow from empty under a bulk
import or a busy API server outpace it, and the plans made for empty tables stay: one
measured case, a 500-id lookup on 170,000 events scanned the whole program (150 ms)
instead of probing the key. A :class:`StatisticsRefresh` counts the events written and
refreshes the statistics of the processing tables at 2,000 events and at every
doubling after that: a logarithmic number of refreshes, each sampling a fixed number of
rows, so the cost stays a fraction of a second whatever the size. SQLite: nothing.

Refreshes while the job runs sample :data:`RUNNING_TARGET` (3,000 rows per table):
what plans of a growing table need is its size and which keys are unique, and that
sample shows both (the 500-id lookup above stays an index probe). At the server's
default target (100: 30,000 rows) the nine tables took 0.36-0.40 s of the server's work
at 40,000 events, against 0.05 s; on a 2-core machine serving 1,500 events/s, that
burst is felt by every request of its moment. :meth:`StatisticsRefresh.finish`, once a
job is done, samples at the server's default, for the queries that come after.
"""

from __future__ import annotations

import logging
import threading

from fidelite.store import Database

log = logging.getLogger("fidelite.processing")
FIRST_REFRESH = 2000  # events written before the first refresh, then at every doubling
RUNNING_TARGET = 10  # statistics target of refreshes while a job runs (3,000 rows sampled)
TABLES = ("processed_events", "event_earnings", "members", "member_states", "accounts",
          "rule_usage", "lots", "ledger_transactions", "idempotency_records")  # fmt: skip


class StatisticsRefresh:
    """Counts events written through one database handle and refreshes when due
    (thread-safe: at most one refresh runs at a time).

    ``background``: refresh on a thread of its own, so the caller goes on writing (an
    API server's writer must not stop: measured, ``ANALYZE`` of these tables took 0.4 s
    at 31,000 events, a pause every caller of that moment would wait out). A refresh
    still running when the next one is due makes that one wait for the next doubling.
    """

    def __init__(
        self,
        db: Database,
        tables: tuple[str, ...] = TABLES,
        first: int = FIRST_REFRESH,
        *,
        background: bool = False,
    ) -> None:
        self.db = db
        self.tables = list(tables)
        self.written = 0
        self.first = first
        self.next_at = first
        self.background = background
        self._lock = threading.Lock()
        self._running: threading.Thread | None = None

    def count(self, events: int) -> None:
        """Add ``events`` just committed; refresh if the tables have doubled since."""
        with self._lock:
            self.written += events
            if self.written < self.next_at:
                return
            while self.next_at <= self.written:
                self.next_at *= 2
            if not self.background:
                self.db.refresh_statistics(self.tables, target=RUNNING_TARGET)
                return
            if self._running is not None and self._running.is_alive():
                return
            self._running = threading.Thread(
                target=self._refresh_logged, name="fidelite-statistics", daemon=True
            )
            self._running.start()

    def _refresh_logged(self) -> None:
        try:
            self.db.refresh_statistics(self.tables, target=RUNNING_TARGET)
        except Exception:  # housekeeping: the next doubling tries again
            log.exception("refreshing planner statistics failed")

    def finish(self) -> None:
        """A last refresh once a long job is done (if it wrote enough to matter)."""
        with self._lock:
            if self.written >= self.first:
                self.db.refresh_statistics(self.tables)
