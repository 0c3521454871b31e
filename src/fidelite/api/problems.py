"""RFC 9457 problem details: every error the API returns is ``application/problem+json``
with a stable ``type`` (``https://fidelite.dev/problems/<code>``), a ``title``, the
``status`` and a ``detail`` for people; validation errors list each field in
``errors``. Business rejections carry the engine's or ledger's code. A stack trace
never reaches a client: unexpected failures are logged and answered with a bare 500.
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Sequence
from typing import Any

import pydantic_core
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from fidelite.ledger import Rejected
from fidelite.processing import ProcessingError
from fidelite.webhooks.errors import WebhookError

BASE = "https://fidelite.dev/problems/"
MEDIA_TYPE = "application/problem+json"
PARSE_FAILED = "There was an error parsing the body"  # FastAPI's 400, cause attached
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
    "subscription_removed": 409,
    "unauthenticated": 401,
    "forbidden": 403,
    "wrong_program": 403,
    "adjustment_over_limit": 403,
    "payload_too_large": 413,
    "rate_limited": 429,
    "method_not_allowed": 405,
    "unsupported_media_type": 415,
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
        "errors": {
            "type": "array",
            "description": "invalid_request: every field refused, the first one in detail.",
            "items": {"type": "object", "required": ["location", "message"], "properties": {
                "location": {"type": "string", "examples": ["body.points", "query.limit",
                                                             "header.Idempotency-Key"]},
                "message": {"type": "string"}}},
        },
        "field": {"type": "string", "description": "The field a business rejection is about.",
                  "examples": ["member_ref", "currency"]},
        "retry_after": {"type": "integer", "description": "rate_limited: seconds to wait, as "
                        "the Retry-After header says."},
        "available": {"type": "integer", "description": "insufficient_points: the points "
                      "the member may spend."},
        "requested": {"type": "integer", "description": "insufficient_points: the points "
                      "asked for."},
    },
    "additionalProperties": True,  # a rejection's own details (e.g. event_in_future's at)
}  # fmt: skip
RETRY_AFTER: dict[str, Any] = {
    "description": "Seconds to wait before the call may pass.", "schema": {"type": "integer"},
}  # fmt: skip
CHALLENGE: dict[str, Any] = {
    "description": "How to authenticate: Bearer (an API key).",
    "schema": {"type": "string", "enum": ["Bearer"]},
}  # fmt: skip
# The problems any /v1 route may answer, declared in the OpenAPI document.
RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"description": text, "content": {MEDIA_TYPE: {"schema": PROBLEM_SCHEMA}},
             **({"headers": {"Retry-After": RETRY_AFTER}} if status == 429 else {}),
             **({"headers": {"WWW-Authenticate": CHALLENGE}} if status == 401 else {})}
    for status, text in (
        (401, "No, unknown or revoked API key"),
        (403, "Key of another program, or a role without access"),
        (404, "Unknown member, event, redemption or subscription"),
        (409, "Conflict: a request with this Idempotency-Key still running, an event id "
              "recorded for another event, a webhook subscription removed since its key's "
              "first call"),
        (413, "Request body too large"),
        (415, "Request body sent as another media type than JSON"),
        (422, "Invalid request, or a business rejection (see code)"),
        (429, "Rate limit reached (see Retry-After)"),
    )
}  # fmt: skip


class Problem(Exception):
    """An error answered as problem+json."""

    def __init__(self, code: str, detail: str, *, status: int | None = None, **extra: Any) -> None:
        self.guessed = False  # True: its error was put in the body for want of a location
        if code == "invalid_request" and "errors" not in extra:
            detail, extra["errors"], self.guessed = _located(detail)
        self.code = code
        self.detail = detail
        self.status = status or STATUS.get(code, 422)
        self.extra = extra
        super().__init__(f"{code}: {detail}")

    def body(self) -> dict[str, Any]:
        return {"type": BASE + self.code, "title": self.code.replace("_", " "),
                "status": self.status, "detail": self.detail, "code": self.code,
                **self.extra}  # fmt: skip


def _located(detail: str) -> tuple[str, list[dict[str, str]], bool]:
    """An ``invalid_request`` raised as ``"<field>: <message>"``, located as a validation
    error is (``body.points``, ``header.Idempotency-Key``), with its ``errors`` list, and
    whether the location is a guess: a bare field name (as the engine and the ledger
    give it) is put in the body, where :func:`relocated` may find it was not."""
    where, sep, message = detail.partition(": ")
    if not sep:
        return detail, [{"location": "request", "message": detail}], False
    guessed = False
    if where.lower() == "idempotency-key":
        where = "header.Idempotency-Key"
    elif where.split(".")[0] not in ("body", "query", "path", "header"):
        where, guessed = f"body.{where}", True
    return f"{where}: {message}", [{"location": where, "message": message}], guessed


def relocated(problem: Problem, request: Request) -> Problem:
    """``problem`` with its error located where ``request`` sent the field, when the
    domain named the field without saying where (the engine and the ledger name a field,
    and :func:`_located` puts it in the body): ``query.<field>`` or ``path.<field>`` for
    a query or path parameter the matched route declares (and, for the query, that the
    request sent). An error located by the route itself (``body.birth_date`` checked in
    the body), a field the route does not take as a parameter, and any other problem
    are returned as they are."""
    errors = problem.extra.get("errors")
    if not problem.guessed or not isinstance(errors, list):
        return problem
    declared = declared_params(request)
    moved = [_moved(e, request, declared) for e in errors]
    if moved == errors:
        return problem
    detail = f"{moved[0]['location']}: {moved[0]['message']}" if moved else problem.detail
    return Problem(problem.code, detail, status=problem.status,
                   **{**problem.extra, "errors": moved})  # fmt: skip


def declared_params(request: Request) -> dict[str, str]:
    """The query and path parameters of the route ``request`` matched (its signature and
    its dependencies'), by the name they are sent under: ``"query"`` or ``"path"``.
    Empty when no route matched."""
    found: dict[str, str] = {}
    todo = [getattr(request.scope.get("route"), "dependant", None)]
    while todo:
        dependant = todo.pop()
        if dependant is None:
            continue
        for where, params in (("path", dependant.path_params),
                              ("query", dependant.query_params)):  # fmt: skip
            found.update({p.alias: where for p in params if p.alias not in found})
        todo.extend(dependant.dependencies)
    return found


def _moved(error: dict[str, str], request: Request, declared: dict[str, str]) -> dict[str, str]:
    """One error of :func:`relocated`."""
    where, _, name = str(error.get("location", "")).partition(".")
    field = name.split(".")[0]
    if where != "body" or not field:
        return error
    place = declared.get(field)
    if place == "query" and field in request.query_params:
        return {**error, "location": f"query.{name}"}
    if place == "path" and field in request.path_params:
        return {**error, "location": f"path.{name}"}
    return error


def unsupported_media(content_type: str | None) -> Problem | None:
    """``415 unsupported_media_type`` for a body sent as anything but JSON: a
    ``Content-Type`` other than ``application/json`` or ``application/<x>+json`` (none
    at all is read as JSON). None: the body is to be read as JSON."""
    if not content_type:
        return None
    media = content_type.partition(";")[0].strip().lower()
    if media == "application/json" or (media.startswith("application/")
                                       and media.endswith("+json")):  # fmt: skip
        return None
    return Problem("unsupported_media_type", f"send the body as JSON with 'Content-Type: "
                   f"application/json', not {media!r}", status=415)  # fmt: skip


_LONE = re.compile(r"[\ud800-\udfff]")


def carried(value: Any) -> Any:
    """``value`` (JSON-ready) with every lone surrogate of its text, keys included,
    replaced by U+FFFD: what a UTF-8 answer or a stored answer can carry."""
    if isinstance(value, str):
        return _LONE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {carried(k): carried(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [carried(v) for v in value]
    return value


class Answer(JSONResponse):
    """A JSON answer that is always sent: text UTF-8 cannot write (a lone surrogate,
    ``"\\ud800"``, repeated from a request) gets U+FFFD in its place (:func:`carried`),
    never a failure to encode after the request has done its work."""

    def render(self, content: Any) -> bytes:
        try:
            return super().render(content)
        except UnicodeEncodeError:
            return super().render(carried(content))


def respond(problem: Problem, headers: dict[str, str] | None = None) -> JSONResponse:
    """``problem`` as problem+json, with ``headers`` (e.g. a 405's ``Allow``) and the
    ones the problem implies (``Retry-After``, ``WWW-Authenticate``)."""
    headers = dict(headers or {})
    if "retry_after" in problem.extra:
        headers["Retry-After"] = str(problem.extra["retry_after"])
    if problem.status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return Answer(problem.body(), problem.status, headers=headers, media_type=MEDIA_TYPE)


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
              "message": _message(e)} for e in errors]  # fmt: skip
    where = found[0]["location"] if found else "request"
    detail = f"{where}: {found[0]['message']}" if found else "invalid request"
    return Problem("invalid_request", detail, status=422, errors=found)


def _message(error: Any) -> str:
    """A validation error's message; a body that is no JSON says why and where."""
    if error.get("type") == "json_invalid":
        reason = (error.get("ctx") or {}).get("error") or error.get("msg", "")
        return f"the body is not valid JSON: {reason}"
    return str(error.get("msg", ""))


def not_json(reason: str) -> Problem:
    """``422 invalid_request`` for a body that cannot be read as JSON."""
    return invalid([{"loc": ("body",), "msg": f"the body is not valid JSON: {reason}"}])


def _json_errors(exc: RequestValidationError) -> list[Any]:
    """The request's errors, a JSON syntax error located at ``body`` (not at its
    character offset) and told at its line and column, as ``POST /v1/events`` tells it."""
    found: list[Any] = []
    for error in exc.errors():
        loc = tuple(error.get("loc", ()))
        if error.get("type") == "json_invalid" and len(loc) == 2 and isinstance(loc[1], int):
            doc = exc.body if isinstance(exc.body, str) else ""
            line = doc.count("\n", 0, loc[1]) + 1
            column = loc[1] - (doc.rfind("\n", 0, loc[1]) + 1) + 1
            said = str((error.get("ctx") or {}).get("error") or "invalid JSON")
            reason = f"{said[:1].lower()}{said[1:]} at line {line} column {column}"
            error = {"type": "json_invalid", "loc": ("body",), "ctx": {"error": reason}}
        found.append(error)
    return found


BOM = b"\xef\xbb\xbf"
"""The UTF-8 byte order mark: a body may start with it on every route (RFC 8259 lets a
JSON parser ignore it; FastAPI's parsing of the other routes' bodies does)."""


def without_bom(raw: bytes) -> bytes:
    """The JSON text of a request body: ``raw`` without a leading :data:`BOM`."""
    return raw[len(BOM) :] if raw.startswith(BOM) else raw


def unreadable_errors(errors: Sequence[Any], text: bytes) -> list[Any]:
    """pydantic's errors for a body parsed from ``text`` (:func:`without_bom`), a JSON
    syntax error told as the other routes tell theirs: bad UTF-8 or too deep a nesting
    by :func:`_unreadable` (``it is not UTF-8 text (byte 0xff at offset 10)``, ``it is
    nested too deeply``), any other in the words of Python's parser, which FastAPI uses
    (``expecting value at line 1 column 4``), not pydantic's (``invalid unicode code
    point``, ``recursion limit exceeded``, ``EOF while parsing a value at line 1 column
    3``). Parsed again only when the body was refused: no cost to a valid one."""
    found: list[Any] = []
    for error in errors:
        if error.get("type") == "json_invalid":
            said = str((error.get("ctx") or {}).get("error", ""))
            cause: BaseException | None = None
            try:
                decoded = text.decode("utf-8")
            except UnicodeDecodeError as exc:
                cause = exc
            if cause is None and said.startswith("recursion limit exceeded"):
                cause = RecursionError()
            if cause is not None:
                error = {**error, "ctx": {"error": _unreadable(cause)}}
            elif (python := _python_syntax_error(decoded)) is not None:
                error = {**error, "ctx": {"error": python}}
        found.append(error)
    return found


def _python_syntax_error(text: str) -> str | None:
    """What Python's JSON parser says of ``text``, at its line and column, as
    :func:`_json_errors` words FastAPI's (None: it reads it, or stops on its depth)."""
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        return f"{exc.msg[:1].lower()}{exc.msg[1:]} at line {exc.lineno} column {exc.colno}"
    except (RecursionError, ValueError):
        return None
    return None


def _unreadable(exc: BaseException | None) -> str:
    """Why a JSON body could not be parsed at all (the cause of FastAPI's bare 400)."""
    if isinstance(exc, UnicodeDecodeError):
        return f"it is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start})"
    if isinstance(exc, RecursionError):
        return "it is nested too deeply"
    return CANNOT_PARSE


CANNOT_PARSE = "it cannot be parsed"


def _number_problem(text: bytes) -> str | None:
    """What the parser of ``POST /v1/events`` says of a body Python's parser refused
    for a number it will not convert (more than 4,300 digits): ``number out of range at
    line 1 column 4385``, so every route words it alike (None: that parser reads it)."""
    try:
        pydantic_core.from_json(text)
    except ValueError as exc:
        said = str(exc)
        return said if said.startswith("number out of range") else None
    return None


HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})


