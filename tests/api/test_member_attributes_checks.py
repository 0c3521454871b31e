"""A member's profile over real HTTP, checked as the members import checks it: text a
lone surrogate breaks (``"\\ud800"``) is refused naming the field, and nothing is
written (it answered 500 after writing the row, and every later read of the member,
and the member list, answered 500); segments are kept once each, sorted, at most 50
as sent; a birth date that is no day of the calendar is told so in the import's words."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from fidelite.processing.tables import member_states
from tests.api.conftest import Live

SURROGATE = (
    "must be text UTF-8 can encode: character 2 is a lone surrogate (U+D800), half of a character"
)
JSON = {"content-type": "application/json"}


def _states(live: Live) -> list[tuple[Any, ...]]:
    with live.db.read() as conn:
        rows = conn.execute(
            select(member_states.c.member_ref, member_states.c.segments,
                   member_states.c.attributes, member_states.c.birth_date)
            .order_by(member_states.c.member_ref)
        )  # fmt: skip
        return [tuple(r) for r in rows]


def test_a_lone_surrogate_in_an_attribute_is_refused_and_nothing_written(live: Live) -> None:
    with live.client("integration") as c:
        made = c.post("/v1/members", json={"id": "ann", "attributes": {"city": "Lyon"}})
        assert made.status_code == 201
        before = _states(live)
        made = c.post("/v1/members", content=b'{"id": "bo", "attributes": {"x": "a\\ud800"}}',
                      headers=JSON)  # fmt: skip
        assert made.status_code == 422
        assert made.json()["errors"] == [{"location": "body.attributes.x", "message": SURROGATE}]
        named = c.post("/v1/members", content=b'{"id": "bo", "attributes": {"a\\ud800": 1}}',
                       headers=JSON)  # fmt: skip
        assert named.status_code == 422
        [error] = named.json()["errors"]
        assert error["message"] == SURROGATE
        assert error["location"].startswith("body.attributes.")
        changed = c.patch("/v1/members/ann", content=b'{"attributes": {"x": "a\\ud800"}}',
                          headers=JSON)  # fmt: skip
        assert changed.status_code == 422
        assert changed.json()["errors"] == [{"location": "body.attributes.x", "message": SURROGATE}]
        assert _states(live) == before
        listed = c.get("/v1/members")
        assert listed.status_code == 200
        assert [m["id"] for m in listed.json()["members"]] == ["ann"]
        assert c.get("/v1/members/ann").json()["attributes"] == {"city": "Lyon"}
        assert c.get("/v1/members/ann/timeline").status_code == 200


def test_an_attribute_is_one_value_as_in_the_import(live: Live) -> None:
    with live.client("integration") as c:
        nested = c.post("/v1/members", json={"id": "bo", "attributes": {"a": {"b": 1}}})
        assert nested.status_code == 422
        assert nested.json()["errors"] == [{
            "location": "body.attributes.a",
            "message": "must be text, a whole number, a finite number or true/false, got an object",
        }]  # fmt: skip
        assert _states(live) == []
