"""Benchmark: what the outbox costs event processing, and delivery throughput.

Run:  .venv/bin/python bench/webhooks.py [--events 2000] [--deliveries 2000] [--pg URL]

1. Processing: purchases through ``EventProcessor.process`` (one transaction each)
   with webhook announcements on and one ``*`` subscription (each purchase writes
   member.created/points.earned outbox rows), against the named baseline of the same
   events with ``announce=False``. Prints events/s and the ratio, then the rate at
   which the worker dispatches those events to deliveries.
2. Delivery: due deliveries sent by 1 and by 4 concurrent workers to a receiver on
   127.0.0.1 (http.server, answers 200 at once): deliveries/s, with the 1-worker run
   as the baseline.

SQLite runs on a temporary file; ``--pg`` adds a scratch PostgreSQL database.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from sqlalchemy import create_engine, text

from fidelite.engine import Event
from fidelite.processing import EventProcessor
from fidelite.program import parse_program
from fidelite.store import Database
from fidelite.webhooks import DeliveryWorker, dispatch
from fidelite.webhooks import subscriptions as subs
from options import check_pg, int_at_least, positive_int

PROGRAM = """\
id: shop
name: Shop
currencies: [{id: points, name: Points, value: 0.01}]
rules: [{id: base, on: [purchase], per_amount: {points: 1}}]
"""
# Events one minute apart from here: 1,000,000 of them end in 2025, so none is dated
# after today (the processor refuses an event in the future: event_in_future).
START = datetime(2023, 1, 2, 8, tzinfo=UTC)


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def events(count: int, prefix: str) -> list[Event]:
    return [
        Event(id=f"{prefix}{i}", type="purchase", member=f"{prefix}m{i % 500}",
              at=START + timedelta(minutes=i), amount=Decimal("12.50"))
        for i in range(count)
    ]  # fmt: skip


ROUNDS = 4
"""Rounds of the processing measurement: announcements off and on, interleaved."""


def processing(db: Database, count: int, url: str, rounds: int = ROUNDS) -> tuple[float, float]:
    """Events/s without and with announcements, interleaved in ``rounds`` to even out
    the load of a shared machine."""
    program = parse_program(PROGRAM)
    warm = EventProcessor(db, program, announce=False)
    for event in events(min(100, count), "warm"):  # first-use costs out of the timings
        warm.process(event)
    subs.add(db, "shop", url, ["*"], allow_private=True)
    processors = {False: warm, True: EventProcessor(db, program, announce=True)}
    spent = {False: 0.0, True: 0.0}
    for r in range(rounds):
        for announce in (False, True):
            batch = events(count // rounds, f"{'on' if announce else 'off'}{r}-")
            tick = time.perf_counter()
            for event in batch:
                processors[announce].process(event)
            spent[announce] += time.perf_counter() - tick
    done = count // rounds * rounds
    return done / spent[False], done / spent[True]


def delivery(db: Database, workers: int) -> tuple[int, float]:
    tick = time.perf_counter()
    sent = [0] * workers

    def work(index: int) -> None:
        w = DeliveryWorker(db, allow_private=True, timeout=10)
        while (report := w.run_once(limit=50)).claimed:
            sent[index] += report.delivered
        w.close()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    total = sum(sent)
    return total, total / (time.perf_counter() - tick)


def requeue(db: Database, count: int) -> None:
    """Make ``count`` deliveries due again (replay in bulk) for the next delivery run."""
    with db.write() as conn:
        conn.execute(
            text(
                "UPDATE webhook_deliveries SET state = 'pending', attempts = 0, "
                "next_attempt_at = created_at, delivered_at = NULL WHERE id IN "
                "(SELECT id FROM webhook_deliveries ORDER BY id LIMIT :n)"
            ),
            {"n": count},
        )


def run(name: str, db: Database, args: argparse.Namespace, url: str) -> None:
    db.upgrade()
    off, on = processing(db, args.events, url)
    print(f"[{name}] processing {args.events} purchases, one transaction each:")
    print(f"  baseline announce=False   {off:8.0f} events/s")
    print(f"  outbox + 1 subscription   {on:8.0f} events/s   ratio {on / off:.2f}")
    tick = time.perf_counter()
    dispatched = 0
    while batch := dispatch(db):
        dispatched += batch
    rate = dispatched / (time.perf_counter() - tick)
    print(f"  dispatch (worker side)    {rate:8.0f} events/s   ({dispatched} events)")
    with db.read() as conn:
        pending = conn.execute(text("SELECT COUNT(*) FROM webhook_deliveries")).scalar_one()
    count = min(args.deliveries, int(pending))
    print(f"[{name}] delivering {count} webhooks to 127.0.0.1:")
    base = 0.0
    for workers in (1, 4):
        requeue(db, count)
        with db.write() as conn:  # only the first `count` are due
            conn.execute(
                text("UPDATE webhook_deliveries SET state = 'delivered' WHERE id > :n"),
                {"n": count},
            )
        sent, rate = delivery(db, workers)
        base = base or rate
        ratio = rate / base
        print(f"  {workers} worker(s)  {sent} sent  {rate:8.0f} deliveries/s   ratio {ratio:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int_at_least(ROUNDS), default=2000,
                        help=f"purchases processed (at least {ROUNDS}: they run in {ROUNDS} "
                        "rounds)")  # fmt: skip
    parser.add_argument("--deliveries", type=positive_int, default=2000)
    parser.add_argument(
        "--pg", help="PostgreSQL admin URL, e.g. postgresql://postgres@127.0.0.1/test"
    )
    args = parser.parse_args()
    if args.pg:
        check_pg(parser, args.pg)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{Path(tmp) / 'bench.db'}")
        run("sqlite", db, args, url)
        db.dispose()
    if args.pg:
        admin_url = args.pg.replace("postgresql://", "postgresql+psycopg://", 1)
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        name = f"fidelite_bench_{uuid.uuid4().hex[:8]}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            db = Database(admin_url.rsplit("/", 1)[0] + f"/{name}")
            run("postgresql", db, args, url)
            db.dispose()
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    server.shutdown()


if __name__ == "__main__":
    main()
