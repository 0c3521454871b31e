"""The OpenAPI document declares what the API answers: every member of a problem
(``errors``, ``field``, ``retry_after``, ``available``, ``requested``), the
``Retry-After`` and ``Idempotent-Replayed`` headers, ``/readyz``'s 503, and a 409 worded
as the conflicts the API has."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fidelite.api import Settings
from fidelite.api.keys import create_key
from tests.api.conftest import Live, start_server
from tests.conftest import make_database


@pytest.fixture
def limited(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Live]:
    """A server whose keys may redeem twice, then wait (no token comes back in a test)."""
    db = make_database("sqlite", request, tmp_path)
    server, url = start_server(db, Settings(rate_per_second=0.001, rate_burst=2))
    yield Live(url, db, {"admin": create_key(db, "shop", "admin")[1]})
    server.stop()
    db.dispose()


def declared(document: dict[str, Any], path: str, method: str, status: int) -> dict[str, Any]:
    return document["paths"][path][method]["responses"][str(status)]  # type: ignore[no-any-return]


def conforms(response: httpx.Response, spec: dict[str, Any]) -> dict[str, Any]:
    """The problem ``response`` against the declared ``spec``: every member it has is
    declared, every required one is there; its headers are declared."""
    schema = spec["content"]["application/problem+json"]["schema"]
    body = response.json()
    assert set(body) <= set(schema["properties"]), set(body) - set(schema["properties"])
    assert set(schema["required"]) <= set(body)
    return body  # type: ignore[no-any-return]


def test_problems_and_headers_are_declared_as_answered(limited: Live) -> None:
    with limited.client("admin") as c:
        document = c.get("/openapi.json").json()
        assert c.post("/v1/members", json={"id": "ann"}).status_code == 201
        key = {"Idempotency-Key": "r1"}
        poor = c.post("/v1/redemptions", json={"member": "ann", "reward": "ten"}, headers=key)
        body = conforms(poor, declared(document, "/v1/redemptions", "post", 422))
        assert (body["code"], body["available"], body["requested"]) == (
            "insufficient_points", 0, 10)  # fmt: skip
        again = c.post("/v1/redemptions", json={"member": "ann", "reward": "ten"}, headers=key)
        assert again.headers["Idempotent-Replayed"] == "true"
        spec = declared(document, "/v1/redemptions", "post", 422)
        assert spec["headers"]["Idempotent-Replayed"]["schema"] == {"type": "string",
                                                                   "enum": ["true"]}  # fmt: skip
        assert "Idempotent-Replayed" in declared(document, "/v1/redemptions", "post", 201)[
            "headers"]  # fmt: skip
        limited_out = c.post("/v1/redemptions", json={"member": "ann", "reward": "ten"},
                             headers={"Idempotency-Key": "r2"})  # fmt: skip
        spec = declared(document, "/v1/redemptions", "post", 429)
        body = conforms(limited_out, spec)
        assert limited_out.status_code == 429
        assert int(limited_out.headers["Retry-After"]) == body["retry_after"] > 0
        assert spec["headers"]["Retry-After"]["schema"] == {"type": "integer"}
        invalid = c.get("/v1/members", params={"limit": 0})
        body = conforms(invalid, declared(document, "/v1/members", "get", 422))
        assert body["errors"][0]["location"] == "query.limit"
        items = declared(document, "/v1/members", "get", 422)["content"][
            "application/problem+json"]["schema"]["properties"]["errors"]["items"]  # fmt: skip
        assert set(items["required"]) == {"location", "message"} == set(body["errors"][0])
    conflict = declared(document, "/v1/events", "post", 409)["description"]
    assert "member exists" not in conflict and "still running" in conflict
    ready = document["paths"]["/readyz"]["get"]["responses"]
    assert set(ready) >= {"200", "503"}
    assert ready["503"]["content"]["application/json"]["schema"]["properties"]["status"][
        "enum"] == ["ready", "not_migrated", "newer_schema", "unavailable"]  # fmt: skip