def allowed(request: Request, named: str) -> str | None:
    """The ``Allow`` header of a 405: the methods the OpenAPI document gives the
    request's path, every route of it (Starlette's ``named`` lists only the first
    route's: ``GET`` for ``PUT /v1/webhooks``, which also takes ``POST``); ``named`` for
    a path the document leaves out (``/openapi.json``).

    A path parameter the document types as an integer takes digits only, as Starlette's
    ``int`` convertor does: ``/v1/webhooks/deliveries`` is not a subscription's path, so
    ``DELETE`` (which would answer ``422 path.subscription_id``) is not named. None: the
    path has templates in the document but no operation takes it (a 404)."""
    paths: dict[str, Any] = request.app.openapi().get("paths", {})
    path, methods, untyped = request.url.path, set(), False
    for template, operations in paths.items():
        if not _template(template, frozenset()).fullmatch(path):
            continue
        untyped = True
        for method, operation in operations.items():
            if method in HTTP_METHODS and _template(template, _integers(operation)).fullmatch(path):
                methods.add(method.upper())
    if methods:
        return ", ".join(sorted(methods))
    return None if untyped else named


def _integers(operation: dict[str, Any]) -> frozenset[str]:
    """The path parameters an OpenAPI operation types as integers."""
    return frozenset(
        p["name"] for p in operation.get("parameters", [])
        if p.get("in") == "path" and (p.get("schema") or {}).get("type") == "integer"
    )  # fmt: skip


