"""``GET /v1/members/{id}/tier`` of a member in a grace period gives as ``review_at`` the
next re-qualification, the grace period's end, as ``fidelite tier show`` does, not the
past date the grace period started from."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from fidelite.api.keys import create_key
from fidelite.engine import Event
from fidelite.processing import EventProcessor
from fidelite.program import parse_program
from tests.api.conftest import start_server
from tests.cli.support import TIER_PROGRAM
from tests.conftest import BACKENDS, make_database


@pytest.mark.parametrize("backend", BACKENDS)
def test_tier_standing_in_a_grace_period_gives_its_end_as_the_next_review(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    db = make_database(backend, request, tmp_path)
    processor = EventProcessor(db, parse_program(TIER_PROGRAM))
    processor.process(Event(id="p1", type="purchase", member="ann",
                            at=datetime.fromisoformat("2025-01-10T10:00:00+01:00"),
                            amount=Decimal(120)))  # fmt: skip
    # re-qualification on 2026-01-10: spend 0 below 100, grace for a month
    processor.review_tiers(datetime.fromisoformat("2026-01-20T00:00:00+00:00"))
    server, url = start_server(db, program=TIER_PROGRAM)
    try:
        token = create_key(db, "shop", "admin")[1]
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as c:
            answer = c.get("/v1/members/ann/tier")
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert {k: body[k] for k in ("tier", "since", "review_at", "grace_until")} == {
            "tier": "silver", "since": "2025-01-10T09:00:00Z",
            "review_at": "2026-02-10T09:00:00Z", "grace_until": "2026-02-10T09:00:00Z",
        }  # fmt: skip
        assert [t["kind"] for t in body["timeline"]] == ["upgrade", "grace_started"]
    finally:
        server.stop()
        db.dispose()
