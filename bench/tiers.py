"""Benchmark: the daily tier review (``fidelite tier review``), members per second.

Run:  .venv/bin/python bench/tiers.py [--members 5000] [--pg URL] [--skip-sqlite]
      [--profile]

``--members`` members each make one or two purchases in November 2025 (a quarter of
them reach gold, the rest silver or bronze), loaded through the batch path into a fresh
database (a SQLite file and, with ``--pg``, a scratch PostgreSQL database created and
dropped by the bench). The review then runs as of 2026-12-01, when every member's
re-qualification has fallen due and nothing is left in their window: each member above
the base level starts a grace period (a step each); the bronze ones have no
re-qualification and are not visited (rates are per member of ``--members``).

Timed in the same run:

1. the review with every member due (the daily job after a year's quiet);
2. the same review run again (nothing due any more: the re-run a user makes);
3. baseline: the engine's decision alone (:func:`~fidelite.engine.tiers.review`) on the
   same members' states and activities held in memory, no database: the floor of any
   review.

Rates are printed as wall-clock and CPU members per second; ratios use CPU time, the
steadier of the two on a shared machine (as ``bench/engine.py`` does). ``--profile``
prints the 25 costliest functions (cumulative) of the first review on the first
database benched (PostgreSQL with --skip-sqlite).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import random
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import create_engine, text

import machine  # bench/machine.py: how fast this machine is today
from fidelite.engine import Event
from fidelite.engine.tiers import review
from fidelite.processing import EventProcessor
from fidelite.processing.batch import process_events
from fidelite.program import load_program
from fidelite.store import Database
from options import check_pg, positive_int

EXAMPLE = Path(__file__).with_name("cafe_14_rules.yaml")  # the engine bench's program
START = datetime(2025, 11, 10, 9, tzinfo=UTC)
AS_OF = datetime(2026, 12, 1, tzinfo=UTC)
LOAD_CHUNK = 1_000


def purchases(count: int, seed: int = 1) -> list[Event]:
    """One or two purchases per member from 10 November 2025; a quarter of the members
    spend enough for gold (1,000), the others silver (300) or bronze."""
    rng = random.Random(seed)
    made = []
    for i in range(count):
        member = f"m{i:07d}"
        total = rng.choice([1200, 450, 450, 80])
        parts = [total] if rng.random() < 0.5 else [total // 2, total - total // 2]
        for j, amount in enumerate(parts):
            at = START + timedelta(minutes=i % 20_000, days=j)
            made.append(Event(id=f"e{i:07d}-{j}", type="purchase", member=member, at=at,
                              amount=Decimal(amount)))  # fmt: skip
    return made


def rate(label: str, count: int, work: Callable[[], object]) -> tuple[float, object]:
    """Run ``work`` and print its rate; returns members per second of CPU time and what
    ``work`` returned (wall-clock and CPU rates are both printed, as bench/engine.py)."""
    began, cpu = time.perf_counter(), time.process_time()
    result = work()
    seconds, cpu_seconds = time.perf_counter() - began, time.process_time() - cpu
    per_second, per_cpu_second = count / seconds, count / max(cpu_seconds, 1e-9)
    print(
        f"  {label:<52} {count:>8,} in {seconds:7.2f} s = {per_second:>8,.0f}/s"
        f" (CPU {per_cpu_second:>8,.0f}/s)"
    )
    return per_cpu_second, result


def engine_only(processor: EventProcessor, count: int) -> float:
    """The engine's review of every member on states and activities read beforehand
    (not timed): the decisions the job makes, without a database. Members per CPU second."""
    policy = processor.program.tiers
    assert policy is not None
    with processor.db.read() as conn:
        loaded = [(processor._member_state(conn, ref)[1], processor._activities(conn, ref))
                  for ref in (f"m{i:07d}" for i in range(count))]  # fmt: skip

    def decide() -> int:
        steps = 0
        for state, activities in loaded:
            assert state is not None
            steps += len(review(policy, state, activities, AS_OF, processor.program.zone)[1])
        return steps

    floor, _ = rate("baseline: the engine's decisions alone, no database", count, decide)
    return floor


def bench_review(label: str, url: str, count: int, profile: bool) -> None:
    print(f"Tier review on {label} ({count:,} members due)")
    db = Database.from_url(url)
    db.upgrade()
    processor = EventProcessor(db, load_program(EXAMPLE))
    made = purchases(count)
    began = time.perf_counter()
    for start in range(0, len(made), LOAD_CHUNK):
        with db.write() as conn:
            process_events(processor, conn, made[start : start + LOAD_CHUNK])
    print(f"    loaded {len(made):,} purchases in {time.perf_counter() - began:.1f} s (not timed)")
    profiler = cProfile.Profile() if profile else None
    if profiler is not None:
        profiler.enable()
    due, done = rate("review, every member due", count, lambda: processor.review_tiers(AS_OF))
    if profiler is not None:
        profiler.disable()
    kinds: dict[str, int] = {}
    for _, change in done:  # type: ignore[attr-defined]
        kinds[change.kind.value] = kinds.get(change.kind.value, 0) + 1
    print("    " + ", ".join(f"{kind} {n:,}" for kind, n in sorted(kinds.items())))
    again, redone = rate("re-run of the same review (nothing due)", count,
                         lambda: processor.review_tiers(AS_OF))  # fmt: skip
    print(f"    {len(redone):,} change(s)")  # type: ignore[arg-type]
    floor = engine_only(processor, count)
    print(f"  ratios (CPU): review vs the engine alone {due / floor:.4f}; re-run (nothing "
          f"due) vs review {again / due:.1f}")  # fmt: skip
    db.dispose()
    if profiler is not None:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(25)
        print(out.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=positive_int, default=5_000,
                        help="members due at once")  # fmt: skip
    parser.add_argument("--pg", help="PostgreSQL admin URL (a scratch database is created)")
    parser.add_argument("--skip-sqlite", action="store_true", help="PostgreSQL only")
    parser.add_argument("--profile", action="store_true",
                        help="cProfile the first review (PostgreSQL: --skip-sqlite)")  # fmt: skip
    args = parser.parse_args()
    if args.skip_sqlite and not args.pg:
        parser.error("--skip-sqlite without --pg measures nothing")
    if args.pg:
        check_pg(parser, args.pg)
    print(machine.describe(args.pg))
    with tempfile.TemporaryDirectory() as work:
        work_dir = Path(work)
        if not args.skip_sqlite:
            bench_review("SQLite", f"sqlite:///{work_dir / 'bench.db'}", args.members,
                         args.profile)  # fmt: skip
        if args.pg:
            name = f"fidelite_bench_{uuid.uuid4().hex[:8]}"
            admin = create_engine(args.pg.replace("postgresql://", "postgresql+psycopg://"),
                                  isolation_level="AUTOCOMMIT")  # fmt: skip
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            try:
                url = args.pg.rsplit("/", 1)[0] + f"/{name}"
                bench_review("PostgreSQL", url, args.members,
                             args.profile and args.skip_sqlite)  # fmt: skip
            finally:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                admin.dispose()


if __name__ == "__main__":
    main()
