"""Benchmark: rule evaluations per second and bulk-import events per second.

Run:  .venv/bin/python bench/engine.py [--events 200000] [--import-events 20000]
      [--baseline-events 2000] [--pg URL] [--rules-only | --skip-rules] [--skip-sqlite]

Rule evaluation uses the example program (14 rules, CEL conditions, per-item rules,
multipliers, caps, tiers) on synthetic purchases with 0-4 basket lines, once with the
process's default collector settings and once with the import's
(:func:`fidelite.processing.collector.bulk_collection`). Those lines keep every
decision of the run alive until it ends (a list of 200,000 by default), as they always
have, so that figures stay comparable across sessions; an import keeps only one
chunk's (1,000 rows: evaluated, written, dropped), so a last line, with the import's
settings too, evaluates the same events 1,000 at a time and keeps each chunk's
decisions only until the next (see :func:`in_chunks`). Baselines in
the same run: validating the events alone (pydantic), a program with only a plain
"1 point per euro" rule (no CEL), and the example program with every expression run
by CEL (``Evaluator(..., native=False)``: the engine's other fast paths stay on).
Import runs the full path (engine + ledger + records) from a CSV file (one member per
ten events) into a fresh SQLite file and, with ``--pg``, into PostgreSQL, through the
batch path; its baselines, on a smaller sample in the same run, are the same import one
event at a time (``batch=False``) and the ledger alone (one ``earn`` per event). Ratios
are printed. The issue's figure is ``--import-events 1000000``. The synthetic events run
up to 13 years ahead of their start (2026-11-02): the imports' processors are given a
fixed clock just after the last of them (:func:`replay_clock`), so none is refused as
dated in the future and the rows, dates included, are the ones measured before.

"The example program" is ``bench/cafe_14_rules.yaml``: the example ``fidelite program
init`` wrote when these measurements began, pinned here so that figures stay
comparable across sessions (docs/benchmarks.md). The shipped example
(``src/fidelite/program/example.yaml``) may grow to show every feature; this file
does not change.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

import machine  # bench/machine.py: how fast this machine is today
from fidelite.engine import Decision, Evaluator, Event, MemberState
from fidelite.ledger import Ledger
from fidelite.processing import EventProcessor
from fidelite.processing.collector import bulk_collection
from fidelite.processing.importer import import_events
from fidelite.program import load_program, parse_program
from fidelite.store import Database
from options import check_pg, positive_int

EXAMPLE = Path(__file__).with_name("cafe_14_rules.yaml")  # pinned: see the docstring
PLAIN = """\
id: plain
name: Plain
currencies: [{id: points, name: Points, value: 0.01}]
rules: [{id: base, on: [purchase], per_amount: {points: 1}}]
"""
CATEGORIES = ["beans", "pastry", "tea", "mug"]
START = datetime(2026, 11, 2, 8, tzinfo=UTC)


def synthetic_rows(count: int, members: int, seed: int = 1) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    rows = []
    for i in range(count):
        items = [
            {"sku": f"S{rng.randrange(50)}", "category": rng.choice(CATEGORIES),
             "quantity": rng.randint(1, 3), "price": f"{rng.randint(100, 2500) / 100:.2f}"}
            for _ in range(rng.randint(0, 4))
        ]  # fmt: skip
        rows.append(
            {
                "event_id": f"e{i}",
                "type": "purchase",
                "member": f"m{rng.randrange(members)}",
                "at": (START + timedelta(minutes=7 * i)).isoformat(),
                "amount": f"{rng.randint(100, 20000) / 100:.2f}",
                "channel": rng.choice(["web", "store"]),
                "items": json.dumps(items),
            }
        )
    return rows


def replay_clock(count: int) -> Callable[[], datetime]:
    """The time of processing of an import of ``count`` synthetic rows: just after the
    last one. The rows are dated 7 minutes apart from :data:`START` (1,000,000 rows run
    13 years ahead), dates that stay as they always were so figures stay comparable;
    the processor is given this fixed clock, as a replay of history would be, so they
    are not refused as ``event_in_future`` (a constant: reading it costs nothing)."""
    after = START + timedelta(minutes=7 * count)
    return lambda: after


def baseline_rows(rows: list[dict[str, Any]], count: int, members: int) -> list[dict[str, Any]]:
    """``count`` rows for the ledger-alone baseline: the import's own ``rows`` (made by
    :func:`synthetic_rows` with seed 2), continued by the same generator when the
    baseline asks for more rows than the import has."""
    if count <= len(rows):
        return rows[:count]
    return synthetic_rows(count, members=members, seed=2)


def to_event(row: dict[str, Any]) -> Event:
    return Event.model_validate({
        "id": row["event_id"], "type": row["type"], "member": row["member"], "at": row["at"],
        "amount": row["amount"], "channel": row["channel"], "items": json.loads(row["items"]),
    })  # fmt: skip


def rate(label: str, count: int, work: Callable[[], object]) -> float:
    """Run ``work`` and print its rate; returns events per second of CPU time.

    Wall-clock and process CPU rates are both printed: the machine is shared, and CPU
    time is the steadier of the two when other jobs compete for the cores.
    """
    began, cpu = time.perf_counter(), time.process_time()
    work()
    seconds, cpu_seconds = time.perf_counter() - began, time.process_time() - cpu
    per_second, per_cpu_second = count / seconds, count / max(cpu_seconds, 1e-9)
    print(
        f"  {label:<48} {count:>9,} in {seconds:7.2f} s = {per_second:>10,.0f}/s"
        f" (CPU {per_cpu_second:>10,.0f}/s)"
    )
    return per_cpu_second


CHUNK = 1_000
"""Rows per chunk of an import (``fidelite.processing.importer``)."""


def in_chunks(evaluator: Evaluator, events: list[Event], member: MemberState) -> None:
    """Evaluate ``events`` :data:`CHUNK` at a time, each chunk's decisions kept until the
    next chunk's are, as an import keeps them until the chunk is written."""
    kept: list[Decision] = []
    for start in range(0, len(events), CHUNK):
        # The previous chunk's decisions are dropped as this one's replace them.
        kept = [evaluator.evaluate(e, member) for e in events[start : start + CHUNK]]
    del kept


