"""What every route refuses in a request before reading its fields: a key given twice in
one JSON object of the body, the NUL character (U+0000) in the body's text, a path
parameter or a query parameter, a lone surrogate in the body's text, and a query
parameter the route does not take (a read's or a write's).

* A key given twice (``{"member": "M1", "member": "M2"}``): JSON parsers keep the last
  one, silently, so the request would act on ``M2`` while its author (or a proxy, a log
  reader, a signature check) read ``M1``. Refused, naming the key.
* NUL: no text column of PostgreSQL can hold it (the database refused it with an
  error, a 500), while SQLite stored it. Refused on both, naming the field, as the member
  id rule names a control character (:mod:`fidelite.engine.member_id`). In an event
  (``POST /v1/events``, each event of ``POST /v1/events:batch``, both imports) the
  event's own validation refuses it (:mod:`fidelite.engine.event`), so a batch rejects
  that event alone.
* A lone surrogate (``"\\ud800"``: valid JSON, half of a character): no UTF-8 answer
  or database column can carry it. A bulk adjustment naming such a member committed
  the other members' credits, then could not answer (a 500 saying nothing was
  changed). Refused with the request, naming the field (the key's own location shown
  with ``\\ud800`` written out); in ``POST /v1/events:batch``, the event holding it is
  rejected alone (:func:`lone_surrogates`, checked by that route).

:func:`checked_request` is a dependency of every route mounted with the caller's
(after the API key is checked), :func:`body_errors` the check of a raw body.
"""

from __future__ import annotations

import functools
import json
import re
import types
import typing
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from starlette.datastructures import QueryParams

from fidelite.api.problems import declared_params, without_bom
from fidelite.engine.event import NUL_MESSAGE, encodable

NUL = "\x00"
_ESCAPED_NUL = b"\\u0000"  # a NUL in JSON text is always written so (a raw one is invalid)
BATCH = "/v1/events:batch"  # its events are checked one by one (fidelite.engine.event)
# What a body holding a surrogate holds: its escape (\ud800-\udfff, a pair included) or
# its UTF-8 bytes (ED A0-BF ..), which Python's JSON reader also takes in
_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]|\xed[\xa0-\xbf]")


class _Repeated(Exception):
    """A JSON object of the body names a key twice (located by :func:`_located`)."""


class _Pairs(list[tuple[str, Any]]):
    """A JSON object read as its pairs, in order, repeated keys kept."""


def _once(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) != len(pairs):
        raise _Repeated
    return found


def body_errors(raw: bytes, *, text: bool = True) -> list[dict[str, Any]]:
    """The errors of a JSON body (located ``("body", ...)``, as pydantic's): every key given
    twice in one object and, when ``text``, every string or key holding NUL or a lone
    surrogate. Empty when there is none, or when the body is no JSON (its parser says
    why elsewhere).

    A body without the text ``\\u0000`` holds no NUL, and one without a surrogate's
    escape or bytes no lone surrogate, so a valid body costs one parse that keeps no
    duplicate (the pairs of each object counted once); the errors are located by a
    second one, only for a body refused or holding such text."""
    body = without_bom(raw)
    if not body:
        return []
    if not (text and (_ESCAPED_NUL in body or _SURROGATE.search(body))):
        try:
            json.loads(body, object_pairs_hook=_once)
        except _Repeated:
            pass
        except (ValueError, RecursionError):  # no JSON: not ours to word
            return []
        else:
            return []
    try:
        tree = json.loads(body, object_pairs_hook=_Pairs)
    except (ValueError, RecursionError):
        return []
    return [{"type": kind, "loc": ("body", *loc), "msg": msg}
            for kind, loc, msg in _located(tree, (), text)]  # fmt: skip


Found = tuple[str, tuple[Any, ...], str]  # the error's type, location and message


