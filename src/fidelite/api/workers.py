"""Several server processes on one port, each accepting on its own listening socket.

Why not uvicorn's ``--workers``: there the processes share one listening socket and
whichever is awake first accepts. Clients that connect together (a load balancer's or a
till fleet's pool of keep-alive connections) then often all land on one process, and a
process runs Python on one core at a time: measured on two cores, all 33 connections of
a pool on one of two workers, half the machine idle and the throughput halved. Here each
worker binds its own socket with ``SO_REUSEPORT`` and the kernel spreads new
connections over the workers' sockets by a hash of their addresses.

Invariants: the port is checked free before any worker starts (``SO_REUSEPORT`` would
otherwise let us share a port another server already listens on); every worker builds
its application from the configuration ``serve`` made at start-up, which holds the
program's text (:mod:`fidelite.api.server`): a worker started again runs the same
program as the others, whatever happened to the file since. The supervisor writes that
configuration once to a private file (mode 0600, removed when it stops) and gives each
worker its path: a process's start arguments go through a pipe of 64 KiB, and a bigger
program passed there blocked the supervisor for good when a worker died before reading
them (no restart, no shutdown, signals ignored). A worker that dies while
the server runs is started again (at most once a second per worker). A worker that
cannot start (its application cannot be built) sends the reason to the supervisor and
exits: before any worker of this ``serve`` has started, the supervisor stops them all
and raises :class:`WorkerStartError`; afterwards it logs the reason once (again only
if it changes) and tries again after a pause that doubles up to ``MAX_PAUSE``. SIGTERM
or SIGINT stops every worker gracefully (uvicorn finishes the requests in flight), then
kills any still running after ``STOP_TIMEOUT`` seconds.

Where the platform has no ``SO_REUSEPORT`` (Windows), :func:`serve` hands over to
uvicorn's own workers.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType

log = logging.getLogger("fidelite.api")
APP = "fidelite.api.server:app_from_env"
STOP_TIMEOUT = 30.0
RESTART_PAUSE = 1.0
MAX_PAUSE = 60.0
CANNOT_START = 3  # a worker's exit code when its application cannot be built


class WorkerStartError(RuntimeError):
    """No worker of this ``serve`` could start; the message says why."""


def serve(host: str, port: int, workers: int, log_level: str, config: str) -> None:
    """Run the API of ``config`` (:func:`fidelite.api.server.serve_config`) in
    ``workers`` processes until stopped.

    Raises :class:`OSError` when the port is already in use, :class:`WorkerStartError`
    when the first workers cannot start.
    """
    import uvicorn

    if workers <= 1 or not hasattr(socket, "SO_REUSEPORT"):
        from fidelite.api.server import ENV, settings_of, uvicorn_options

        os.environ[ENV] = config  # read by the factory, here or in uvicorn's workers
        uvicorn.run(APP, factory=True, host=host, port=port, workers=workers,
                    log_level=log_level, **uvicorn_options(settings_of(config)))  # fmt: skip
        return
    check_free(host, port)
    Supervisor(host, port, workers, log_level, config).run()


def check_free(host: str, port: int) -> None:
    """Bind (without ``SO_REUSEPORT``) and let go: fails if anything listens there.

    ``SO_REUSEADDR`` as the server itself sets it: connections of a server that just
    stopped (in TIME_WAIT) do not count as the port being in use on restart.
    """
    with socket.socket(_family(host), socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` with ``SO_REUSEPORT`` (one per worker)."""
    sock = socket.socket(_family(host), socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def run_worker(host: str, port: int, log_level: str, config_file: str, report: Connection) -> None:
    """One worker process: its own socket, one uvicorn server (uvloop, httptools, with
    the limits of :class:`fidelite.api.server.GuardedHttpProtocol`).

    ``config_file`` holds the configuration ``serve`` made at start-up (written by the
    supervisor). Sends ``None`` on ``report`` once its application is built, or why it
    could not be (one line, no traceback) and exits with :data:`CANNOT_START`.
    """
    import uvicorn

    from fidelite.api.server import app_from_config, settings_of, uvicorn_options

    try:
        sock = listening_socket(host, port)
        config = Path(config_file).read_text(encoding="utf-8")
        app = app_from_config(config)
        options = uvicorn_options(settings_of(config))
    except Exception as exc:  # told to the supervisor, which says it once
        report.send(_reason(exc))
        report.close()
        sys.exit(CANNOT_START)
    report.send(None)
    report.close()
    uvicorn.Server(uvicorn.Config(app, log_level=log_level, **options)).run(sockets=[sock])


def _reason(exc: BaseException) -> str:
    """The first line of ``exc``'s message, with its type (at most 500 characters)."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"[:500]


@dataclass
class Worker:
    """A worker process and the supervisor's end of its report pipe."""

    proc: BaseProcess
    report: Connection
    ready: bool = False
    reason: str | None = None  # why it could not start, as it said

    def hear(self) -> None:
        """Read what the worker said, if anything (one message at most)."""
        try:
            if self.report.poll():
                message = self.report.recv()
                self.ready, self.reason = message is None, message
        except (EOFError, OSError):  # it exited without a word (killed)
            pass


class Supervisor:
    """Starts the workers, starts again one that dies, stops them all on a signal."""

    def __init__(self, host: str, port: int, workers: int, log_level: str,
                 config: str) -> None:  # fmt: skip
        self.address = (host, port, log_level)
        self.config = config
        self.config_file = ""  # written by run(), read by every worker it starts
        self.context = multiprocessing.get_context("spawn")
        self.slots: list[Worker | None] = [None] * workers
        self.next_start: list[float] = [0.0] * workers
        self.failures: list[int] = [0] * workers  # starts in a row that failed
        self.said: list[str | None] = [None] * workers  # the reason last logged
        self.any_ready = False
        self.stopping = False

    def run(self) -> None:
        """Block until SIGTERM or SIGINT, keeping every worker running."""
        previous = {s: signal.signal(s, self._stop) for s in (signal.SIGTERM, signal.SIGINT)}
        with _private_file(self.config) as path:
            self.config_file = str(path)
            try:
                while not self.stopping:
                    self._keep_running()
                    time.sleep(0.2)
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)
                self._stop_all()

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True

    def _keep_running(self) -> None:
        for i, worker in enumerate(self.slots):  # first who is ready, then who died
            if worker is not None:
                self._check(i, worker)
        for i, worker in enumerate(self.slots):
            if worker is not None:
                if worker.proc.is_alive():
                    continue
                self._check(i, worker)  # what it said just before it exited
                self._exited(i, worker)
                worker.report.close()
                self.slots[i] = None
            if time.monotonic() >= self.next_start[i]:
                self._start(i)

    def _check(self, i: int, worker: Worker) -> None:
        if worker.ready:
            return
        worker.hear()
        if worker.ready:
            self.any_ready = True
            if self.failures[i]:
                log.warning("%s started again", worker.proc.name)
            self.failures[i], self.said[i] = 0, None

    def _exited(self, i: int, worker: Worker) -> None:
        """Log a dead worker and choose when it starts again (raises
        :class:`WorkerStartError` if no worker of this serve ever started)."""
        proc = worker.proc
        if worker.ready:
            log.warning("worker %s exited with code %s; starting it again", proc.pid,
                        proc.exitcode)  # fmt: skip
            self.next_start[i] = time.monotonic() + RESTART_PAUSE
            return
        reason = worker.reason or f"it exited with code {proc.exitcode} before it was ready"
        if not self.any_ready:
            raise WorkerStartError(reason)
        self.failures[i] += 1
        pause = min(MAX_PAUSE, RESTART_PAUSE * 2 ** self.failures[i])
        self.next_start[i] = time.monotonic() + pause
        if reason != self.said[i]:
            log.error("%s could not start: %s; trying again after pauses doubling up to "
                      "%g s", proc.name, reason, MAX_PAUSE)  # fmt: skip
            self.said[i] = reason

    def _start(self, i: int) -> None:
        mine, theirs = self.context.Pipe(duplex=False)
        args = (*self.address, self.config_file, theirs)
        proc = self.context.Process(target=run_worker, args=args,
                                    name=f"worker-{i}")  # fmt: skip
        proc.start()
        theirs.close()  # the worker holds it now: its exit closes the pipe
        self.slots[i] = Worker(proc, mine)

    def _stop_all(self) -> None:
        running = [w.proc for w in self.slots if w is not None and w.proc.is_alive()]
        for proc in running:
            proc.terminate()  # SIGTERM: uvicorn's graceful shutdown
        deadline = time.monotonic() + STOP_TIMEOUT
        for proc in running:
            proc.join(max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                proc.kill()
                proc.join()


@contextmanager
def _private_file(text: str) -> Iterator[Path]:
    """``text`` in a file only this user can read (a temporary folder of mode 0700),
    removed on leaving."""
    with tempfile.TemporaryDirectory(prefix="fidelite-serve-") as folder:
        path = Path(folder) / "config.json"
        path.touch(mode=0o600)
        path.write_text(text, encoding="utf-8")
        yield path