@functools.cache
def _template(path: str, integers: frozenset[str]) -> re.Pattern[str]:
    """The pattern of an OpenAPI path template (``/v1/members/{member_id}``): a parameter
    is a segment, of digits for one of ``integers``."""
    pattern, end = "", 0
    for found in re.finditer(r"\{([^}/]+)\}", path):
        pattern += re.escape(path[end : found.start()])
        pattern += "[0-9]+" if found.group(1) in integers else "[^/]+"
        end = found.end()
    return re.compile(pattern + re.escape(path[end:]))


async def _caller_refused(request: Request) -> Problem | None:
    """The 401/403 a ``/v1`` request gets before anything about its body: a caller
    without a valid key learns nothing of the request's validation."""
    if not request.url.path.startswith("/v1/") or request.scope.get("route") is None:
        return None
    from fidelite.api.access import caller  # access imports this module

    try:
        await run_in_threadpool(caller, request)
    except Problem as problem:
        return problem
    return None


def install(app: FastAPI) -> None:
    """Answer every error of ``app`` as problem+json."""

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        refused = await _caller_refused(request)
        if refused is not None:
            return respond(refused)
        errors = _json_errors(exc)
        about_body = any(tuple(e.get("loc", ()))[:1] == ("body",) for e in errors)
        media = unsupported_media(request.headers.get("content-type"))
        if about_body and media is not None:
            return respond(media)
        return respond(invalid(errors))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and exc.detail == PARSE_FAILED:  # FastAPI's body parsing
            refused = await _caller_refused(request)
            cause = exc.__cause__
            why = _unreadable(cause)
            if why == CANNOT_PARSE and isinstance(cause, ValueError):  # a 5,000-digit number
                why = _number_problem(without_bom(await request.body())) or why
            return respond(refused or not_json(why))
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        problem = Problem(code, str(exc.detail), status=exc.status_code)
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            methods = allowed(request, headers.get("Allow", ""))
            if methods is None:  # no operation takes the path: not a 405 but a 404
                return respond(Problem("not_found", "Not Found", status=404))
            headers["Allow"] = methods
        return respond(problem, headers)

    async def _business(request: Request, exc: Exception) -> JSONResponse:
        problem = from_exception(exc)
        assert problem is not None
        return respond(relocated(problem, request))

    for kind in (Problem, Rejected, ProcessingError, WebhookError):
        app.add_exception_handler(kind, _business)

    @app.exception_handler(Exception)
    async def _any(request: Request, exc: Exception) -> JSONResponse:
        problem = from_exception(exc)
        if problem is not None:
            return respond(relocated(problem, request))
        log.exception("unexpected failure on %s %s", request.method, request.url.path)
        return respond(
            Problem(
                "internal_error",
                "the server failed; nothing was changed unless a retry with the same key says so",
                status=500,
            )
        )
