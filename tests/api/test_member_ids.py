"""Member ids over real HTTP: an id the member URLs cannot reach (``/``, a path step,
control or invisible characters, spaces at either end, more than the ledger's 128
characters) is refused where it would be enrolled, naming the field, and nothing is
written; any other id is enrolled, credited and reachable, percent-encoded. Event ids
may hold ``/``: ``GET /v1/events/{id}`` reaches them."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import func, select

from fidelite.engine.member_id import MEMBER_ID_RULE
from fidelite.ledger import assert_invariants
from fidelite.processing.tables import events, member_states
from fidelite.store.tables import Member
from tests.api.conftest import Live

AT = "2026-11-06T10:00:00+01:00"
RULE = f"({MEMBER_ID_RULE})"
REFUSED = [
    ("CARD/0002", "'CARD/0002' holds '/', which no member URL (/v1/members/<id>) can carry"),
    (" padded ", "' padded ' has spaces at its start or end"),
    ("padded\u00a0", "'padded\\xa0' has spaces at its start or end"),
    ("CARD\t1", "'CARD\\t1' holds U+0009 (a control character)"),
    ("CARD\u200b1", "'CARD\\u200b1' holds U+200B (ZERO WIDTH SPACE)"),
    ("..", "'..' is a URL path step, which HTTP clients resolve away"),
]
TOO_LONG = "x" * 129  # PostgreSQL's members.ref holds 128: it answered 500 before


def _written(live: Live) -> tuple[int, int, int, int]:
    """Rows of the ledger's members, program states, events and ledger transactions."""
    with live.db.read() as conn:
        counts = [conn.execute(select(func.count()).select_from(t)).scalar_one()
                  for t in (Member.__table__, member_states, events)]  # fmt: skip
    return counts[0], counts[1], counts[2], live.ledger_rows()


def _purchase(member: str, event_id: str = "e1") -> dict[str, Any]:
    return {"id": event_id, "type": "purchase", "member": member, "at": AT, "amount": "20"}


@pytest.mark.parametrize(("ref", "why"), REFUSED)
def test_an_id_no_member_url_reaches_is_refused_by_every_api_entrance(
    live: Live, ref: str, why: str
) -> None:
    with live.client("integration") as c:
        made = c.post("/v1/members", json={"id": ref})
        assert made.status_code == 422
        assert made.json()["errors"] == [{"location": "body.id", "message": f"{why} {RULE}"}]
        sent = c.post("/v1/events", json=_purchase(ref))
        assert sent.status_code == 422
        assert sent.json()["errors"] == [{"location": "body.member",
                                          "message": f"{why} {RULE}"}]  # fmt: skip
        batch = c.post("/v1/events:batch", json={"events": [_purchase(ref, "e2")]})
        assert batch.status_code == 200
        [answer] = batch.json()["results"]
        assert (answer["outcome"], answer["problem"]["errors"]) == (
            "rejected",
            [{"location": "body.events.0.member", "message": f"{why} {RULE}"}],
        )
        assert _written(live) == (0, 0, 0, 0)
        assert c.get("/v1/members").json() == {"members": [], "next_cursor": None}


def test_an_id_longer_than_the_ledger_keeps_is_refused_on_both_databases(live: Live) -> None:
    with live.client("integration") as c:
        made = c.post("/v1/members", json={"id": TOO_LONG})
        assert made.status_code == 422
        assert made.json()["errors"] == [
            {"location": "body.id", "message": "String should have at most 128 characters"}
        ]
        sent = c.post("/v1/events", json=_purchase(TOO_LONG))
        assert sent.status_code == 422
        assert sent.json()["errors"] == [
            {"location": "body.member", "message": "String should have at most 128 characters"}
        ]
        assert _written(live) == (0, 0, 0, 0)
        longest = "y" * 128
        assert c.post("/v1/events", json=_purchase(longest)).status_code == 201
        balance = c.get(f"/v1/members/{longest}/balance")
        assert balance.status_code == 200
        assert balance.json()["balances"][0]["available"] == 20


@pytest.mark.parametrize("ref", ["CARD 0002", "ann@example.com", "Müller:12", "50%?#x", "..."])
def test_any_other_id_is_credited_and_its_balance_shown(live: Live, ref: str) -> None:
    path = f"/v1/members/{quote(ref, safe='')}"
    with live.client("integration") as c:
        assert c.post("/v1/members", json={"id": ref}).status_code == 201
        assert c.post("/v1/events", json=_purchase(ref)).status_code == 201
        assert c.get(path).json()["id"] == ref
        balance = c.get(f"{path}/balance")
        assert balance.status_code == 200
        assert (balance.json()["member"], balance.json()["balances"][0]["available"]) == (ref, 20)
    assert_invariants(live.db, "shop")


def test_an_event_id_holding_a_slash_is_read_back(live: Live) -> None:
    with live.client("integration") as c:
        assert c.post("/v1/events", json=_purchase("ann", "F2026/0001")).status_code == 201
        found = c.get("/v1/events/F2026%2F0001")
        assert found.status_code == 200
        assert (found.json()["event_id"], found.json()["member"]) == ("F2026/0001", "ann")
        missing = c.get("/v1/events/F2026%2F0002")
        assert (missing.status_code, missing.json()["code"]) == (404, "unknown_event")
        assert missing.json()["detail"] == "no event 'F2026/0002' in this program"
