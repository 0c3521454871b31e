"""Bulk goodwill credit: members credited per second, one transaction per member (as
``POST /v1/adjustments:bulk`` used to credit them) against chunks of members per
transaction (:func:`fidelite.ledger.credits.credit_all`, what the API and
``fidelite ledger credit-all`` use), on SQLite and PostgreSQL.

Wall time and this process's CPU time for each; the ratios say how much faster the
chunked credit is. Each run credits its own members (same number, same program).

    python bench/bulk_credit.py --members 5000
    python bench/bulk_credit.py --members 5000 --pg ''    # SQLite only
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from fidelite.ledger import Ledger, check_invariants
from fidelite.ledger.batch import enrol_many
from fidelite.ledger.credits import CHUNK, credit_all
from fidelite.store import Database
from ledger import scratch_pg
from options import check_pg, positive_int


def timed(action: Callable[[], None]) -> tuple[float, float]:
    """Wall and CPU seconds of ``action()``."""
    wall, cpu = time.perf_counter(), time.process_time()
    action()
    return time.perf_counter() - wall, time.process_time() - cpu


def bench_backend(name: str, url: str, members: int, chunk: int) -> list[tuple[str, float, float]]:
    db = Database(url)
    db.upgrade()
    ledger = Ledger(db)
    program = f"bench{uuid.uuid4().hex[:6]}"
    ledger.open_program(program, ["points"])
    one = [f"one{i:06d}" for i in range(members)]
    chunked = [f"chk{i:06d}" for i in range(members)]
    with db.write() as conn:
        enrol_many(conn, program, one + chunked, datetime.now(UTC))

    def per_member() -> None:
        for m in one:
            ledger.adjust(program, m, "points", 25, key=f"bulk-1:{m}", reason="outage",
                          actor="bench")  # fmt: skip

    def in_chunks() -> None:
        done = credit_all(ledger, program, chunked, "points", 25, key=lambda m: f"bulk-2:{m}",
                          reason="outage", actor="bench", chunk=chunk)  # fmt: skip
        assert all(c.receipt is not None for c in done)

    rows = [(f"{name}: one transaction per member", *timed(per_member)),
            (f"{name}: {chunk} members per transaction", *timed(in_chunks))]  # fmt: skip
    problems = check_invariants(db, program)
    assert not problems, problems
    db.dispose()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=positive_int, default=5000,
                        help="members credited by each way")  # fmt: skip
    parser.add_argument("--chunk", type=positive_int, default=CHUNK,
                        help="members per transaction of the chunked credit")  # fmt: skip
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test",
                        help="PostgreSQL server to bench on ('' to skip)")  # fmt: skip
    args = parser.parse_args()
    if args.pg:
        check_pg(parser, args.pg)
    rows: list[tuple[str, float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        rows += bench_backend("sqlite", f"sqlite:///{Path(tmp) / 'bench.db'}", args.members,
                              args.chunk)  # fmt: skip
    if args.pg:
        url, drop = scratch_pg(args.pg)
        try:
            rows += bench_backend("postgresql", url, args.members, args.chunk)
        finally:
            drop()
    print(f"{'run':<46} {'members/s':>10} {'wall s':>8} {'cpu s':>8} {'wall x':>7} {'cpu x':>7}")
    base: tuple[float, float] = (0.0, 0.0)
    for label, wall, cpu in rows:
        if "one transaction" in label:
            base = (wall, cpu)
        print(f"{label:<46} {args.members / wall:>10.0f} {wall:>8.2f} {cpu:>8.2f} "
              f"{base[0] / wall:>6.2f}x {base[1] / cpu:>6.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
