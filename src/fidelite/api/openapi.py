"""What the OpenAPI document says beyond what FastAPI derives from the routes' signatures.

The routes take ``Idempotency-Key`` as an optional header (:data:`~fidelite.api.routes.
common.IdemKey`) and check it themselves, so that every route, ``POST /v1/events``'s fast
path included, refuses a missing or overlong key with the same words
(:func:`~fidelite.api.idempotency.check_key`). The document declares what those checks
enforce: the key is required by the routes of :data:`KEY_REQUIRED`, and is 1 to
:data:`~fidelite.api.idempotency.MAX_KEY_LENGTH` long everywhere.

Every ``/v1`` operation needs an API key sent as a bearer token
(:func:`~fidelite.api.access.bearer_token`), which the routes check through a dependency
FastAPI does not document: the document declares it (:data:`SECURITY_SCHEMES`), so
that Swagger UI offers to authorize its calls and generated clients send the header.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from fidelite.api.idempotency import MAX_KEY_LENGTH

KEY_REQUIRED = frozenset({
    ("post", "/v1/redemptions"),
    ("post", "/v1/members/{member_id}/adjustments"),
    ("post", "/v1/adjustments:bulk"),
    ("post", "/v1/members/{member_id}/tier:assign"),
    ("post", "/v1/coupon-campaigns/{campaign_id}/coupons"),
})  # fmt: skip
"""The operations refused without an ``Idempotency-Key`` (422 ``invalid_request`` at
``header.Idempotency-Key``): the ones whose retry without a key would spend, credit,
assign or issue twice."""

KEY_LENGTH = (
    f"1 to {MAX_KEY_LENGTH} bytes (an ASCII character is one byte; a non-ASCII one counts "
    "each byte of its UTF-8)"
)
"""How long an ``Idempotency-Key`` may be, as the refusal of another length says it."""


def key_parameter(required: bool) -> dict[str, Any]:
    """The ``Idempotency-Key`` header parameter of an operation."""
    why = ("Required: a retry without it would apply the call twice. " if required
           else "Makes the call safe to retry. ")  # fmt: skip
    return {
        "name": "Idempotency-Key", "in": "header", "required": required,
        "description": f"{why}{KEY_LENGTH}; a retry with the same key and body gets the "
                       "first answer again (header Idempotent-Replayed: true).",
        "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH,
                   "title": "Idempotency-Key"},
    }  # fmt: skip


SCHEME = "bearerAuth"
SECURITY_SCHEMES: dict[str, Any] = {SCHEME: {
    "type": "http", "scheme": "bearer", "bearerFormat": "fid_<key id>_<secret>",
    "description": "An API key of the program (`fidelite apikey create --program P --role "
                   "R`), sent as `Authorization: Bearer fid_<key id>_<secret>`; its role "
                   "decides which calls it may make (403 forbidden otherwise).",
}}  # fmt: skip
"""How every ``/v1`` operation authenticates its caller (401 without a valid key)."""

PAGED = frozenset({("get", "/v1/members"), ("get", "/v1/members/{member_id}/ledger"),
                   ("get", "/v1/members/{member_id}/redemptions")})  # fmt: skip
"""The operations whose ``limit`` is refused over the server's page size (``max_page``)."""


REPLAYED: dict[str, Any] = {
    "description": "true when this is the stored answer to an earlier call with the same "
    "Idempotency-Key (absent otherwise)",
    "schema": {"type": "string", "enum": ["true"]},
}
"""The ``Idempotent-Replayed`` header of an answer that may be replayed."""

READY: dict[str, Any] = {
    "type": "object", "required": ["status"],
    "properties": {
        "status": {
            "type": "string",
            "enum": ["ready", "not_migrated", "newer_schema", "unavailable"],
        },
        "revision": {"type": ["string", "null"], "description": "the database's revision"},
        "head": {"type": "string", "description": "the revision this version needs"},
        "reason": {"type": "string", "description": "unavailable: the error's type"},
    },
}  # fmt: skip
"""The body of ``/readyz``, ready (200) or not (503)."""


def refine(document: dict[str, Any], *, max_page: int = 200) -> None:
    """Declare in ``document`` (in place) what the routes check themselves."""
    document.setdefault("components", {}).setdefault("securitySchemes", {}).update(SECURITY_SCHEMES)
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            if path.startswith("/v1/"):
                operation["security"] = [{SCHEME: []}]
            parameters = operation.get("parameters", [])
            for i, parameter in enumerate(parameters):
                if parameter.get("in") == "header" and parameter["name"] == "Idempotency-Key":
                    parameters[i] = key_parameter((method, path) in KEY_REQUIRED)
                    _replayable(operation)
                elif (method, path) in PAGED and parameter["name"] == "limit":
                    parameter["schema"]["maximum"] = max_page
    readyz = document.get("paths", {}).get("/readyz", {}).get("get")
    if readyz is not None:
        readyz["responses"]["200"] = {
            "description": "Ready: the database answers and is migrated",
            "content": {"application/json": {"schema": READY}},
        }
        readyz["responses"]["503"] = {
            "description": "Not ready: the database does not "
            "answer (unavailable) or is not migrated to this "
            "version (not_migrated), or was upgraded by a newer "
            "fidelite (newer_schema)",
            "content": {"application/json": {"schema": READY}},
        }


def _replayable(operation: dict[str, Any]) -> None:
    """Declare ``Idempotent-Replayed`` on every answer of an operation taking a key but
    the ones never stored (401, 403, 413, 415, 429)."""
    for status, response in operation.get("responses", {}).items():
        if status not in ("401", "403", "413", "415", "429"):
            response.setdefault("headers", {})["Idempotent-Replayed"] = REPLAYED


def install(app: FastAPI, *, max_page: int = 200) -> None:
    """Make ``app.openapi()`` answer the refined document (built once, then cached)."""
    build: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            refine(build(), max_page=max_page)  # build() caches it in app.openapi_schema
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]
