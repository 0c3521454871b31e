"""Running the API under uvicorn: every worker of one ``fidelite serve`` builds its
application from the same configuration, which holds the program's *text* as
``serve`` read it once at start-up (:func:`read_program`), not the path of its file.

Invariant: the workers of one ``serve``, including those started again after a crash,
run exactly the program ``serve`` validated when it started; editing the program file
takes effect when ``serve`` is started again. (A worker that read the file itself
when it started would, after an edit, earn points by other rules than the workers
started before the edit.)
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import httptools
from fastapi import FastAPI
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from fidelite.api.app import Settings, create_app
from fidelite.program import ProgramDefinition
from fidelite.program.loader import Problem, ProgramError, not_utf8, parse_program

ENV = "FIDELITE_SERVE"


@dataclass(frozen=True)
class ProgramText:
    """A program file as read once: its name (for messages) and its text."""

    name: str
    text: str


def read_program(path: Path) -> tuple[ProgramText, ProgramDefinition]:
    """Read the program file once and validate that very text (raises
    :class:`ProgramError` with the messages of :func:`fidelite.program.load_program`)."""
    name = str(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ProgramError([Problem(name, 1, 1, "", f"cannot read: {exc.strerror}")]) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, column, message = not_utf8(data, exc)
        raise ProgramError([Problem(name, line, column, "", message)]) from None
    definition = parse_program(text, name=name)
    return ProgramText(name, text), definition


def serve_config(db: str | None, program: ProgramText, settings: Settings) -> str:
    """The configuration every worker builds its application from (JSON)."""
    return json.dumps({"db": db, "program": asdict(program), "settings": asdict(settings)})


def app_from_config(config: str) -> FastAPI:
    """The application of ``config`` (:func:`serve_config`): the program is parsed from
    the text it holds; the file it came from is not read again."""
    values = json.loads(config)
    program = ProgramText(**values["program"])
    definition = parse_program(program.text, name=program.name)
    return create_app(values["db"], definition, Settings(**values["settings"]))


def app_from_env() -> FastAPI:
    """uvicorn factory (``fidelite.api.server:app_from_env``): the configuration is in
    the environment variable ``FIDELITE_SERVE`` (uvicorn's own workers inherit it)."""
    return app_from_config(os.environ[ENV])


MAX_HEADER_BYTES = 65_536
"""Default cap on a request's head: request line and header fields, in bytes. Browsers
and HTTP clients send a few KiB; nginx refuses heads over 4 x 8 KiB by default, Node.js
over 16 KiB, Apache over 100 fields of 8 KiB."""
HEADER_TIMEOUT = 10.0
"""Default seconds a connection has to send a request's whole head."""
LINGER = 2.0
"""Seconds a connection answered 408 or 431 stays open (reading and dropping what the
client still sends) before it is closed."""
SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
    ("Content-Security-Policy", "frame-ancestors 'none'"),
)
"""Sent with every answer, by uvicorn itself (its default headers: no cost per request).
The CSP here only forbids framing; the documentation pages add their own policy (both
apply)."""


