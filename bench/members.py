"""Benchmark: members import (``fidelite import members``), rows per second.

Run:  .venv/bin/python bench/members.py [--members 20000] [--baseline-members 2000]
      [--pg URL] [--skip-sqlite] [--profile]

A synthetic CRM file of ``--members`` members (a join date, a birth date, one to three
segments and two attributes each) is imported three times into a fresh database (a
SQLite file and, with ``--pg``, a scratch PostgreSQL database created and dropped by
the bench), each run timed on its own:

1. the file into an empty program: every member is created;
2. the same file again: every row unchanged (the re-run a user makes after a crash);
3. a second file listing the same members, every other one with new segments and
   attributes: half updated, half unchanged.

Baselines in the same run: reading and checking the file's rows with no database at
all (:func:`~fidelite.processing.importer.row_to_member` on every row, the floor of any
import), and, on a smaller sample (``--baseline-members``) into another program of the
same database, the import one row at a time (``batch=False``: one savepoint and a dozen
statements per row, the path every row took before the batch path). Rates are printed
as wall-clock and CPU rows per second; ratios use CPU time, the steadier of the two on
a shared machine (as ``bench/engine.py`` does). ``--profile`` prints the 25 costliest
functions (cumulative) of the first run on SQLite.
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import inspect
import io
import json
import pstats
import random
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

import machine  # bench/machine.py: how fast this machine is today
from fidelite.processing import EventProcessor
from fidelite.processing.importer import MEMBER_COLUMNS, import_members, row_to_member
from fidelite.processing.rows import read_rows
from fidelite.program import load_program, parse_program
from fidelite.store import Database
from options import check_pg, positive_int

EXAMPLE = Path(__file__).with_name("cafe_14_rules.yaml")  # the engine bench's program
SEGMENTS = ["regulars", "students", "staff", "newsletter", "vip", "weekend"]
JOINED = datetime(2020, 1, 1, 9, tzinfo=UTC)


def member_rows(count: int, *, prefix: str = "m", seed: int = 1,
                changed: bool = False) -> list[dict[str, Any]]:  # fmt: skip
    """``count`` members; with ``changed``, every other member (the odd ones) gets other
    segments and attributes than the first file gave it (the same join and birth dates)."""
    rng = random.Random(seed)
    rows = []
    for i in range(count):
        segments = rng.sample(SEGMENTS, rng.randint(1, 3))
        attributes: dict[str, Any] = {"optin": rng.random() < 0.5, "score": rng.randint(0, 99)}
        if changed and i % 2:
            segments = sorted(set(SEGMENTS) - set(segments))[:2]
            attributes = {"optin": not attributes["optin"], "score": attributes["score"] + 1}
        born = date(1950, 1, 1) + timedelta(days=rng.randrange(365 * 55))
        rows.append({
            "member": f"{prefix}{i:07d}",
            "joined_at": (JOINED + timedelta(minutes=37 * i)).isoformat(),
            "birth_date": born.isoformat(),
            "segments": ";".join(segments),
            "attributes": json.dumps(attributes),
        })  # fmt: skip
    return rows


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def rate(label: str, count: int, work: Callable[[], object]) -> tuple[float, object]:
    """Run ``work`` and print its rate; returns rows per second of CPU time and what
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


def check_only(path: Path, now: datetime) -> int:
    """The rows of ``path`` read and checked as the import reads them, no database."""
    count = 0
    for row in read_rows(path, MEMBER_COLUMNS):
        row_to_member(row.cells, now)
        count += 1
    return count


def summary(report: Any) -> str:
    counts = report.summary()
    return (f"created {counts['created']:,}, updated {counts['updated']:,}, "
            f"unchanged {counts['unchanged']:,}, rejected {counts['rejected']:,}")  # fmt: skip


def one_at_a_time() -> dict[str, Any]:
    """``batch=False`` where the importer has it (the single path); empty otherwise."""
    return {"batch": False} if "batch" in inspect.signature(import_members).parameters else {}


