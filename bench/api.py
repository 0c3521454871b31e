"""API throughput: sustained purchase events per second through `fidelite serve`, with
p50/p99 latency, on PostgreSQL (or SQLite).

Named baseline, same run, same database kind: the in-process rate of
``EventProcessor.process`` (no HTTP, no auth, no idempotency store), one thread, one
event per transaction. The ratio says what the HTTP layer, its guarantees and the group
commit of concurrent requests make of it.

Load generator: keep-alive HTTP/1.1 clients on 127.0.0.1 written on asyncio streams
(each request with its own event id and Idempotency-Key; every answer must be 201). A
general-purpose client costs too much on this 2-core machine, where the load generator
shares the cores with the server and the database: measured against a route that does
nothing, httpx spent 725 µs of CPU per request (at most ~1,370 requests/s), these
clients 42-55 µs. Two loads, in this order:

1. **closed loop**: ``--clients`` clients, each sending its next request as soon as it
   has the answer (the most the server sustains with that many tills waiting);
2. **open loop** (``--rate``): requests sent on a fixed schedule over up to
   ``--connections`` connections, latency counted from the scheduled send time (so a
   server that falls behind shows it in the latency, not as a slower schedule).

For each load the bench also prints the CPU time per event of the server's processes
and of the database's sessions (Linux ``/proc``; PostgreSQL on this machine), which
says where the time goes without a profiler attached.

    python bench/api.py --pg postgresql://postgres@127.0.0.1:5432/test --events 12000
    python bench/api.py --sqlite --events 4000 --workers 1
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
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

import machine  # bench/machine.py: how fast this machine is today
from fidelite.api.keys import create_key
from fidelite.engine import Event
from fidelite.processing import EventProcessor
from fidelite.program import parse_program
from fidelite.store import Database
from options import (
    check_pg,
    fidelite_command,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
)

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


def drop_scratch(admin: str, url: str) -> None:
    name = url.rsplit("/", 1)[1]
    engine = create_engine(
        admin.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT"
    )
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


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


def request_bytes(i: int, prefix: str, token: str) -> bytes:
    body = json.dumps(event(i, prefix)).encode()
    head = (
        f"POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        f"Idempotency-Key: {prefix}{i}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                   request: bytes) -> None:  # fmt: skip
    """Send one request on a kept-alive connection and read its whole answer (201)."""
    writer.write(request)
    status = await reader.readline()
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    body = await reader.readexactly(length)
    if b" 201 " not in status:
        raise RuntimeError(f"unexpected answer {status!r}: {body[:300]!r}")


async def closed_loop(
    port: int, token: str, count: int, clients: int, prefix: str
) -> tuple[float, list[float], float]:
    """Events per second, each request's latency (s), load generator CPU per request."""
    latencies: list[float] = []
    todo = list(range(count))
    todo.reverse()

    async def client() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while todo:
            request = request_bytes(todo.pop(), prefix, token)
            t0 = time.perf_counter()
            await exchange(reader, writer, request)
            latencies.append(time.perf_counter() - t0)
        writer.close()

    start, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(client() for _ in range(clients)))
    elapsed = time.perf_counter() - start
    return count / elapsed, latencies, (time.process_time() - cpu) / count


async def open_loop(
    port: int, token: str, rate: float, seconds: float, connections: int, prefix: str
) -> tuple[float, list[float], list[int]]:
    """Requests on a fixed schedule: events per second done, each latency (s) from its
    scheduled send time, and the second of the schedule each request belonged to."""
    count = int(rate * seconds)
    free: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for _ in range(connections):
        free.put_nowait(await asyncio.open_connection("127.0.0.1", port))
    latencies: list[float] = []
    seconds_of: list[int] = []

    async def one(i: int, due: float) -> None:
        reader, writer = await free.get()
        await exchange(reader, writer, request_bytes(i, prefix, token))
        latencies.append(time.perf_counter() - due)
        seconds_of.append(int(i / rate))
        free.put_nowait((reader, writer))

    start = time.perf_counter()
    tasks = []
    for i in range(count):
        due = start + i / rate
        if (wait := due - time.perf_counter()) > 0:
            await asyncio.sleep(wait)
        tasks.append(asyncio.ensure_future(one(i, due)))
    await asyncio.gather(*tasks)
    done = count / (time.perf_counter() - start)
    while not free.empty():
        free.get_nowait()[1].close()
    return done, latencies, seconds_of