def bench_rules(count: int) -> None:
    print(f"Rule evaluation ({count:,} synthetic purchases)")
    rows = synthetic_rows(count, members=10_000)
    events: list[Event] = []
    validated = rate("baseline: event validation only", count,
                     lambda: events.extend(to_event(r) for r in rows))  # fmt: skip
    member = MemberState("m", tier="silver", segments=frozenset({"regulars"}))
    plain = Evaluator(parse_program(PLAIN))
    example = Evaluator(load_program(EXAMPLE))
    cel_only = Evaluator(load_program(EXAMPLE), native=False)
    simple = rate("baseline: 1 rule, no CEL", count,
                  lambda: [plain.evaluate(e, member) for e in events])  # fmt: skip
    slow = rate("baseline: example, every expression in CEL", count,
                lambda: [cel_only.evaluate(e, member) for e in events])  # fmt: skip
    full = rate("example program (14 rules)", count,
                lambda: [example.evaluate(e, member) for e in events])  # fmt: skip
    with bulk_collection():
        bulk = rate("example program, import's collector settings", count,
                    lambda: [example.evaluate(e, member) for e in events])  # fmt: skip
        chunked = rate("same, decisions kept per chunk of 1,000", count,
                       lambda: in_chunks(example, events, member))  # fmt: skip
    print(f"  ratios (CPU): example/all-CEL {full / slow:.2f}; example/no-CEL "
          f"{full / simple:.2f}; example/validation {full / validated:.2f}; "
          f"collector settings {bulk / full:.2f}; per chunk/all kept "
          f"{chunked / bulk:.2f}")  # fmt: skip


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def bench_import(label: str, url: str, count: int, work_dir: Path, baseline: int) -> None:
    members = max(1_000, count // 10)
    print(f"Bulk import into {label} ({count:,} events, {members:,} members)")
    rows = synthetic_rows(count, members=members, seed=2)
    file = work_dir / f"events-{label}.csv"
    write_csv(file, rows)
    db = Database.from_url(url)
    db.upgrade()
    program = load_program(EXAMPLE)
    clock = replay_clock(max(count, baseline))
    done = rate("import events (batch path, chunks of 1,000)", count,
                lambda: import_events(EventProcessor(db, program, clock=clock), file))  # fmt: skip
    again = rate("re-run of the same file (every row a duplicate)", count,
                 lambda: import_events(EventProcessor(db, program, clock=clock), file))  # fmt: skip
    print(f"  ratio (CPU): re-run/first run {again / done:.1f}")
    sample = work_dir / f"sample-{label}.csv"
    write_csv(sample, synthetic_rows(baseline, members=members, seed=3))
    single = parse_program(EXAMPLE.read_text(encoding="utf-8").replace("id: cafe_club", "id: one"))
    one = rate("baseline: one event at a time (batch=False)", baseline,
               lambda: import_events(EventProcessor(db, single, clock=clock), sample,
                                     batch=False))  # fmt: skip
    ledger = Ledger(db)
    ledger.open_program("baseline", ["points"])
    sampled = baseline_rows(rows, baseline, members)
    for ref in sorted({r["member"] for r in sampled}):
        ledger.create_member("baseline", ref)
    events = [to_event(r) for r in sampled]

    def earn_all() -> None:
        for e in events:
            ledger.earn("baseline", e.member, "points", int(e.money) + 1, key=e.id, at=e.at)

    raw = rate("baseline: ledger.earn alone, one call per event", len(events), earn_all)
    print(f"  ratios (CPU): batch/one-at-a-time {done / one:.1f}; batch/ledger-alone "
          f"{done / raw:.1f}")  # fmt: skip
    db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=positive_int, default=200_000,
                        help="synthetic purchases for rule evaluation")  # fmt: skip
    parser.add_argument(
        "--import-events",
        type=positive_int,
        default=20_000,
        help="events in the bulk-import file (the issue's figure: 1000000)",
    )
    parser.add_argument("--baseline-events", type=positive_int, default=2_000,
                        help="events for the one-at-a-time and ledger-alone baselines")  # fmt: skip
    parser.add_argument("--pg", help="PostgreSQL admin URL (a scratch database is created)")
    parser.add_argument("--rules-only", action="store_true", help="skip the import benchmark")
    parser.add_argument("--skip-rules", action="store_true", help="only the import benchmark")
    parser.add_argument("--skip-sqlite", action="store_true", help="import into PostgreSQL only")
    args = parser.parse_args()
    if args.rules_only and args.skip_rules:
        parser.error("--rules-only and --skip-rules together measure nothing")
    if args.skip_rules and args.skip_sqlite and not args.pg:
        parser.error("--skip-rules and --skip-sqlite without --pg measure nothing")
    if args.pg:
        check_pg(parser, args.pg)
    print(machine.describe(args.pg))
    if not args.skip_rules:
        bench_rules(args.events)
    if args.rules_only:
        return
    with tempfile.TemporaryDirectory() as work:
        work_dir = Path(work)
        if not args.skip_sqlite:
            bench_import("SQLite", f"sqlite:///{work_dir / 'bench.db'}", args.import_events,
                         work_dir, args.baseline_events)  # fmt: skip
        if args.pg:
            name = f"fidelite_bench_{uuid.uuid4().hex[:8]}"
            admin = create_engine(args.pg.replace("postgresql://", "postgresql+psycopg://"),
                                  isolation_level="AUTOCOMMIT")  # fmt: skip
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            try:
                url = args.pg.rsplit("/", 1)[0] + f"/{name}"
                bench_import("PostgreSQL", url, args.import_events, work_dir, args.baseline_events)
            finally:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                admin.dispose()


if __name__ == "__main__":
    main()
