"""API throughput: sustained purchase events per second through `fidelite serve`, with
p50/p99 latency, on PostgreSQL (or SQLite).

Named baseline, same run, same database kind: the in-process rate of
``EventProcessor.process`` (no HTTP, no auth, no idempotency store), one thread. The
ratio says what the HTTP layer and its guarantees cost, and where the time goes.

Load: ``--clients`` concurrent asyncio HTTP clients (httpx) on 127.0.0.1, each posting
purchases with its own Idempotency-Key, for ``--events`` events in all. The load
generator shares the machine's cores with the server and the database.

    python bench/api.py --pg postgresql://postgres@127.0.0.1:5432/test --events 4000
    python bench/api.py --sqlite --events 2000 --workers 1
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

from fidelite.api.keys import create_key
from fidelite.engine import Event
from fidelite.processing import EventProcessor
from fidelite.program import parse_program
from fidelite.store import Database

PROGRAM = """\
id: bench
name: Bench
time_zone: Europe/Paris
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
  - {id: big, on: [purchase], when: "event.amount >= 50.0", fixed: 20}
"""
MEMBERS = 500


def scratch_pg(admin: str) -> str:
    name = f"fidelite_bench_{uuid.uuid4().hex[:8]}"
    engine = create_engine(
        admin.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT"
    )
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    return admin.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + f"/{name}"


def event(i: int, prefix: str) -> dict[str, str]:
    return {
        "id": f"{prefix}{i}",
        "type": "purchase",
        "member": f"m{i % MEMBERS}",
        "amount": f"{5 + i % 90}.90",
        "at": "2026-11-20T10:00:00+01:00",
    }


def baseline(url: str, count: int) -> float:
    """In-process events per second (one thread)."""
    db = Database(url)
    processor = EventProcessor(db, parse_program(PROGRAM))
    events = [
        Event.model_validate({**event(i, "base-"), "amount": Decimal(f"{5 + i % 90}.90")})
        for i in range(count)
    ]
    start = time.perf_counter()
    for e in events:
        processor.process(e)
    rate = count / (time.perf_counter() - start)
    db.dispose()
    return rate


async def load(
    base: str, token: str, count: int, clients: int, prefix: str
) -> tuple[float, list[float]]:
    """Events per second and each request's latency (seconds)."""
    latencies: list[float] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(count):
        queue.put_nowait(i)
    headers = {"Authorization": f"Bearer {token}"}

    async def client() -> None:
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as c:
            while True:
                try:
                    i = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                t0 = time.perf_counter()
                r = await c.post(
                    "/v1/events", json=event(i, prefix), headers={"Idempotency-Key": f"{prefix}{i}"}
                )
                latencies.append(time.perf_counter() - t0)
                if r.status_code != 201:
                    raise RuntimeError(f"unexpected {r.status_code}: {r.text}")

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return count / (time.perf_counter() - start), latencies


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--sqlite", action="store_true", help="use a SQLite file instead")
    parser.add_argument("--events", type=int, default=4000)
    parser.add_argument("--baseline-events", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="fidelite-bench-api-"))
    url = f"sqlite:///{tmp / 'api.db'}" if args.sqlite else scratch_pg(args.pg)
    program = tmp / "program.yaml"
    program.write_text(PROGRAM)
    db = Database(url)
    db.upgrade()
    token = create_key(db, "bench", "integration")[1]
    rate_base = baseline(url, args.baseline_events)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    fidelite = shutil.which("fidelite") or str(Path(sys.executable).parent / "fidelite")
    server = subprocess.Popen(
        [
            fidelite,
            "serve",
            "--program",
            str(program),
            "--db",
            url,
            "--port",
            str(port),
            "--workers",
            str(args.workers),
        ]
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        asyncio.run(load(base, token, min(200, args.events), args.clients, "warm-"))
        rate, lat = asyncio.run(load(base, token, args.events, args.clients, "api-"))
    finally:
        server.terminate()
        server.wait()
    kind = "SQLite" if args.sqlite else "PostgreSQL"
    print(f"{kind}, {args.workers} server worker(s), {args.clients} clients, {args.events} events")
    print(f"  baseline in-process EventProcessor.process: {rate_base:8.0f} events/s")
    print(
        f"  HTTP POST /v1/events (+ auth, idempotency): {rate:8.0f} events/s "
        f"(ratio {rate / rate_base:.2f} of the baseline)"
    )
    print(f"  latency p50 {pct(lat, 0.50):.1f} ms, p99 {pct(lat, 0.99):.1f} ms")
    db.dispose()


if __name__ == "__main__":
    main()