class CpuMeter:
    """CPU time of the server's processes and of the database's sessions, per event.

    Read from ``/proc`` (Linux, database on this machine): the ``fidelite serve``
    process and its workers, and the PostgreSQL backends connected to the scratch
    database (their pids from ``pg_stat_activity``). A process that appears during a
    phase counts from zero; one that ends during it is lost, so the figures are lower
    bounds (the server keeps its connections open, so none end while it runs).
    """

    def __init__(self, server_pid: int, db: Database | None) -> None:
        self.server_pid = server_pid
        self.db = db
        self.tick = os.sysconf("SC_CLK_TCK")

    def sample(self) -> dict[str, dict[int, float]]:
        """CPU seconds so far, by pid, for ``server`` and ``database``."""
        pids = [self.server_pid, *_children(self.server_pid)]
        found = {"server": self._cpu(pids), "database": {}}
        if self.db is not None:
            with self.db.lookup() as conn:
                query = text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                             " AND pid <> pg_backend_pid()")  # fmt: skip
                found["database"] = self._cpu([int(r[0]) for r in conn.execute(query)])
        return found

    def per_event(
        self, before: dict[str, dict[int, float]], after: dict[str, dict[int, float]], events: int
    ) -> str:
        """``server N us, database M us`` of CPU per event between two samples."""
        parts = []
        for side in ("server", "database"):
            if not after[side]:
                parts.append(f"{side} n/a")
                continue
            used = sum(cpu - before[side].get(pid, 0.0) for pid, cpu in after[side].items())
            parts.append(f"{side} {used / events * 1e6:.0f} us")
        return ", ".join(parts)

    def _cpu(self, pids: list[int]) -> dict[int, float]:
        found = {}
        for pid in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:  # ended, or not Linux
                continue
            found[pid] = (int(fields[11]) + int(fields[12])) / self.tick  # utime + stime
        return found


def _children(pid: int) -> list[int]:
    """Every descendant of ``pid`` (Linux ``/proc``; empty elsewhere)."""
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*/children"):
            try:
                kids = [int(k) for k in task.read_text().split()]
            except OSError:
                continue
            found.extend(kids)
            todo.extend(kids)
    return found


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test",
                        help="PostgreSQL admin URL (a scratch database is created, then "
                        "dropped)")  # fmt: skip
    parser.add_argument("--sqlite", action="store_true", help="use a SQLite file instead")
    parser.add_argument("--events", type=positive_int, default=12000, help="closed-loop events")
    parser.add_argument("--warmup", type=non_negative_int, default=3000,
                        help="events before measuring")  # fmt: skip
    parser.add_argument("--baseline-events", type=positive_int, default=1000)
    parser.add_argument("--clients", type=positive_int, default=32, help="closed-loop clients")
    parser.add_argument("--rate", type=non_negative_float, default=1500,
                        help="open-loop events/s (0: skip)")  # fmt: skip
    parser.add_argument("--seconds", type=positive_float, default=8, help="open-loop duration")
    parser.add_argument("--connections", type=positive_int, default=64,
                        help="open-loop connections")  # fmt: skip
    parser.add_argument("--workers", type=positive_int, default=2)
    parser.add_argument("--event-group", type=positive_int, default=None,
                        help="passed to fidelite serve: most requests per group")  # fmt: skip
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary directory (program, SQLite file) and the "
                        "scratch PostgreSQL database instead of removing them at the end"
                        )  # fmt: skip
    args = parser.parse_args()
    if args.rate > 0 and int(args.rate * args.seconds) < 1:
        parser.error("--rate times --seconds is less than one request: nothing to send")
    if not args.sqlite:
        check_pg(parser, args.pg)
    tmp = Path(tempfile.mkdtemp(prefix="fidelite-bench-api-"))
    url = None
    try:
        url = f"sqlite:///{tmp / 'api.db'}" if args.sqlite else scratch_pg(args.pg)
        measure(args, tmp, url)
    finally:
        if args.keep:
            print(f"kept {tmp}" + ("" if args.sqlite or url is None else f" and {url}"),
                  file=sys.stderr)  # fmt: skip
        else:
            if url is not None and not args.sqlite:
                drop_scratch(args.pg, url)
            shutil.rmtree(tmp, ignore_errors=True)


