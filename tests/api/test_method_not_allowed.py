"""A method a path does not take is ``405 method_not_allowed`` with an ``Allow`` header
naming every method the path takes; an unknown path is ``404 not_found``."""

from __future__ import annotations

import pytest

from tests.api.conftest import Live

CASES = [
    ("PUT", "/v1/webhooks", "GET, POST"),
    ("PUT", "/v1/members", "GET, POST"),
    ("PUT", "/v1/members/ann", "DELETE, GET, PATCH"),
    ("GET", "/v1/events", "POST"),
    ("GET", "/v1/members/ann/adjustments", "POST"),
    ("DELETE", "/v1/rewards", "GET"),
    ("PUT", "/healthz", "GET"),
    # an integer path parameter takes digits only: "deliveries" is no subscription id
    ("PUT", "/v1/webhooks/deliveries", "GET"),
    ("PUT", "/v1/webhooks/12", "DELETE"),
    ("PUT", "/v1/redemptions/12:cancel", "POST"),
    ("PUT", "/v1/webhooks/deliveries/3:replay", "POST"),
]


@pytest.mark.parametrize(("method", "path", "allow"), CASES)
def test_a_405_names_the_methods_the_path_takes(
    live: Live, method: str, path: str, allow: str
) -> None:
    with live.client("admin") as c:
        out = c.request(method, path)
        assert (out.status_code, out.headers.get("allow")) == (405, allow)
        assert out.headers["content-type"] == "application/problem+json"
        assert out.json() == {
            "type": "https://fidelite.dev/problems/method_not_allowed",
            "title": "method not allowed", "status": 405, "detail": "Method Not Allowed",
            "code": "method_not_allowed",
        }  # fmt: skip
        for other in allow.split(", "):  # each method named takes the path
            taken = c.request(other, path)
            assert taken.status_code != 405, other
            assert not any(e["location"].startswith("path.")
                           for e in taken.json().get("errors", [])), taken.text  # fmt: skip
    assert live.ledger_rows() == 0


@pytest.mark.parametrize("path", ["/v1/webhooks/abc", "/v1/webhooks/deliveries/x:replay"])
def test_a_path_no_operation_takes_by_its_types_is_not_found(live: Live, path: str) -> None:
    """A method other than the path's: 404 when no route takes the path with its integer
    parameters (it was a 405 naming DELETE, which answers 422 path.subscription_id)."""
    with live.client("admin") as c:
        out = c.put(path)
    assert (out.status_code, out.json()["code"]) == (404, "not_found")
    assert "allow" not in out.headers
    assert live.ledger_rows() == 0


def test_an_unknown_path_is_not_found(live: Live) -> None:
    with live.client("admin") as c:
        out = c.get("/v1/nothing-here")
    assert (out.status_code, out.json()["code"]) == (404, "not_found")
    assert out.headers["content-type"] == "application/problem+json"
    assert "allow" not in out.headers
