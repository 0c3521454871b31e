"""A validation error names where the field was sent: ``query.state`` for a query
parameter, not ``body.state``; the OpenAPI document lists the values ``state`` takes."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from fidelite.api.problems import from_exception
from fidelite.ledger.errors import invalid
from tests.api.conftest import Live

STATES = ["pending", "failed", "delivered", "dead"]


def test_an_unknown_delivery_state_is_located_in_the_query(live: Live) -> None:
    with live.client("admin") as c:
        bad = c.get("/v1/webhooks/deliveries", params={"state": "bogus"})
        assert bad.status_code == 422
        assert bad.headers["content-type"] == "application/problem+json"
        message = "Input should be 'pending', 'failed', 'delivered' or 'dead'"
        assert bad.json() == {
            "type": "https://fidelite.dev/problems/invalid_request",
            "title": "invalid request", "status": 422, "code": "invalid_request",
            "detail": f"query.state: {message}",
            "errors": [{"location": "query.state", "message": message}],
        }  # fmt: skip
        for state in STATES:
            ok = c.get("/v1/webhooks/deliveries", params={"state": state})
            assert (ok.status_code, ok.json()) == (200, {"deliveries": []})
        document = c.get("/openapi.json").json()
    (param,) = [p for p in document["paths"]["/v1/webhooks/deliveries"]["get"]["parameters"]
                if p["name"] == "state"]  # fmt: skip
    assert param["in"] == "query" and param["required"] is False
    assert {"type": "string", "enum": STATES} in param["schema"]["anyOf"]


def request(query: str = "", path_params: dict[str, Any] | None = None) -> Request:
    return Request({"type": "http", "method": "GET", "path": "/v1/x", "headers": [],
                    "query_string": query.encode(), "path_params": path_params or {}})  # fmt: skip


def test_a_domain_refusal_of_a_query_or_path_parameter_names_it_there() -> None:
    from fidelite.api.problems import relocated

    problem = from_exception(invalid("limit", "must be between 1 and 1000"))
    assert problem is not None and problem.body()["errors"][0]["location"] == "body.limit"
    moved = relocated(problem, request("limit=5000")).body()
    assert moved["detail"] == "query.limit: must be between 1 and 1000"
    assert moved["errors"] == [{"location": "query.limit", "message": "must be between 1 and 1000"}]
    assert moved["field"] == "limit"
    in_path = relocated(problem, request(path_params={"limit": 3})).body()
    assert in_path["errors"][0]["location"] == "path.limit"
    # a field the request did not send in its query or path stays in the body
    assert relocated(problem, request("other=1")).body() == problem.body()
