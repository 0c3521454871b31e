"""The worker's loop: survives a failing pass; ``deliver --loop`` stops on SIGTERM or
Ctrl-C after the current pass (a second one aborts it)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from fidelite.store import Database
from fidelite.webhooks import DeliveryWorker, attempts_of, log
from fidelite.webhooks import subscriptions as subs
from tests.webhooks.conftest import Receiver
from tests.webhooks.support import Clock, delivery, processor, purchase
from tests.webhooks.test_slow_receivers import SlowReceiver

FIDELITE = shutil.which("fidelite") or str(Path(sys.executable).parent / "fidelite")


def test_a_failing_pass_is_reported_and_the_loop_goes_on(
    tmp_path: Path, receiver: Receiver
) -> None:
    db = Database(f"sqlite:///{tmp_path / 'loop.db'}")
    db.upgrade()
    processor(db)
    url = receiver.url.replace("127.0.0.1", "hooks.example.test")
    subs.add(db, "shop", url, ["member.created"], allow_private=True,
             resolve=lambda host, port: ["127.0.0.1"])  # fmt: skip
    processor(db).process(purchase("p1", "ann", "10.00"))
    calls = {"resolve": 0, "passes": 0}

    def flaky(host: str, port: int) -> list[str]:  # the resolver is down once
        calls["resolve"] += 1
        if calls["resolve"] == 1:
            raise RuntimeError("resolver crashed")
        return ["127.0.0.1"]

    def stop() -> bool:
        calls["passes"] += 1
        return calls["passes"] > 2

    errors: list[Exception] = []
    clock = Clock()
    w = DeliveryWorker(db, allow_private=True, clock=clock, resolve=flaky)
    w.run_forever(idle_seconds=0.01, stop=stop, on_error=errors.append)
    assert [str(e) for e in errors] == ["resolver crashed"]
    assert [d["state"] for d in log(db, "shop")] == ["pending"]  # lease still held...
    clock.now += timedelta(hours=1)
    assert w.run_once().delivered == 1  # ...and once it runs out, delivered
    db.dispose()


def test_deliver_loop_delivers_and_stops_on_sigterm(tmp_path: Path, receiver: Receiver) -> None:
    path = tmp_path / "loop.db"
    db = Database(f"sqlite:///{path}")
    db.upgrade()
    processor(db)
    subs.add(db, "shop", receiver.url, ["*"], allow_private=True)
    processor(db).process(purchase("p1", "ann", "10.00"))
    env = {**os.environ, "FIDELITE_DB": f"sqlite:///{path}"}
    proc = subprocess.Popen(
        [FIDELITE, "webhooks", "deliver", "--loop", "--idle", "0.1", "--allow-private"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while len(receiver.requests) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(receiver.requests) == 2
        processor(db).process(purchase("p2", "ann", "10.00"))  # picked up while running
        while len(receiver.requests) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(receiver.requests) == 3
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert {d["state"] for d in log(db, "shop")} == {"delivered"}
    db.dispose()


def _three_due(tmp_path: Path) -> tuple[Database, SlowReceiver, subprocess.Popen[str]]:
    """Three deliveries to a receiver taking 0.8 s each, and `deliver --loop --limit 3`
    running on them (started once the receiver has the first one)."""
    path = tmp_path / "int.db"
    db = Database(f"sqlite:///{path}")
    db.upgrade()
    processor(db)
    slow = SlowReceiver(size=4, pause=0.2)
    subs.add(db, "shop", slow.url, ["member.created"], allow_private=True)
    for n, member in enumerate(("ann", "bob", "cy")):
        processor(db).process(purchase(f"p{n}", member, "10.00"))
    env = {**os.environ, "FIDELITE_DB": f"sqlite:///{path}"}
    proc = subprocess.Popen(
        [FIDELITE, "webhooks", "deliver", "--loop", "--limit", "3", "--idle", "0.1",
         "--allow-private"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not slow.hits and time.monotonic() < deadline:
        time.sleep(0.05)
    assert slow.hits == ["1"]
    return db, slow, proc


def test_ctrl_c_finishes_the_attempt_in_progress_and_releases_the_rest(tmp_path: Path) -> None:
    """Ctrl-C during the first of three sends: that attempt ends and is recorded
    (delivered), the two not sent are released (pending, no lease, no attempt), and the
    loop stops (exit 0)."""
    db, slow, proc = _three_due(tmp_path)
    try:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        stderr = proc.stderr.read() if proc.stderr else ""
    finally:
        if proc.poll() is None:
            proc.kill()
        slow.close()
    assert "Interrupted: stopping after the attempt in progress" in stderr
    assert slow.hits == ["1"]
    entries = sorted(log(db, "shop"), key=lambda d: d["id"])
    assert [(d["state"], d["attempts"], d["last_status"]) for d in entries] == [
        ("delivered", 1, 200), ("pending", 0, None), ("pending", 0, None),
    ]  # fmt: skip
    assert [[a["status"] for a in attempts_of(db, "shop", d["id"])] for d in entries] == [
        [200], [], [],
    ]  # fmt: skip
    assert [_lease(db, d["id"]) for d in entries] == [(None, None)] * 3
    db.dispose()


def test_a_second_ctrl_c_aborts_the_pass_recording_nothing(tmp_path: Path) -> None:
    db, slow, proc = _three_due(tmp_path)
    try:
        proc.send_signal(signal.SIGINT)
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 130
        stderr = proc.stderr.read() if proc.stderr else ""
    finally:
        if proc.poll() is None:
            proc.kill()
        slow.close()
    assert "Aborted: the attempt in progress is not recorded" in stderr
    assert "Traceback" not in stderr
    assert slow.hits == ["1"]
    entries = sorted(log(db, "shop"), key=lambda d: d["id"])
    assert [(d["state"], d["attempts"]) for d in entries] == [("pending", 0)] * 3
    assert [attempts_of(db, "shop", d["id"]) for d in entries] == [[]] * 3
    # the one in flight keeps its lease (it may have arrived); the others are released
    assert _lease(db, entries[0]["id"])[0] is not None
    assert [_lease(db, d["id"]) for d in entries[1:]] == [(None, None)] * 2
    db.dispose()


def _lease(db: Database, delivery_id: int) -> tuple[object, object]:
    row = delivery(db, delivery_id)
    return row["lease_token"], row["lease_until"]


class SilentReceiver:
    """Reads each request, then never answers (until closed)."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        self.closing = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.hits.append(self.headers["Fidelite-Delivery-Id"])
                receiver.closing.wait(120)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def close(self) -> None:
        self.closing.set()
        self.server.shutdown()
        self.server.server_close()


