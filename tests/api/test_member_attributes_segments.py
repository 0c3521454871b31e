"""Segments sent to POST and PATCH /v1/members are kept once each, sorted, as the
members import keeps them (["vip", "vip"] was kept twice), at most 50 as sent."""

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


def test_segments_are_kept_once_each_sorted_and_at_most_50_as_sent(live: Live) -> None:
    with live.client("integration") as c:
        made = c.post("/v1/members", json={"id": "ann", "segments": ["vip", "vip", "club"]})
        assert made.status_code == 201
        assert made.json()["segments"] == ["club", "vip"]
        changed = c.patch("/v1/members/ann", json={"segments": ["vip", "staff", "vip"]})
        assert changed.json()["segments"] == ["staff", "vip"]
        before = _states(live)
        many = [f"s{i}" for i in range(51)]
        refused = c.patch("/v1/members/ann", json={"segments": many})
        assert refused.status_code == 422
        assert refused.json()["errors"] == [{
            "location": "body.segments",
            "message": "List should have at most 50 items after validation, not 51",
        }]  # fmt: skip
        assert _states(live) == before
        assert before[0][1] == ["staff", "vip"]


def test_the_body_fingerprinted_keeps_the_segments_as_sent() -> None:
    """The Idempotency-Key fingerprint is taken of the body as validated: segments put
    in order there made a call stored before they were kept sorted (["vip", "club"])
    differ from itself when sent again after the upgrade (422 idempotency_key_reused
    instead of its stored answer). They are kept once each, sorted, when applied."""
    from fidelite.api.routes.members import MemberCreate, MemberUpdate

    made = MemberCreate.model_validate({"id": "ann", "segments": ["vip", "club", "vip"]})
    assert made.model_dump(mode="json")["segments"] == ["vip", "club", "vip"]
    changed = MemberUpdate.model_validate({"segments": ["vip", "club"]})
    assert changed.model_dump(mode="json")["segments"] == ["vip", "club"]
