"""A page size over the route's cap is refused naming ``query.limit``, on the members
list, the ledger and a member's redemptions (200) as on the delivery log (1,000), not
silently cut to the cap; the OpenAPI document gives each cap."""

from __future__ import annotations

import pytest

from tests.api.conftest import Live

CAPS = [("/v1/members", 200), ("/v1/members/ann/ledger", 200),
        ("/v1/members/ann/redemptions", 200), ("/v1/webhooks/deliveries", 1000)]  # fmt: skip


def refusal(cap: int) -> dict[str, object]:
    message = f"Input should be less than or equal to {cap}"
    return {"type": "https://fidelite.dev/problems/invalid_request",
            "title": "invalid request", "status": 422, "code": "invalid_request",
            "detail": f"query.limit: {message}",
            "errors": [{"location": "query.limit", "message": message}]}  # fmt: skip


@pytest.mark.parametrize(("url", "cap"), CAPS)
def test_a_limit_over_the_cap_is_refused_naming_it(live: Live, url: str, cap: int) -> None:
    with live.client("admin") as c:
        assert c.post("/v1/members", json={"id": "ann"}).status_code == 201
        for limit in (cap + 1, 2**63 - 1):
            out = c.get(url, params={"limit": limit})
            assert (out.status_code, out.json()) == (422, refusal(cap)), out.text
            assert out.headers["content-type"] == "application/problem+json"
        assert c.get(url, params={"limit": cap}).status_code == 200
        document = c.get("/openapi.json").json()
    template = url.replace("/ann/", "/{member_id}/")
    (limit,) = [p for p in document["paths"][template]["get"]["parameters"]
                if p["name"] == "limit"]  # fmt: skip
    assert (limit["in"], limit["schema"]["maximum"]) == ("query", cap)
