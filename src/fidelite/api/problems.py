"""RFC 9457 problem details: every error the API returns is ``application/problem+json``
with a stable ``type`` (``https://fidelite.dev/problems/<code>``), a ``title``, the
``status`` and a ``detail`` for people; validation errors list each field in
``errors``. Business rejections carry the engine's or ledger's code. A stack trace
never reaches a client: unexpected failures are logged and answered with a bare 500.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from fidelite.ledger import Rejected
from fidelite.processing import ProcessingError
from fidelite.webhooks.errors import WebhookError

BASE = "https://fidelite.dev/problems/"
MEDIA_TYPE = "application/problem+json"
log = logging.getLogger("fidelite.api")

# HTTP status of each business code; anything not listed is 422 (understood, refused).
STATUS: dict[str, int] = {
    "unknown_member": 404,
    "unknown_program": 404,
    "unknown_transaction": 404,
    "unknown_redemption": 404,
    "unknown_purchase": 404,
    "unknown_event": 404,
    "unknown_subscription": 404,
    "unknown_delivery": 404,
    "unknown_campaign": 404,
    "not_found": 404,
    "member_exists": 409,
    "idempotency_conflict": 409,
    "event_id_conflict": 409,
    "request_in_flight": 409,
    "unauthenticated": 401,
    "forbidden": 403,
    "wrong_program": 403,
    "adjustment_over_limit": 403,
    "payload_too_large": 413,
    "rate_limited": 429,
    "method_not_allowed": 405,
}


PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "code"],
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string", "description": "Stable machine-readable code."},
    },
}
# The problems any /v1 route may answer, declared in the OpenAPI document.
RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"description": text, "content": {MEDIA_TYPE: {"schema": PROBLEM_SCHEMA}}}
    for status, text in (
        (401, "No, unknown or revoked API key"),
        (403, "Key of another program, or a role without access"),
        (404, "Unknown member, event, redemption or subscription"),
        (409, "Conflict: member exists, key still running, event id recorded otherwise"),
        (413, "Request body too large"),
        (422, "Invalid request, or a business rejection (see code)"),
        (429, "Rate limit reached (see Retry-After)"),
    )
}


class Problem(Exception):
    """An error answered as problem+json."""

    def __init__(self, code: str, detail: str, *, status: int | None = None, **extra: Any) -> None:
        self.code = code
        self.detail = detail
        self.status = status or STATUS.get(code, 422)
        self.extra = extra
        super().__init__(f"{code}: {detail}")

    def body(self) -> dict[str, Any]:
        return {"type": BASE + self.code, "title": self.code.replace("_", " "),
                "status": self.status, "detail": self.detail, "code": self.code,
                **self.extra}  # fmt: skip


def respond(problem: Problem) -> JSONResponse:
    headers = {}
    if "retry_after" in problem.extra:
        headers["Retry-After"] = str(problem.extra["retry_after"])
    if problem.status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return JSONResponse(problem.body(), problem.status, headers=headers, media_type=MEDIA_TYPE)


def from_exception(exc: Exception) -> Problem | None:
    """The problem a domain exception stands for (None: not a business rejection).

    ``unknown_member`` is one problem whichever layer refuses: the wording of
    :func:`fidelite.ledger.no_member` and ``field`` ``member_ref``, as the ledger's."""
    if isinstance(exc, Problem):
        return exc
    if isinstance(exc, Rejected):
        extra: dict[str, Any] = {"field": exc.field} if exc.field else {}
        return Problem(exc.code.value, exc.message, **extra, **exc.detail)
    if isinstance(exc, ProcessingError):  # its detail's figures go with it, as a Rejected's
        named: dict[str, Any] = {"field": "member_ref"} if exc.code == "unknown_member" else {}
        return Problem(exc.code, exc.message, **named, **exc.detail)
    if isinstance(exc, WebhookError):
        fields: dict[str, Any] = {"field": exc.field} if exc.field else {}
        return Problem(exc.code, exc.message, **fields)
    return None


def invalid(errors: Sequence[Any], prefix: tuple[str, ...] = ()) -> Problem:
    """``422 invalid_request`` listing every field error (pydantic's error dicts), each
    located as ``body.amount``; ``prefix`` is put before each error's own location."""
    found = [{"location": ".".join(str(p) for p in (*prefix, *e.get("loc", ()))),
              "message": e.get("msg", "")} for e in errors]  # fmt: skip
    where = found[0]["location"] if found else "request"
    detail = f"{where}: {found[0]['message']}" if found else "invalid request"
    return Problem("invalid_request", detail, status=422, errors=found)


def install(app: FastAPI) -> None:
    """Answer every error of ``app`` as problem+json."""

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return respond(invalid(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return respond(Problem(code, str(exc.detail), status=exc.status_code))

    async def _business(_request: Request, exc: Exception) -> JSONResponse:
        problem = from_exception(exc)
        assert problem is not None
        return respond(problem)

    for kind in (Problem, Rejected, ProcessingError, WebhookError):
        app.add_exception_handler(kind, _business)

    @app.exception_handler(Exception)
    async def _any(request: Request, exc: Exception) -> JSONResponse:
        problem = from_exception(exc)
        if problem is not None:
            return respond(problem)
        log.exception("unexpected failure on %s %s", request.method, request.url.path)
        return respond(
            Problem(
                "internal_error",
                "the server failed; nothing was changed unless a retry with the same key says so",
                status=500,
            )
        )
