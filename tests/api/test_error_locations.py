"""A validation error names where the field was sent: ``query.state`` for a query
parameter, not ``body.state``; the OpenAPI document lists the values ``state`` takes."""

from __future__ import annotations

from typing import Any

from fastapi import Query
from fastapi.routing import APIRoute
from starlette.requests import Request

from fidelite.api.problems import Problem, from_exception, relocated
from fidelite.api.problems import invalid as problems_invalid
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
            assert (ok.status_code, ok.json()) == (200, {"deliveries": [], "next_cursor": None})
        document = c.get("/openapi.json").json()
    (param,) = [p for p in document["paths"]["/v1/webhooks/deliveries"]["get"]["parameters"]
                if p["name"] == "state"]  # fmt: skip
    assert param["in"] == "query" and param["required"] is False
    assert {"type": "string", "enum": STATES} in param["schema"]["anyOf"]


def _endpoint(item: int, limit: int = Query(100)) -> None:
    """A route declaring the path parameter ``item`` and the query parameter ``limit``."""


ROUTE = APIRoute("/v1/x/{item}", _endpoint)


def request(query: str = "", path_params: dict[str, Any] | None = None) -> Request:
    """A request ``ROUTE`` matched, with ``query`` and ``path_params``."""
    return Request({"type": "http", "method": "GET", "path": "/v1/x/1", "headers": [],
                    "query_string": query.encode(), "path_params": path_params or {},
                    "route": ROUTE})  # fmt: skip


def test_a_domain_refusal_of_a_query_or_path_parameter_names_it_there() -> None:
    problem = from_exception(invalid("limit", "must be between 1 and 1000"))
    assert problem is not None and problem.body()["errors"][0]["location"] == "body.limit"
    moved = relocated(problem, request("limit=5000")).body()
    assert moved["detail"] == "query.limit: must be between 1 and 1000"
    assert moved["errors"] == [{"location": "query.limit", "message": "must be between 1 and 1000"}]
    assert moved["field"] == "limit"
    on_item = from_exception(invalid("item", "no such item"))
    assert on_item is not None
    assert relocated(on_item, request(path_params={"item": 3})).body()["errors"] == [
        {"location": "path.item", "message": "no such item"}]  # fmt: skip
    # a field the request did not send in its query stays in the body
    assert relocated(problem, request("other=1")).body() == problem.body()


def test_a_parameter_the_route_does_not_declare_leaves_the_error_in_the_body() -> None:
    """Sent in the query or the path but not a parameter of the route: the body it is."""
    problem = from_exception(invalid("points", "must not be 0"))
    assert problem is not None
    assert relocated(problem, request("points=3")).body() == problem.body()
    assert relocated(problem, request(path_params={"points": 3})).body() == problem.body()
    no_route = Request({"type": "http", "method": "GET", "path": "/", "headers": [],
                        "query_string": b"limit=5", "path_params": {}})  # fmt: skip
    limit = from_exception(invalid("limit", "must be between 1 and 1000"))
    assert limit is not None and relocated(limit, no_route).body() == limit.body()


def test_an_error_the_route_located_in_the_body_stays_there() -> None:
    problem = problems_invalid([{"loc": ("limit",), "msg": "too big"}], ("body",))
    assert relocated(problem, request("limit=5")).body()["errors"] == [
        {"location": "body.limit", "message": "too big"}]  # fmt: skip
    said = Problem("invalid_request", "body.limit: too big")
    assert relocated(said, request("limit=5")).body() == said.body()


def test_a_write_with_a_query_is_refused_for_its_query_first(live: Live) -> None:
    """POST /v1/members?birth_date=... with a birth date in the future in the body: the
    query is refused (a write takes no such parameter), and the body's fields are not
    read until it is gone; then the body's own error is named in the body
    (body.birth_date, not query.birth_date). An adjustment of 0 points sent with
    ?points=3: query.points, then body.points. Nothing is enrolled, adjusted or
    stored, and the Idempotency-Key stays free."""
    takes = "not a parameter of this route (it takes: none)"
    with live.client("admin") as c:
        assert c.post("/v1/members", json={"id": "bob"}).status_code == 201
        rows = live.ledger_rows()
        body = {"id": "zed", "birth_date": "2999-01-01"}
        born = c.post("/v1/members", params={"birth_date": "1990-01-01"}, json=body)
        assert born.status_code == 422, born.text
        assert (born.json()["detail"], born.json()["errors"]) == (
            f"query.birth_date: {takes}",
            [{"location": "query.birth_date", "message": takes}],
        )
        born = c.post("/v1/members", json=body)
        assert born.status_code == 422, born.text
        assert born.json()["detail"].startswith("body.birth_date: 2999-01-01 is after today")
        assert [e["location"] for e in born.json()["errors"]] == ["body.birth_date"]
        key = {"Idempotency-Key": "z-1"}
        url, zero = "/v1/members/bob/adjustments", {"points": 0, "reason": "x"}
        queried = c.post(url, params={"points": "3"}, json=zero, headers=key)
        assert queried.status_code == 422, queried.text
        assert queried.json()["errors"] == [{"location": "query.points", "message": takes}]
        bare = c.post(url, json=zero, headers=key)
        assert bare.status_code == 422, bare.text
        assert (bare.json()["detail"], bare.json()["field"]) == ("body.points: must not be 0",
                                                                 "points")  # fmt: skip
        assert c.get("/v1/members/zed").status_code == 404
        assert live.ledger_rows() == rows
        again = c.post(url, json={"points": 2, "reason": "x"}, headers=key)
        assert again.status_code == 201 and again.json()["replayed"] is False