def bench_import(label: str, url: str, count: int, baseline: int, work_dir: Path,
                 profile: bool) -> None:  # fmt: skip
    print(f"Members import into {label} ({count:,} members)")
    first, again = work_dir / f"members-{label}.csv", work_dir / f"members-{label}-2.csv"
    write_csv(first, member_rows(count))
    write_csv(again, member_rows(count, changed=True))
    now = datetime.now(UTC)
    floor, _ = rate("baseline: read and check the rows, no database", count,
                    lambda: check_only(first, now))  # fmt: skip
    db = Database.from_url(url)
    db.upgrade()
    program = load_program(EXAMPLE)

    def run(path: Path) -> Callable[[], object]:
        return lambda: import_members(EventProcessor(db, program), path, now=now)

    profiler = cProfile.Profile() if profile else None
    if profiler is not None:
        profiler.enable()
    created, report = rate("new members (every row created)", count, run(first))
    if profiler is not None:
        profiler.disable()
    print(f"    {summary(report)}")
    unchanged, report = rate("re-run of the same file (every row unchanged)", count, run(first))
    print(f"    {summary(report)}")
    half, report = rate("a file updating half of them", count, run(again))
    print(f"    {summary(report)}")
    sample = work_dir / f"sample-{label}.csv"
    write_csv(sample, member_rows(baseline, prefix="s", seed=2))
    other = parse_program(EXAMPLE.read_text(encoding="utf-8").replace("id: cafe_club", "id: one"))
    single = one_at_a_time()
    slow = None
    if single:
        slow, _ = rate("baseline: one row at a time (batch=False), new", baseline,
                       lambda: import_members(EventProcessor(db, other), sample, now=now,
                                              **single))  # fmt: skip
    line = (f"  ratios (CPU): vs read-and-check created {created / floor:.2f}, unchanged "
            f"{unchanged / floor:.2f}, half updated {half / floor:.2f}")  # fmt: skip
    if slow:
        line += f"; created vs one-at-a-time {created / slow:.1f}"
    print(line)
    db.dispose()
    if profiler is not None:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(25)
        print(out.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=positive_int, default=20_000,
                        help="members in the synthetic CRM file")  # fmt: skip
    parser.add_argument("--baseline-members", type=positive_int, default=2_000,
                        help="members of the one-row-at-a-time baseline")  # fmt: skip
    parser.add_argument("--pg", help="PostgreSQL admin URL (a scratch database is created)")
    parser.add_argument("--skip-sqlite", action="store_true", help="PostgreSQL only")
    parser.add_argument("--profile", action="store_true",
                        help="cProfile the first run (PostgreSQL: --skip-sqlite)")  # fmt: skip
    args = parser.parse_args()
    if args.skip_sqlite and not args.pg:
        parser.error("--skip-sqlite without --pg measures nothing")
    if args.pg:
        check_pg(parser, args.pg)
    print(machine.describe(args.pg))
    with tempfile.TemporaryDirectory() as work:
        work_dir = Path(work)
        if not args.skip_sqlite:
            bench_import("SQLite", f"sqlite:///{work_dir / 'bench.db'}", args.members,
                         args.baseline_members, work_dir, args.profile)  # fmt: skip
        if args.pg:
            name = f"fidelite_bench_{uuid.uuid4().hex[:8]}"
            admin = create_engine(args.pg.replace("postgresql://", "postgresql+psycopg://"),
                                  isolation_level="AUTOCOMMIT")  # fmt: skip
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            try:
                url = args.pg.rsplit("/", 1)[0] + f"/{name}"
                bench_import("PostgreSQL", url, args.members, args.baseline_members, work_dir,
                             args.profile and args.skip_sqlite)  # fmt: skip
            finally:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                admin.dispose()


if __name__ == "__main__":
    main()
