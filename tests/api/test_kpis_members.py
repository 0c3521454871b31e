"""Program KPIs over members enrolled through ``POST /v1/members`` whose purchases are
dated before the enrolment: they joined at their first purchase, so the active-member
rate never goes above 100 % (live server, SQLite file and PostgreSQL)."""

from __future__ import annotations

from fidelite.analytics.kpis import program_kpis
from tests.api.conftest import Live


def test_members_enrolled_after_their_purchases_join_at_the_first(live: Live) -> None:
    with live.client() as c:
        made = c.post("/v1/members", json={"id": "ann", "joined_at": "2026-11-01T08:00:00Z"})
        assert made.status_code == 201
        assert c.post("/v1/members", json={"id": "bob"}).status_code == 201  # joined now
        for event_id, member, day in (("e1", "ann", 20), ("e2", "bob", 25), ("e3", "cid", 28)):
            at = f"2026-10-{day}T10:00:00Z"
            event = {"id": event_id, "type": "purchase", "member": member, "at": at}
            assert c.post("/v1/events", json={**event, "amount": "10"}).status_code == 201
    rows = program_kpis(live.db.url, "shop").rows
    # ann, bob and cid (enrolled by her purchase) all joined in October, at their purchases
    keys = ("period", "members_new", "members_total", "active_members", "active_member_rate")
    assert [tuple(r[k] for k in keys) for r in rows] == [("2026-10", 3, 3, 3, 100.0)]
    assert rows[0]["points_earned"] == 30
