"""Several server processes on one port, each accepting on its own listening socket.

Why not uvicorn's ``--workers``: there the processes share one listening socket and
whichever is awake first accepts. Clients that connect together (a load balancer's or a
till fleet's pool of keep-alive connections) then often all land on one process, and a
process runs Python on one core at a time: measured on two cores, all 33 connections of
a pool on one of two workers, half the machine idle and the throughput halved. Here each
worker binds its own socket with ``SO_REUSEPORT`` and the kernel spreads new
connections over the workers' sockets by a hash of their addresses.

Invariants: the port is checked free before any worker starts (``SO_REUSEPORT`` would
otherwise let us share a port another server already listens on); a worker that dies
while the server runs is started again (at most once a second per worker); SIGTERM or
SIGINT stops every worker gracefully (uvicorn finishes the requests in flight), then
kills any still running after ``STOP_TIMEOUT`` seconds.

Where the platform has no ``SO_REUSEPORT`` (Windows), :func:`serve` hands over to
uvicorn's own workers.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import socket
import time
from multiprocessing.process import BaseProcess
from types import FrameType

log = logging.getLogger("fidelite.api")
APP = "fidelite.api.server:app_from_env"
STOP_TIMEOUT = 30.0
RESTART_PAUSE = 1.0


def serve(host: str, port: int, workers: int, log_level: str) -> None:
    """Run the API (its settings are in the environment, see
    :func:`fidelite.api.server.export_config`) in ``workers`` processes until stopped.

    Raises :class:`OSError` when the port is already in use.
    """
    import uvicorn

    if workers <= 1 or not hasattr(socket, "SO_REUSEPORT"):
        uvicorn.run(APP, factory=True, host=host, port=port, workers=workers,
                    log_level=log_level)  # fmt: skip
        return
    check_free(host, port)
    Supervisor(host, port, workers, log_level).run()


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


def run_worker(host: str, port: int, log_level: str) -> None:
    """One worker process: its own socket, one uvicorn server (uvloop, httptools)."""
    import uvicorn

    sock = listening_socket(host, port)
    config = uvicorn.Config(APP, factory=True, log_level=log_level)
    uvicorn.Server(config).run(sockets=[sock])


class Supervisor:
    """Starts the workers, starts again one that dies, stops them all on a signal."""

    def __init__(self, host: str, port: int, workers: int, log_level: str) -> None:
        self.args = (host, port, log_level)
        self.context = multiprocessing.get_context("spawn")
        self.slots: list[BaseProcess | None] = [None] * workers
        self.started: list[float] = [0.0] * workers
        self.stopping = False

    def run(self) -> None:
        """Block until SIGTERM or SIGINT, keeping every worker running."""
        previous = {s: signal.signal(s, self._stop) for s in (signal.SIGTERM, signal.SIGINT)}
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
        now = time.monotonic()
        for i, proc in enumerate(self.slots):
            if proc is not None:
                if proc.is_alive():
                    continue
                log.warning("worker %s exited with code %s; starting it again", proc.pid,
                            proc.exitcode)  # fmt: skip
                self.slots[i] = None
            if now - self.started[i] < RESTART_PAUSE:
                continue
            worker = self.context.Process(target=run_worker, args=self.args, name=f"worker-{i}")
            worker.start()
            self.slots[i], self.started[i] = worker, now

    def _stop_all(self) -> None:
        running = [p for p in self.slots if p is not None and p.is_alive()]
        for proc in running:
            proc.terminate()  # SIGTERM: uvicorn's graceful shutdown
        deadline = time.monotonic() + STOP_TIMEOUT
        for proc in running:
            proc.join(max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                proc.kill()
                proc.join()
