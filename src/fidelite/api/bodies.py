"""What every route refuses in a request before reading its fields: a key given twice in
one JSON object of the body, and the NUL character (U+0000) in the body's text, a path
parameter or a query parameter.

* A key given twice (``{"member": "M1", "member": "M2"}``): JSON parsers keep the last
  one, silently, so the request would act on ``M2`` while its author (or a proxy, a log
  reader, a signature check) read ``M1``. Refused, naming the key.
* NUL: no text column of PostgreSQL can hold it (the database refused it with an
  error, a 500), while SQLite stored it. Refused on both, naming the field, as the member
  id rule names a control character (:mod:`fidelite.engine.member_id`). In an event
  (``POST /v1/events``, each event of ``POST /v1/events:batch``, both imports) the
  event's own validation refuses it (:mod:`fidelite.engine.event`), so a batch rejects
  that event alone.

:func:`checked_request` is a dependency of every route mounted with the caller's
(after the API key is checked), :func:`body_errors` the check of a raw body.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError

from fidelite.api.problems import without_bom
from fidelite.engine.event import NUL_MESSAGE

NUL = "\x00"
_ESCAPED_NUL = b"\\u0000"  # a NUL in JSON text is always written so (a raw one is invalid)
BATCH = "/v1/events:batch"  # its events are checked one by one (fidelite.engine.event)


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
    twice in one object and, when ``text``, every string or key holding NUL. Empty when
    there is none, or when the body is no JSON (its parser says why elsewhere).

    A body without the text ``\\u0000`` holds no NUL, so a valid body costs one parse
    that keeps no duplicate (the pairs of each object counted once); the errors are
    located by a second one, only for a body refused."""
    body = without_bom(raw)
    if not body:
        return []
    if not (text and _ESCAPED_NUL in body):
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
            if key in seen:
                yield ("duplicate_key", (*loc, key),
                       f"the key {key!r} is given more than once in this object: give "
                       "each key once (a JSON reader would keep only the last)")  # fmt: skip
                continue  # its value is not read again: one error per repeated key
            seen.add(key)
            yield from _located(value, (*loc, key), text)
    elif isinstance(node, list):
        for n, item in enumerate(node):
            yield from _located(item, (*loc, n), text)
    elif text and isinstance(node, str) and NUL in node:
        yield "text_nul", loc, NUL_MESSAGE


def url_errors(request: Request) -> list[dict[str, Any]]:
    """The path and query parameters holding NUL (``/v1/members/A%00B``, ``?cursor=%00``)."""
    found: list[dict[str, Any]] = []
    for name, value in request.path_params.items():
        if isinstance(value, str) and NUL in value:
            found.append({"type": "text_nul", "loc": ("path", name), "msg": NUL_MESSAGE})
    for name, value in request.query_params.multi_items():
        if NUL in name or NUL in value:
            shown = name if NUL not in name else repr(name)
            found.append({"type": "text_nul", "loc": ("query", shown), "msg": NUL_MESSAGE})
    return found


async def checked_request(request: Request) -> None:
    """422 ``invalid_request`` for a NUL in the path or the query, a key given twice in
    the body, or a NUL in the body's text (except a batch's: each of its events is
    refused on its own). Runs after the
    caller's key is checked and before the body's fields."""
    errors = url_errors(request)
    if request.method in ("POST", "PUT", "PATCH", "DELETE"):
        route = request.scope.get("route")
        path = getattr(route, "path_format", request.url.path)
        errors += body_errors(await request.body(), text=path != BATCH)
    if errors:
        raise RequestValidationError(errors)
