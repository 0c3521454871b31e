"""An erasure's tombstone never collides with a client's reference, over real HTTP.
On SQLite and PostgreSQL.

* A client may enrol a reference that reads like a tombstone (``erased-2``); erasing the
  member whose internal id is 2 then gives it ``erased-02`` (the same number with a
  leading zero, still recognised as that member's tombstone), and the client's member
  keeps its reference and its data.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from fidelite.processing.erased import tombstones
from fidelite.store.tables import Member
from tests.api.conftest import Live
from tests.support import snapshot

AT = "2026-11-02T10:00:00Z"


def member_id(live: Live, ref: str) -> int:
    with live.db.read() as conn:
        return int(conn.execute(select(Member.id).where(Member.ref == ref)).scalar_one())


def enrol(live: Live, ref: str, **profile: Any) -> None:
    with live.client() as client:
        answer = client.post("/v1/members", json={"id": ref, "joined_at": AT, **profile})
    assert answer.status_code == 201, answer.text


def test_a_client_reference_named_like_the_tombstone_is_not_taken(live: Live) -> None:
    enrol(live, "carol")
    carol = member_id(live, "carol")
    taken = f"erased-{carol}"
    enrol(live, taken, attributes={"email": "x@example.com"})
    with live.client() as client:
        erased = client.delete("/v1/members/carol")
        assert erased.status_code == 200, erased.text
        record = erased.json()
        assert (record["member_id"], record["tombstone"], record["replayed"]) == (
            carol, f"erased-0{carol}", False)  # fmt: skip
        gone = client.get(f"/v1/members/erased-0{carol}/export").json()["member"]
        assert (gone["id"], gone["ref"], gone["status"]) == (carol, f"erased-0{carol}", "erased")
        kept = client.get(f"/v1/members/{taken}/export").json()
        assert (kept["member"]["ref"], kept["member"]["status"]) == (taken, "active")
        assert kept["profile"]["attributes"] == {"email": "x@example.com"}
        before = snapshot(live.db)
        for again in ("carol", f"erased-0{carol}"):
            repeat = client.delete(f"/v1/members/{again}")
            assert repeat.status_code == 200, repeat.text
            assert {**repeat.json(), "replayed": False} == record
            assert repeat.json()["replayed"] is True
        assert snapshot(live.db) == before
    with live.db.read() as conn:
        assert tombstones(conn, "shop", [f"erased-0{carol}", taken]) == {f"erased-0{carol}"}
