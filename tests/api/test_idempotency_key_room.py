"""Every Idempotency-Key the API takes (1 to 200 bytes, any characters) works on every
route taking one, on SQLite and PostgreSQL: the routes that keep the key in the ledger
under a prefix (``api-adjust:``, ``api-bulk:<key>:<member>``, a redemption's
``api:<key>`` spent as ``redeem:api:<key>``) keep it whole when it fits the ledger's 200
characters, as before, and put a digest of it in its place when it does not; a 190-byte
key was refused as ``body.key`` (a field the body has not), and a bulk call answered
every member refused, stored and replayed."""

from __future__ import annotations

from hashlib import sha256
from typing import Any

import pytest
from sqlalchemy import select

from fidelite.ledger.validation import derived_key, redemption_key
from fidelite.processing.tables import redemptions
from fidelite.store.tables import LedgerTransaction
from tests.api.conftest import Live

ASCII_200 = "a" * 200
ACCENTS_200 = ("é" * 100).encode()  # 200 bytes of UTF-8, read as 200 characters
KEYS = [
    pytest.param(ASCII_200, id="ascii-200"), pytest.param(ACCENTS_200, id="utf8-200"),
    pytest.param("b" * 190, id="ascii-190"), pytest.param("c" * 189, id="ascii-189"),
]  # fmt: skip
ROUTES = "vwxyz"  # a key per route (a key is the program's, whatever the route)


def variant(key: str | bytes, route: int) -> str | bytes:
    """``key`` of the same length in bytes, its last character made the route's."""
    if isinstance(key, bytes):
        return key[:-2] + "àâäçè"[route].encode()
    return key[:-1] + ROUTES[route]


def as_read(key: str | bytes) -> str:
    """The key as the server reads it: one character per byte of the header."""
    return key.decode("latin-1") if isinstance(key, bytes) else key


def ledger_keys(live: Live) -> list[str]:
    with live.db.read() as conn:
        return list(conn.execute(select(LedgerTransaction.idempotency_key)
                                 .order_by(LedgerTransaction.id)).scalars())  # fmt: skip


def redemption_keys(live: Live) -> list[str]:
    with live.db.read() as conn:
        return list(conn.execute(select(redemptions.c.key)).scalars())


def twice(live: Live, c: Any, url: str, body: dict[str, Any], key: str | bytes) -> dict[str, Any]:
    """The answer to ``body`` at ``url`` under ``key``, asserting that sending it again
    replays it (and does nothing more in the ledger)."""
    first = c.post(url, json=body, headers={"Idempotency-Key": key})
    assert first.status_code in (200, 201), (url, first.text)
    rows = live.ledger_rows()
    again = c.post(url, json=body, headers={"Idempotency-Key": key})
    assert (again.status_code, again.headers["Idempotent-Replayed"]) == (first.status_code,
                                                                         "true")  # fmt: skip
    assert live.ledger_rows() == rows
    answer: dict[str, Any] = first.json()
    return answer


def expected(prefix: str, key: str, suffix: str = "", room: int = 200) -> str:
    """The stored key: whole when it fits (as before), else the key's digest in its place."""
    whole = f"{prefix}{key}{suffix}"
    digest = sha256(key.encode()).hexdigest()[:48]
    return whole if len(whole) <= room else f"{prefix}sha256:{digest}{suffix}"


