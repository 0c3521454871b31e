"""An erasure's tombstone never collides with a client's reference, and concurrent
erasures of one member give one record, over real HTTP. On SQLite and PostgreSQL.

* A client may enrol a reference that reads like a tombstone (``erased-2``); erasing the
  member whose internal id is 2 then gives it ``erased-02`` (the same number with a
  leading zero, still recognised as that member's tombstone), and the client's member
  keeps its reference and its data.
* Several ``DELETE /v1/members/{id}`` of one member at once: one erases, every other
  answers 200 with the first record (``replayed: true``), as a repeat does.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import select

from fidelite.processing.erased import tombstones
from fidelite.store.tables import Member
from fidelite.webhooks.tables import erasures
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


def test_concurrent_erasures_of_one_member_give_one_record(live: Live) -> None:
    for n in range(3):
        enrol(live, f"cc{n}")

    def erase(ref: str) -> tuple[int, Any]:
        with live.client() as client:
            answer = client.delete(f"/v1/members/{ref}")
        return answer.status_code, answer.json()

    with ThreadPoolExecutor(max_workers=12) as pool:
        answers = list(pool.map(erase, [f"cc{n}" for n in range(3) for _ in range(4)]))
    assert [status for status, _ in answers] == [200] * 12
    for n in range(3):
        mine = [body for _, body in answers[4 * n : 4 * n + 4]]
        assert sorted(body["replayed"] for body in mine) == [False, True, True, True]
        assert len({(b["member_id"], b["tombstone"], b["erased_at"]) for b in mine}) == 1
    with live.db.read() as conn:
        assert len(conn.execute(select(erasures.c.id)).all()) == 3
