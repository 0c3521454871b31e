"""A query parameter a ``/v1`` read (GET) does not take is refused naming it (422
``invalid_request`` at ``query.<name>``, with the parameters the route takes), on SQLite
and PostgreSQL over real HTTP: ``?since=`` on the ledger, a guessed filter, answered the
whole unfiltered list as if it had applied."""

from __future__ import annotations

from tests.api.conftest import Live


def refusal(name: str, takes: str) -> dict[str, object]:
    message = f"not a parameter of this route (it takes: {takes})"
    return {"type": "https://fidelite.dev/problems/invalid_request",
            "title": "invalid request", "status": 422, "code": "invalid_request",
            "detail": f"query.{name}: {message}",
            "errors": [{"location": f"query.{name}", "message": message}]}  # fmt: skip


def test_a_query_parameter_the_route_does_not_take_is_refused(live: Live) -> None:
    with live.client("admin") as c:
        assert c.post("/v1/members", json={"id": "ann"}).status_code == 201
        adjusted = c.post("/v1/members/ann/adjustments", json={"points": 5, "reason": "r"},
                          headers={"Idempotency-Key": "a1"})  # fmt: skip
        assert adjusted.status_code == 201
        cases = [
            ("/v1/members/ann/ledger", {"since": "2020-01-01"}, "since", "before, currency, limit"),
            ("/v1/members", {"foo": "bar", "limit": "1"}, "foo", "cursor, limit"),
            ("/v1/webhooks/deliveries", {"cursor": "5"}, "cursor",
             "before, limit, state, subscription_id"),
            ("/v1/members/ann/timeline", {"currency": "points"}, "currency", "none"),
        ]  # fmt: skip
        for url, params, name, takes in cases:
            out = c.get(url, params=params)
            assert (out.status_code, out.json()) == (422, refusal(name, takes)), out.text
            assert out.headers["content-type"] == "application/problem+json"
        # the declared ones still work; the key is checked first
        page = c.get("/v1/members/ann/ledger", params={"limit": "1", "currency": "points"})
        assert (page.status_code, len(page.json()["entries"])) == (200, 1)
    with live.client(None) as anonymous:
        assert anonymous.get("/v1/members", params={"foo": "1"}).status_code == 401


def test_a_parameter_given_twice_is_refused(live: Live) -> None:
    """?limit=3&limit=1 answered one member, and ?currency=miles&currency=points the
    points only: which value counted was a guess. No route takes a list."""
    with live.client("admin") as c:
        for member in ("ann", "bob"):
            assert c.post("/v1/members", json={"id": member}).status_code == 201
        out = c.get("/v1/members?limit=3&limit=1")
        message = "given 2 times: give it once"
        assert (out.status_code, out.json()) == (422, {
            "type": "https://fidelite.dev/problems/invalid_request",
            "title": "invalid request", "status": 422, "code": "invalid_request",
            "detail": f"query.limit: {message}",
            "errors": [{"location": "query.limit", "message": message}],
        })  # fmt: skip
        ledger = c.get("/v1/members/ann/ledger?currency=miles&currency=points&currency=x")
        assert ledger.status_code == 422
        assert ledger.json()["errors"] == [
            {"location": "query.currency", "message": "given 3 times: give it once"}
        ]
        assert len(c.get("/v1/members?limit=3").json()["members"]) == 2