class HeadTooLarge(Exception):
    """Raised inside the parser to stop it once a head is known to be over the cap."""


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a cap on each request's head and a deadline to
    send it (uvicorn has neither: one connection sending a never-ending header field grew
    the worker by the size of the field, 250 MB for 200 MB sent; a client sending a header
    line a second held its connection for good).

    The head (request line and header fields) of each request may be at most
    ``max_header_bytes``: a connection that sends more is answered 431
    ``headers_too_large`` and closed (after :data:`LINGER` seconds in which what it still
    sends is read and dropped, so that it reads the answer rather than a reset). It must
    arrive within ``header_timeout`` seconds of
    the connection's opening (first request) or of its first byte (later requests on a
    keep-alive connection): otherwise 408 ``request_timeout`` and the connection is closed
    (silently if it sent nothing). The time a request's body takes and the time between
    requests (uvicorn's keep-alive timeout) are not limited here.

    Cost per request: while the head arrives whole in one read (every request of a client
    on a fast link), an integer or two compared and stored; no timer but the connection's
    first. The head's bytes are counted as received: a head spread over reads counts
    every read until its end; a head ending in the read it began in is measured exactly
    (target and fields) only when that read is larger than the cap.
    """

    def __init__(self, *args: Any, max_header_bytes: int = MAX_HEADER_BYTES,
                 header_timeout: float = HEADER_TIMEOUT, **kwargs: Any) -> None:  # fmt: skip
        super().__init__(*args, **kwargs)
        self.max_header_bytes = max_header_bytes
        self.header_timeout = header_timeout
        self.in_message = False  # a request has begun and is not complete
        self.in_head = False  # a request's head has begun and is not complete
        self.heads = 0  # heads begun on this connection
        self.head_bytes = 0  # bytes of the current head received in earlier reads
        self.read_bytes = 0  # size of the read being parsed
        self.head_refused = False
        self.dropping = False  # answered 408 or 431: what arrives is dropped until closed
        self.head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        self.head_timer = self.loop.call_later(self.header_timeout, self._head_too_slow)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.dropping:  # answered 408 or 431: closing
            return
        self._unset_keepalive_if_required()
        heads, idle, self.read_bytes = self.heads, not self.in_message, len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self.head_refused:
                self._refuse_head()
                return
            msg = "Invalid HTTP request received."
            self.logger.warning(msg)
            self.send_400_response(msg)
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        if self.in_head:  # the head goes on in the next read
            if self.heads == heads:  # all this read is head
                self.head_bytes += len(data)
            elif idle and self.heads == heads + 1:  # the read began with this head
                self.head_bytes = len(data)
            # else: a pipelined request began after another's end in this read: counted
            # from the next read (and measured exactly at its end)
            if self.head_bytes > self.max_header_bytes:
                self._refuse_head()
            elif self.head_timer is None:
                self.head_timer = self.loop.call_later(self.header_timeout,
                                                       self._head_too_slow)  # fmt: skip

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.in_message = self.in_head = True
        self.heads += 1
        self.head_bytes = 0

    def on_message_complete(self) -> None:
        self.in_message = False
        super().on_message_complete()

    def on_headers_complete(self) -> None:
        self.in_head = False
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None
        if (self.head_bytes + self.read_bytes > self.max_header_bytes
                and self._head_size() > self.max_header_bytes):  # fmt: skip
            self.head_refused = True
            raise HeadTooLarge
        super().on_headers_complete()

    def _head_size(self) -> int:
        """The request target and header fields (name, value, ': ' and CRLF each)."""
        return len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)

    def _cancel_head_timer(self) -> None:
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None

    def _head_too_slow(self) -> None:
        self.head_timer = None
        if self.transport.is_closing():
            return
        if self.in_head:
            self._answer_and_close(408, "request_timeout", "request timeout",
                                   f"the request line and headers must arrive within "
                                   f"{self.header_timeout:g} seconds")  # fmt: skip
        else:  # opened and said nothing
            self.transport.close()

    def _refuse_head(self) -> None:
        self._cancel_head_timer()
        if not self.transport.is_closing():
            self._answer_and_close(431, "headers_too_large",
                                   "request header fields too large",
                                   f"the request line and headers may be at most "
                                   f"{self.max_header_bytes} bytes")  # fmt: skip

    def _answer_and_close(self, status: int, code: str, title: str, detail: str) -> None:
        body = json.dumps({"type": f"https://fidelite.dev/problems/{code}", "title": title,
                           "status": status, "detail": detail, "code": code}).encode()  # fmt: skip
        head = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            head.extend([name, b": ", value, b"\r\n"])
        head.extend([b"content-type: application/problem+json\r\n",
                     b"content-length: %d\r\n" % len(body), b"connection: close\r\n\r\n",
                     body])  # fmt: skip
        self.transport.write(b"".join(head))
        self.dropping = True
        if self.transport.can_write_eof():  # the answer, then our end of the connection;
            self.transport.write_eof()  # what the client still sends is read and dropped
            self.loop.call_later(LINGER, self.transport.close)  # (closing with it unread
        else:  # would reset the connection, and the client might lose the answer)
            self.transport.close()


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """What ``serve`` gives ``uvicorn.Config`` beyond the address: the protocol with
    the head's limits (:class:`GuardedHttpProtocol`), the security headers, and the
    most connections a worker serves at once (uvicorn answers 503 to a request when it
    holds ``limit_concurrency`` connections, that request's own included, or as many
    requests running: one more than ``max_connections``)."""
    return {
        "limit_concurrency": settings.max_connections + 1,
        "http": partial(
            GuardedHttpProtocol,
            max_header_bytes=settings.max_header_bytes,
            header_timeout=settings.header_timeout,
        ),
        "headers": [list(pair) for pair in SECURITY_HEADERS],
    }


def settings_of(config: str) -> Settings:
    """The settings in ``config`` (:func:`serve_config`)."""
    return Settings(**json.loads(config)["settings"])
