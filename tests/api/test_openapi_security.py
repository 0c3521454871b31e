"""The OpenAPI document declares how the API authenticates: a bearer API key on every
``/v1`` operation (none on the health checks), and the ``WWW-Authenticate`` header of
the 401. It declared no security scheme: Swagger UI offered no way to authorize (every
"try it out" on ``/v1`` got 401) and generated clients sent no ``Authorization``."""

from __future__ import annotations

import httpx

from tests.api.conftest import Live


def test_every_v1_operation_declares_the_bearer_key_it_needs(live: Live) -> None:
    with live.client(None) as anonymous:
        document = anonymous.get("/openapi.json").json()
        assert document["components"]["securitySchemes"] == {"bearerAuth": {
            "type": "http", "scheme": "bearer", "bearerFormat": "fid_<key id>_<secret>",
            "description": "An API key of the program (`fidelite apikey create --program P "
                           "--role R`), sent as `Authorization: Bearer fid_<key id>_<secret>`; "
                           "its role decides which calls it may make (403 forbidden otherwise).",
        }}  # fmt: skip
        secured, open_ = set(), set()
        for path, operations in document["paths"].items():
            for method, operation in operations.items():
                if path.startswith("/v1/"):
                    assert operation["security"] == [{"bearerAuth": []}], (method, path)
                    challenge = operation["responses"]["401"]["headers"]["WWW-Authenticate"]
                    assert challenge["schema"] == {"type": "string", "enum": ["Bearer"]}
                    secured.add((method, path))
                else:
                    assert "security" not in operation, (method, path)
                    open_.add((method, path))
        assert open_ == {("get", "/healthz"), ("get", "/readyz")}
        assert {("post", "/v1/events"), ("get", "/v1/members"),
                ("post", "/v1/adjustments:bulk")} <= secured  # fmt: skip
        assert len(secured) == 31
        refused = anonymous.get("/v1/members")
        assert (refused.status_code, refused.headers["WWW-Authenticate"]) == (401, "Bearer")
        assert refused.json()["code"] == "unauthenticated"
    scheme = document["components"]["securitySchemes"]["bearerAuth"]["scheme"]
    sent = {"Authorization": f"{scheme.capitalize()} {live.tokens['admin']}"}
    with httpx.Client(base_url=live.url, headers=sent, timeout=60) as c:
        listed = c.get("/v1/members")
        assert (listed.status_code, listed.json()["members"]) == (200, [])
