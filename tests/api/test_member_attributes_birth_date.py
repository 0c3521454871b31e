"""A birth date that is no day of the calendar, sent to the API, is told so in the
members import's words (it was pydantic's "day value is outside expected range")."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from fidelite.processing.tables import member_states
from tests.api.conftest import Live


def _states(live: Live) -> list[tuple[Any, ...]]:
    with live.db.read() as conn:
        rows = conn.execute(
            select(member_states.c.member_ref, member_states.c.segments,
                   member_states.c.attributes, member_states.c.birth_date)
            .order_by(member_states.c.member_ref)
        )  # fmt: skip
        return [tuple(r) for r in rows]


def test_a_birth_date_no_calendar_holds_is_told_so(live: Live) -> None:
    with live.client("integration") as c:
        assert c.post("/v1/members", json={"id": "ann"}).status_code == 201
        before = _states(live)
        for method, path, body in (("PATCH", "/v1/members/ann", {}),
                                   ("POST", "/v1/members", {"id": "bo"})):  # fmt: skip
            answer = c.request(method, path, json={**body, "birth_date": "2000-02-30"})
            assert answer.status_code == 422
            assert answer.json()["errors"] == [{
                "location": "body.birth_date",
                "message": "'2000-02-30' is not a day of the calendar (February 2000 has 29 days)",
            }]  # fmt: skip
        assert _states(live) == before