def _located(node: Any, loc: tuple[Any, ...], text: bool) -> Iterator[Found]:
    if isinstance(node, _Pairs):
        seen: set[str] = set()
        for key, value in node:
            if text and NUL in key:
                yield "text_nul", (*loc, key), f"the name {key!r} {NUL_MESSAGE}"
            if text and (why := encodable(key)) is not None:
                yield "text_not_utf8", (*loc, shown(key)), why
            if key in seen:
                yield ("duplicate_key", (*loc, shown(key)),
                       f"the key {key!r} is given more than once in this object: give "
                       "each key once (a JSON reader would keep only the last)")  # fmt: skip
                continue  # its value is not read again: one error per repeated key
            seen.add(key)
            yield from _located(value, (*loc, shown(key)), text)
    elif isinstance(node, list):
        for n, item in enumerate(node):
            yield from _located(item, (*loc, n), text)
    elif text and isinstance(node, str):
        if NUL in node:
            yield "text_nul", loc, NUL_MESSAGE
        if (why := encodable(node)) is not None:
            yield "text_not_utf8", loc, why


def shown(text: str) -> str:
    """``text`` as an answer can carry it: a lone surrogate written out (``\\ud800``)."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def lone_surrogates(node: Any) -> list[tuple[tuple[Any, ...], str]]:
    """Where ``node`` (JSON as Python reads it) holds text with a lone surrogate, in a
    value or a key (shown with :func:`shown`), and why: ``(location, message)`` each.
    Text UTF-8 can write whole (nearly always) costs one encoding, not a walk."""
    try:
        json.dumps(node, ensure_ascii=False, default=str).encode("utf-8")
    except UnicodeEncodeError:
        return _surrogates(node, ())
    return []


def _surrogates(node: Any, loc: tuple[Any, ...]) -> list[tuple[tuple[Any, ...], str]]:
    found: list[tuple[tuple[Any, ...], str]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            step = shown(key) if isinstance(key, str) else key
            if step != key:
                found.append(((*loc, step), str(encodable(key))))
            found += _surrogates(value, (*loc, step))
    elif isinstance(node, list):
        for n, item in enumerate(node):
            found += _surrogates(item, (*loc, n))
    elif isinstance(node, str) and (why := encodable(node)) is not None:
        found.append((loc, why))
    return found


def url_errors(request: Request) -> list[dict[str, Any]]:
    """The path and query parameters holding NUL (``/v1/members/A%00B``, ``?cursor=%00``)."""
    found: list[dict[str, Any]] = []
    for name, value in request.path_params.items():
        if isinstance(value, str) and NUL in value:
            found.append({"type": "text_nul", "loc": ("path", name), "msg": NUL_MESSAGE})
    return found + _nul_in_query(request.query_params)


def _nul_in_query(query: QueryParams) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for name, value in query.multi_items():
        if NUL in name or NUL in value:
            shown = name if NUL not in name else repr(name)
            found.append({"type": "text_nul", "loc": ("query", shown), "msg": NUL_MESSAGE})
    return found


def unknown_query(request: Request) -> list[dict[str, Any]]:
    """The query parameters the route does not take (``?since=`` on the ledger, a guessed
    filter, ``?dry_run=1`` on an adjustment): each refused naming it, with the ones it
    takes, rather than answered as if it were not there (the whole list unfiltered, a
    member credited for real); and one it takes given twice. Reads and writes alike."""
    if not request.query_params:
        return []
    declared = declared_params(request)
    taken = sorted(name for name, place in declared.items() if place == "query")
    return _unknown(request.query_params, taken)


def _unknown(query: QueryParams, taken: list[str]) -> list[dict[str, Any]]:
    """Each parameter the route does not take, then each it takes given more than once
    (``?limit=3&limit=1``: no route takes a list, and which one counts is a guess)."""
    unknown = [name for name in dict.fromkeys(query) if name not in taken]
    told = ", ".join(taken) if taken else "none"
    twice = [name for name in dict.fromkeys(query)
             if name in taken and len(query.getlist(name)) > 1]  # fmt: skip
    return [{"type": "extra_forbidden", "loc": ("query", name),
             "msg": f"not a parameter of this route (it takes: {told})"}
            for name in unknown] + [
        {"type": "value_error", "loc": ("query", name),
         "msg": f"given {len(query.getlist(name))} times: give it once"}
        for name in twice
    ]  # fmt: skip


def query_errors(query_string: bytes, raw: bytes) -> list[dict[str, Any]]:
    """What :func:`checked_request` refuses in a request to a route taking no query
    parameter (``POST /v1/events``, answered before routing): its query's NUL, or else
    each of its parameters, then the body's errors (:func:`body_errors`). Called only
    for a request with a query string, so the usual request costs nothing."""
    query = QueryParams(query_string)
    errors = _nul_in_query(query) or _unknown(query, [])
    return errors + body_errors(raw) if errors else []


async def checked_request(request: Request) -> None:
    """422 ``invalid_request`` for a NUL in the path or the query, else a query parameter
    the route does not take (:func:`unknown_query`), and a key given twice in the body,
    or a NUL or a lone surrogate in the body's text (except a batch's: each of its
    events is refused on its own); the query's errors listed first. Runs after the
    caller's key is checked and before the body's fields: a request refused here has
    its fields unread (their errors come once the query and the text are right) and
    changes nothing."""
    errors = url_errors(request)
    if not errors:
        errors = unknown_query(request)
    if request.method in ("POST", "PUT", "PATCH", "DELETE"):
        route = request.scope.get("route")
        path = getattr(route, "path_format", request.url.path)
        raw = await request.body()
        errors += body_errors(raw, text=path != BATCH)
        if not errors:
            errors = unread_body(route, raw) + inexact_whole_numbers(route, raw)
    if errors:
        raise RequestValidationError(errors)


def unread_body(route: Any, raw: bytes) -> list[dict[str, Any]]:
    """A body that is no JSON sent to a route that reads none (``POST
    /v1/redemptions/{id}:cancel``): refused as a route reading a body refuses it
    (``json_invalid``), rather than the request done as if it said nothing: what its
    author meant is unknown. Empty: no body, a JSON one (never read), or the route
    reads its body (FastAPI's parser, or its own, words its errors)."""
    if route is None or getattr(route, "body_field", True) is not None:
        return []
    if "requestBody" in (getattr(route, "openapi_extra", None) or {}):  # reads it itself
        return []
    body = without_bom(raw)
    if not body.strip():
        return []
    try:
        json.loads(body)
    except json.JSONDecodeError as exc:
        return [{"type": "json_invalid", "loc": ("body", exc.pos), "msg": "JSON decode error",
                 "input": {}, "ctx": {"error": exc.msg}}]  # fmt: skip
    except (ValueError, RecursionError):  # not UTF-8, too deep
        return [{"type": "json_invalid", "loc": ("body", 0), "msg": "JSON decode error",
                 "input": {}, "ctx": {"error": "it cannot be parsed"}}]  # fmt: skip
    return []


def inexact_whole_numbers(route: Any, raw: bytes) -> list[dict[str, Any]]:
    """Each whole-number field of the route's body (an adjustment's ``points``, a coupon
    batch's ``count``) written with a fraction: ``4999.999999999999999``, read as a
    binary float, is 5000.0, which a whole number takes, so 5000 points were credited
    for a number that is not whole. Read here exactly (as decimals); a fraction that is
    zero (``500.0``, ``5e2``) is the whole number it says, as before. Parsed only for a
    route whose body has such a field and a body writing a fraction or an exponent."""
    names = _whole_fields(route)
    if not names or not re.search(rb"[.eE]", raw):
        return []
    try:
        tree = json.loads(without_bom(raw), parse_float=Decimal)
    except (ValueError, RecursionError):
        return []
    if not isinstance(tree, dict):
        return []
    return [{"type": "int_from_float", "loc": ("body", name),
             "msg": f"must be a whole number, got {tree[name]}",
             "input": str(tree[name])}
            for name in names
            if isinstance(tree.get(name), Decimal) and tree[name].is_finite()
            and tree[name] != tree[name].to_integral_value()]  # fmt: skip


def _whole_fields(route: Any) -> tuple[str, ...]:
    field = getattr(route, "body_field", None)
    if field is None:
        return ()
    info = getattr(field, "field_info", None)
    return _model_whole_fields(getattr(info, "annotation", None))


@functools.cache
def _model_whole_fields(annotation: Any) -> tuple[str, ...]:
    """The top-level fields of a body model typed ``int`` (or ``int | None``)."""
    models = [a for a in _members(annotation) if isinstance(a, type) and issubclass(a, BaseModel)]
    found: list[str] = []
    for model in models:
        for name, info in model.model_fields.items():
            if int in _members(info.annotation) and bool not in _members(info.annotation):
                found.append(info.alias or name)
    return tuple(found)


def _members(annotation: Any) -> tuple[Any, ...]:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return typing.get_args(annotation)
    return (annotation,)