def test_a_stop_waits_for_one_attempt_not_the_whole_pass(tmp_path: Path) -> None:
    """Ten deliveries to a receiver that never answers, `deliver --loop --timeout 2
    --limit 10`, Ctrl-C during the first attempt: the command exits 0 about 2 s later
    (not after ten timeouts), the first attempt recorded (a timeout), the nine others
    pending with no lease and no attempt."""
    path = tmp_path / "silent.db"
    db = Database(f"sqlite:///{path}")
    db.upgrade()
    processor(db)
    silent = SilentReceiver()
    subs.add(db, "shop", silent.url, ["member.created"], allow_private=True)
    for n in range(10):
        processor(db).process(purchase(f"p{n}", f"m{n}", "10.00"))
    env = {**os.environ, "FIDELITE_DB": f"sqlite:///{path}"}
    proc = subprocess.Popen(
        [FIDELITE, "webhooks", "deliver", "--loop", "--timeout", "2", "--limit", "10",
         "--allow-private"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not silent.hits and time.monotonic() < deadline:
            time.sleep(0.05)
        assert silent.hits == ["1"]
        proc.send_signal(signal.SIGINT)
        signalled = time.monotonic()
        assert proc.wait(timeout=30) == 0
        took = time.monotonic() - signalled
    finally:
        if proc.poll() is None:
            proc.kill()
        silent.close()
    assert took < 4.5  # the attempt's 2 s at most, and the exit
    assert silent.hits == ["1"]
    entries = sorted(log(db, "shop"), key=lambda d: d["id"])
    assert [(d["state"], d["attempts"], d["last_error"]) for d in entries] == [
        ("failed", 1, "Timeout: no complete answer within 2 s")
    ] + [("pending", 0, None)] * 9
    assert [len(attempts_of(db, "shop", d["id"])) for d in entries] == [1] + [0] * 9
    assert [_lease(db, d["id"]) for d in entries] == [(None, None)] * 10
    db.dispose()
