"""How fast this machine is today: a line printed by the benches with absolute targets.

The 2-core machines these benches run on are not equally fast from one day to the next
(measured: the same pure-Python loop took 0.72 s one day and 1.28 s another, a
PostgreSQL round trip 60 us and 115 us, and the API bench's load generator 45 and 137 us
of CPU per request). A figure is comparable with another day's only next to these two
readings, so the benches print them with their results.
"""

from __future__ import annotations

import statistics
import time


def python_loop_seconds() -> float:
    """Best of three runs of a fixed pure-Python loop (sum of 10,000,000 squares)."""
    runs = []
    for _ in range(3):
        start = time.perf_counter()
        sum(i * i for i in range(10_000_000))
        runs.append(time.perf_counter() - start)
    return min(runs)


def round_trip_us(url: str, count: int = 2000) -> float:
    """Median wall time of ``SELECT 1`` on a PostgreSQL connection (psycopg URL form)."""
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        times = []
        for _ in range(count):
            start = time.perf_counter()
            conn.execute("SELECT 1")
            times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


def describe(pg_url: str | None) -> str:
    """``machine today: ...`` with the loop time and, given a URL, the round trip."""
    line = f"machine today: reference Python loop {python_loop_seconds():.2f} s"
    if pg_url:
        line += f", PostgreSQL round trip (SELECT 1) {round_trip_us(pg_url):.0f} us"
    return line