@pytest.mark.parametrize("key", KEYS)
def test_each_route_takes_a_key_of_up_to_200_bytes(live: Live, key: str | bytes) -> None:
    adjust, bulk, redeem, assign, issue = (variant(key, i) for i in range(5))
    with live.client("admin") as c:
        for member in ("ann", "bob"):
            assert c.post("/v1/members", json={"id": member}).status_code == 201
        before = ledger_keys(live)

        adjusted = twice(live, c, "/v1/members/bob/adjustments", {"points": 40, "reason": "x"},
                         adjust)  # fmt: skip
        assert (adjusted["member"], adjusted["points"], adjusted["replayed"]) == ("bob", 40, False)
        credit = {"members": ["ann", "bob"], "points": 3, "reason": "outage"}
        both = twice(live, c, "/v1/adjustments:bulk", credit, bulk)
        assert (both["credited"], both["refused"]) == (2, 0), both
        redeemed = twice(live, c, "/v1/redemptions", {"member": "bob", "reward": "ten"}, redeem)
        assert (redeemed["member"], redeemed["points"], redeemed["status"]) == ("bob", 10, "active")
        vip = {"tier": "silver", "until": "2099-01-01T00:00:00Z", "reason": "vip"}
        assigned = twice(live, c, "/v1/members/ann/tier:assign", vip, assign)
        assert (assigned["change"]["from"], assigned["change"]["to"]) == ("bronze", "silver")
        issued = twice(live, c, "/v1/coupon-campaigns/welcome/coupons", {"count": 1}, issue)
        assert len(issued["codes"]) == 1

        assert c.get("/v1/members/bob/balance").json()["balances"][0]["available"] == 40 + 3 - 10
        assert c.get("/v1/members/ann/balance").json()["balances"][0]["available"] == 3

    adjust, bulk, redeem = as_read(adjust), as_read(bulk), as_read(redeem)
    assert ledger_keys(live)[len(before) :] == [
        expected("api-adjust:", adjust),
        expected("api-bulk:", bulk, ":ann"),
        expected("api-bulk:", bulk, ":bob"),
        "redeem:" + expected("api:", redeem, room=200 - len("redeem:")),
    ]
    assert redemption_keys(live) == [expected("api:", redeem, room=200 - len("redeem:"))]


def test_a_long_key_keeps_the_member_in_a_bulk_key_for_erasure(live: Live) -> None:
    """A bulk credit's key under a digest still ends with the member, which erasure
    rewrites to the tombstone, as for a key kept whole."""
    with live.client("admin") as c:
        assert c.post("/v1/members", json={"id": "bob"}).status_code == 201
        done = c.post("/v1/adjustments:bulk", headers={"Idempotency-Key": ASCII_200},
                      json={"members": ["bob"], "points": 3, "reason": "outage"})  # fmt: skip
        assert done.json()["credited"] == 1, done.text
        erased = c.delete("/v1/members/bob", headers={"Idempotency-Key": "erase-bob"})
        assert erased.status_code == 200, erased.text
        tombstone = erased.json()["tombstone"]
    digest = derived_key("api-bulk:", ASCII_200, ":bob")[: -len("bob")]
    assert ledger_keys(live)[-1] == digest + tombstone


def test_erasure_keeps_a_bulk_key_that_fitted_within_the_column(live: Live) -> None:
    """A bulk key stored whole near the limit (199 characters with the member 'm') would
    grow past 200 with the longer tombstone: PostgreSQL refused the erasure (500, value
    too long), so the member could not be erased. The caller's key is digested then."""
    key = "k" * 188
    with live.client("admin") as c:
        assert c.post("/v1/members", json={"id": "m"}).status_code == 201
        done = c.post("/v1/adjustments:bulk", headers={"Idempotency-Key": key},
                      json={"members": ["m"], "points": 3, "reason": "outage"})  # fmt: skip
        assert done.json()["credited"] == 1, done.text
        assert ledger_keys(live)[-1] == f"api-bulk:{key}:m"  # stored whole: it fitted
        erased = c.delete("/v1/members/m", headers={"Idempotency-Key": "erase-m"})
        assert erased.status_code == 200, erased.text
        tombstone = erased.json()["tombstone"]
    assert ledger_keys(live)[-1] == derived_key("api-bulk:", key, f":{tombstone}")
    assert ledger_keys(live)[-1].startswith("api-bulk:sha256:")
    assert all(len(k) <= 200 for k in ledger_keys(live))


def test_derived_keys_fit_and_keep_what_fitted() -> None:
    assert derived_key("api-adjust:", "k" * 189) == "api-adjust:" + "k" * 189
    long = derived_key("api-adjust:", "k" * 190)
    assert long.startswith("api-adjust:sha256:") and len(long) == 11 + 7 + 48
    assert derived_key("api-adjust:", "k" * 190) != derived_key("api-adjust:", "k" * 191)
    assert redemption_key("api:", "k" * 189) == "api:" + "k" * 189
    assert len(redemption_key("api:", "k" * 190)) <= 193
    huge = derived_key("api-bulk:", "k" * 200, ":" + "m" * 150)  # no member has such an id
    assert len(huge) <= 200 and huge != derived_key("api-bulk:", "k" * 200, ":" + "m" * 151)
    assert len(derived_key("cli:", "\udcff" * 300)) <= 200  # an undecodable argv byte
