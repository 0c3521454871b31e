"""Ledger throughput: earn and spend operations per second on SQLite and PostgreSQL.

Baseline, in the same run and on the same database: a bare committed transaction that
inserts one row (``INSERT`` + ``COMMIT``) — the floor any durable write pays. The
ratio says how many of those one ledger operation costs.

    python bench/ledger.py --ops 2000 --workers 8
    python bench/ledger.py --pg postgresql://postgres@127.0.0.1:5432/test --ops 5000

Single worker: operations one after another. Concurrent: ``--workers`` threads, each
on its own members (no lock contention between them), sharing the connection pool.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, text

from fidelite.ledger import Ledger, check_invariants
from fidelite.store import Database
from options import check_pg, positive_int

T0 = datetime(2026, 1, 1, tzinfo=UTC)
MEMBERS = 200


def rate(count: int, action: Callable[[int], None], workers: int) -> float:
    """Operations per second of ``action(i)`` for i in range(count) over ``workers`` threads."""
    start = time.perf_counter()
    if workers == 1:
        for i in range(count):
            action(i)
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(action, range(count), chunksize=max(1, count // (workers * 8))))
    return count / (time.perf_counter() - start)


def bench_backend(name: str, url: str, ops: int, workers: int) -> list[tuple[str, str, float]]:
    db = Database(url, pool_size=workers + 2)
    db.upgrade()
    ledger = Ledger(db)
    program = f"bench{uuid.uuid4().hex[:6]}"
    ledger.open_program(program, ["points"])
    for m in range(MEMBERS):
        ledger.create_member(program, f"m{m}")
    with db.write() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS bench_floor (id INTEGER, note VARCHAR(40))"))

    def floor(i: int) -> None:
        with db.write() as conn:
            conn.execute(text("INSERT INTO bench_floor VALUES (:i, 'x')"), {"i": i})

    def earn(tag: str) -> Callable[[int], None]:
        def run(i: int) -> None:
            expiry = T0 + timedelta(days=365 + i % 30)
            member = f"m{i % MEMBERS}"
            ledger.earn(program, member, "points", 100, key=f"{tag}-{i}", at=T0, expires_at=expiry)

        return run

    def spend(tag: str) -> Callable[[int], None]:
        def run(i: int) -> None:
            ledger.spend(program, f"m{i % MEMBERS}", "points", 7, key=f"{tag}-{i}", at=T0)

        return run

    rows = []
    for label, w in (("1 worker", 1), (f"{workers} workers", workers)):
        base = rate(ops, floor, w)
        rows.append((name, f"baseline: INSERT+COMMIT, {label}", base))
        for op, fn in (("earn", earn), ("spend", spend)):
            r = rate(ops, fn(f"{op}{w}"), w)
            rows.append((name, f"{op}, {label}", r))
    problems = check_invariants(db, program)
    assert not problems, problems
    with db.write() as conn:
        conn.execute(text("DROP TABLE bench_floor"))
    db.dispose()
    return rows


def scratch_pg(admin_url: str) -> tuple[str, Callable[[], None]]:
    name = f"fidelite_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(Database(admin_url).url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return Database(admin_url).url.rsplit("/", 1)[0] + f"/{name}", drop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ops", type=positive_int, default=2000,
                        help="operations of each kind")  # fmt: skip
    parser.add_argument("--workers", type=positive_int, default=8,
                        help="threads of the concurrent runs")  # fmt: skip
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test",
                        help="PostgreSQL server to bench on ('' to skip)")  # fmt: skip
    args = parser.parse_args()
    if args.pg:
        check_pg(parser, args.pg)
    rows: list[tuple[str, str, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        rows += bench_backend(
            "sqlite", f"sqlite:///{Path(tmp) / 'bench.db'}", args.ops, args.workers
        )
    if args.pg:
        url, drop = scratch_pg(args.pg)
        try:
            rows += bench_backend("postgresql", url, args.ops, args.workers)
        finally:
            drop()
    print(f"{'backend':<11} {'operation':<40} {'ops/s':>9} {'vs baseline':>12}")
    baseline = 0.0
    for backend, op, value in rows:
        if op.startswith("baseline"):
            baseline = value
        print(f"{backend:<11} {op:<40} {value:>9.0f} {value / baseline:>11.2f}x")


if __name__ == "__main__":
    main()
