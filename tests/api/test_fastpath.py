"""``POST /v1/events`` before FastAPI's routing (:mod:`fidelite.api.fastpath`) answers
exactly as its FastAPI route does: two live servers on one database, one with the fast
path and one without, given the same requests over real HTTP (status, headers that
matter, body; ids aside, which differ by design)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fidelite.api import Settings
from fidelite.api.keys import create_key
from tests.api.conftest import Live, start_server
from tests.conftest import BACKENDS, make_database

LIMIT = 4096


@pytest.fixture(params=BACKENDS)
def pair(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Live, Live]]:
    db = make_database(request.param, request, tmp_path)
    settings = Settings(max_body_bytes=LIMIT)
    fast, fast_url = start_server(db, settings)
    plain, plain_url = start_server(db, settings, events_fast_path=False)
    tokens = {"integration": create_key(db, "shop", "integration")[1],
              "analyst": create_key(db, "shop", "analyst")[1],
              "other": create_key(db, "elsewhere", "admin")[1]}  # fmt: skip
    yield Live(fast_url, db, tokens), Live(plain_url, db, tokens)
    fast.stop()
    plain.stop()
    db.dispose()


def purchase(event_id: str, amount: str = "12.50") -> dict[str, Any]:
    return {"id": event_id, "type": "purchase", "member": f"ann-{event_id}",
            "at": "2026-11-20T10:00:00+01:00", "amount": amount}  # fmt: skip


def seen(response: httpx.Response) -> tuple[Any, ...]:
    """What a till sees, with the ids that differ between the two servers masked."""
    try:
        body: Any = response.json()
    except json.JSONDecodeError:
        body = response.text
    text = json.dumps(body, sort_keys=True)
    for marker in ("fast-", "plain-"):
        text = text.replace(marker, "ID-")
    body = json.loads(text)
    if isinstance(body, dict):
        body.pop("transactions", None)  # ledger ids: each server's own rows
    headers = {
        k: response.headers.get(k)
        for k in ("content-type", "www-authenticate", "idempotent-replayed", "retry-after")
    }
    return response.status_code, headers, body


def both(pair: tuple[Live, Live], role: str | None, body: Any, **kwargs: Any) -> list[Any]:
    """The same request to each server (ids prefixed by which); what each answered."""
    answers = []
    for live, prefix in zip(pair, ("fast-", "plain-"), strict=True):
        headers = {"Authorization": f"Bearer {pair[0].tokens[role]}"} if role else {}
        headers.update(kwargs.get("headers", {}))
        raw = body if isinstance(body, bytes) else json.dumps(body).replace("ID-", prefix)
        key = kwargs.get("key")
        if key:
            headers["Idempotency-Key"] = prefix + key
        with httpx.Client(base_url=live.url, timeout=30) as client:
            answers.append(seen(client.post("/v1/events", content=raw, headers=headers)))
    return answers


CASES: list[tuple[str, str | None, Any, dict[str, Any]]] = [
    ("processed", "integration", purchase("ID-1"), {}),
    ("duplicate", "integration", purchase("ID-1"), {}),
    ("another event under a recorded id", "integration", purchase("ID-1", "13"), {}),
    ("no key", None, purchase("ID-2"), {}),
    ("not a bearer token", None, purchase("ID-2"), {"headers": {"Authorization": "Basic x"}}),
    ("unknown key", None, purchase("ID-2"),
     {"headers": {"Authorization": "Bearer fid_nope_nope"}}),
    ("another program's key", "other", purchase("ID-2"), {}),
    ("a role that may not post events", "analyst", purchase("ID-2"), {}),
    ("not JSON", "integration", b"{not json", {}),
    ("a field missing", "integration", {"id": "ID-3", "type": "purchase"}, {}),
    ("a business rejection", "integration",
     {"id": "ID-4", "type": "refund", "member": "ann", "at": "2026-11-20T10:00:00+01:00",
      "amount": "1", "refund_of": "ID-none"}, {}),
    ("over the body limit", "integration", {**purchase("ID-5"), "pad": "x" * LIMIT}, {}),
    ("first with an Idempotency-Key", "integration", purchase("ID-6"), {"key": "k1"}),
    ("replayed", "integration", purchase("ID-6"), {"key": "k1"}),
    ("another body under the key", "integration", purchase("ID-7"), {"key": "k1"}),
    ("a malformed Idempotency-Key", "integration", purchase("ID-8"), {"key": "k" * 300}),
]  # fmt: skip


EXPECTED = [201, 200, 409, 401, 401, 401, 403, 403, 422, 422, 404, 413, 201, 201, 422, 422]


def test_the_fast_path_answers_as_the_route(pair: tuple[Live, Live]) -> None:
    statuses = []
    for name, role, body, options in CASES:
        fast, plain = both(pair, role, body, **options)
        assert fast == plain, name
        statuses.append(fast[0])
    assert statuses == EXPECTED


def test_other_methods_and_paths_go_on_to_fastapi(pair: tuple[Live, Live]) -> None:
    for live in pair:
        with httpx.Client(base_url=live.url, timeout=30) as client:
            assert client.get("/v1/events").status_code == 405
            assert client.post("/v1/events/").status_code in (307, 404)
            assert client.post("/v1/events:batch", json={"events": []}).status_code == 401
