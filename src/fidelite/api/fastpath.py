"""``POST /v1/events`` answered before FastAPI's routing: the till's request, on its own.

Every other route goes through FastAPI as usual. This one is the busiest by far (one
request per purchase, from every till) and its handler needs nothing FastAPI resolves:
it reads two headers and the raw body, and authenticates in its group's transaction
(:mod:`fidelite.api.intake`). The layers between uvicorn and the handler (exception
middleware, routing, dependency resolution, request wrapping) cost more than the
handler: measured in process with the writer replaced by an immediate answer, 139-223
µs of CPU per request here against 414-749 µs through FastAPI, and under load the
server's CPU per event fell by a fifth to a quarter (docs/benchmarks.md). Here the
request goes straight to
:func:`~fidelite.api.routes.events.event_response`, the same function the FastAPI route
calls, so both answer the same (``tests/api/test_fastpath.py`` compares them).

Invariants: only ``POST /v1/events`` (exact path, any query) is taken here, anything
else goes on to FastAPI; the query string is handed to ``event_response``, which
refuses any (the route takes no query parameter) as every route does, at no cost to a
request without one; the middleware sits inside the body limit (413 as on every route)
and the server-error middleware (an unexpected failure is a bare 500 problem, logged); a
problem raised while reading the request (401 without a bearer token) is answered as
the route's exception handler answers it.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from fidelite.api.app import Services
from fidelite.api.problems import Problem, respond
from fidelite.api.routes.events import event_response

PATH = "/v1/events"


class EventsFastPath:
    """ASGI middleware answering ``POST /v1/events`` itself (see the module doc)."""

    def __init__(self, app: ASGIApp, services: Services) -> None:
        self.app = app
        self.services = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        body = await _body(receive)
        if body is None:  # the client went away before sending it all: nobody to answer
            return
        headers = Headers(scope=scope)
        try:
            response = await event_response(
                self.services, headers.get("authorization", ""), headers.get("idempotency-key"),
                body, content_type=headers.get("content-type"),
                query=scope.get("query_string", b""),
            )  # fmt: skip
        except Problem as problem:
            response = respond(problem)
        await response(scope, receive, send)


async def _body(receive: Receive) -> bytes | None:
    """The whole request body, or None if the client disconnected first."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)
