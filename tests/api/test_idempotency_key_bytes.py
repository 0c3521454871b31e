"""An Idempotency-Key is 1 to 200 bytes as sent (header values are read one character
per byte): the refusal says bytes, and a key of 200 bytes of non-ASCII text is taken
and stored whole, on PostgreSQL too (the column holds 200 characters)."""

from __future__ import annotations

from sqlalchemy import select

from fidelite.api.tables import api_requests
from tests.api.conftest import Live

EVENT = {"id": "E1", "type": "purchase", "member": "ann", "amount": "12.00",
         "at": "2026-11-20T10:00:00+01:00"}  # fmt: skip


def stored_keys(live: Live) -> list[str]:
    with live.db.read() as conn:
        return [r.idem_key for r in conn.execute(select(api_requests.c.idem_key)).all()]


def test_the_key_length_is_counted_and_told_in_bytes(live: Live) -> None:
    fits = ("é" * 100).encode()  # 100 characters, 200 bytes in UTF-8
    over = ("é" * 101).encode()  # 202 bytes
    with live.client("admin") as c:
        for url, body in (("/v1/events", EVENT), ("/v1/members", {"id": "bob"})):
            out = c.post(url, json=body, headers={"Idempotency-Key": over})
            assert out.status_code == 422, out.text
            assert out.json()["detail"] == "header.Idempotency-Key: 1 to 200 bytes"
            assert out.json()["errors"] == [{"location": "header.Idempotency-Key",
                                             "message": "1 to 200 bytes"}]  # fmt: skip
        assert live.ledger_rows() == 0 and stored_keys(live) == []
        assert c.get("/v1/members/bob").status_code == 404
        first = c.post("/v1/members", json={"id": "bob"}, headers={"Idempotency-Key": fits})
        assert first.status_code == 201, first.text
        again = c.post("/v1/members", json={"id": "bob"}, headers={"Idempotency-Key": fits})
        assert (again.status_code, again.headers["Idempotent-Replayed"]) == (201, "true")
        assert again.json() == first.json()
        made = c.post("/v1/events", json=EVENT, headers={"Idempotency-Key": fits})
        assert made.status_code == 422  # same key, another request
    assert stored_keys(live) == [fits.decode("latin-1")]