def wait_ready(server: subprocess.Popen[bytes], port: int, seconds: float = 60) -> None:
    """Return once ``/readyz`` answers 200; end the bench if the server ends first or is
    not ready within ``seconds``."""
    deadline = time.monotonic() + seconds
    while (code := server.poll()) is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            sys.exit(f"api bench: fidelite serve was not ready after {seconds:.0f} s")
        time.sleep(0.1)
    sys.exit(
        f"api bench: fidelite serve ended with exit code {code} before it was ready"
        " (its messages are above)"
    )


def measure(args: argparse.Namespace, tmp: Path, url: str) -> None:
    program = tmp / "program.yaml"
    program.write_text(PROGRAM)
    db = Database(url)
    db.upgrade()
    token = create_key(db, "bench", "integration")[1]
    rate_base = baseline(url, args.baseline_events)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [*fidelite_command(), "serve", "--program", str(program), "--db", url,
               "--port", str(port), "--workers", str(args.workers)]  # fmt: skip
    if args.event_group is not None:
        command += ["--event-group", str(args.event_group)]
    server = subprocess.Popen(command)
    try:
        wait_ready(server, port)
        if args.warmup:
            asyncio.run(closed_loop(port, token, args.warmup, args.clients, "warm-"))
        meter = CpuMeter(server.pid, None if args.sqlite else db)
        gc.collect()  # the load generator's own collector pauses are not the server's
        gc.disable()
        before = meter.sample()
        rate, lat, load_cpu = asyncio.run(
            closed_loop(port, token, args.events, args.clients, "api-")
        )
        closed_cpu = meter.per_event(before, after := meter.sample(), args.events)
        opened = None
        if args.rate > 0:
            opened = asyncio.run(
                open_loop(port, token, args.rate, args.seconds, args.connections, "open-")
            )
            open_cpu = meter.per_event(after, meter.sample(), int(args.rate * args.seconds))
    finally:
        gc.enable()
        server.terminate()
        server.wait()
    kind = "SQLite" if args.sqlite else "PostgreSQL"
    print(machine.describe(None if args.sqlite else args.pg))
    print(f"{kind}, {args.workers} server worker(s), after {args.warmup} warm-up events")
    print(f"  baseline in-process EventProcessor.process: {rate_base:8.0f} events/s")
    print(
        f"  closed loop, {args.clients} clients, {args.events} events: {rate:8.0f} events/s "
        f"(ratio {rate / rate_base:.2f} of the baseline), p50 {pct(lat, 0.50):.1f} ms, "
        f"p99 {pct(lat, 0.99):.1f} ms; load generator {load_cpu * 1e6:.0f} us CPU/request"
    )
    print(f"    CPU per event: {closed_cpu}")
    if opened is not None:
        done, lat, second = opened
        print(
            f"  open loop, {args.rate:.0f} events/s offered for {args.seconds:.0f} s over "
            f"{args.connections} connections: {done:8.0f} events/s done, p50 "
            f"{pct(lat, 0.50):.1f} ms, p99 {pct(lat, 0.99):.1f} ms, max {max(lat) * 1000:.1f} ms"
        )
        print(f"    CPU per event: {open_cpu}")
        print("    p99 second by second (where the tail comes from): " + ", ".join(
            f"{pct(in_second, 0.99):.0f}" if (in_second := [
                v for v, s in zip(lat, second, strict=True) if s == n
            ]) else "-"
            for n in range(max(second) + 1)
        ) + " ms")  # fmt: skip
    db.dispose()


if __name__ == "__main__":
    main()
