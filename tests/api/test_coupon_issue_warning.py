"""``POST /v1/coupon-campaigns/{campaign}/coupons``: codes for a member in none of the
campaign's segments are issued with a warning in the answer (segments change, so the
codes may be usable later); codes of a campaign whose window has closed are refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from fidelite.api.keys import create_key
from fidelite.processing.tables import coupons
from tests.api.conftest import Live, start_server
from tests.conftest import BACKENDS, make_database

PROGRAM = """\
id: shop
name: Shop
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: vip, on: [purchase], coupon_campaign: vip_welcome, fixed: 50}
  - {id: old, on: [purchase], coupon_campaign: past_promo, fixed: 10}
coupons:
  - {id: vip_welcome, name: VIP welcome, prefix: VIPWELC, segments: [vip]}
  - {id: past_promo, name: Past, prefix: PAST,
     window: {start: 2020-01-01T00:00:00+00:00, end: 2020-02-01T00:00:00+00:00}}
"""
URL = "/v1/coupon-campaigns/{}/coupons"


@pytest.fixture(params=BACKENDS)
def live(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Live]:
    db = make_database(request.param, request, tmp_path)
    server, url = start_server(db, program=PROGRAM)
    yield Live(url, db, {"admin": create_key(db, "shop", "admin")[1]})
    server.stop()
    db.dispose()


def rows(live: Live) -> list[tuple[str, str | None]]:
    with live.db.read() as conn:
        query = select(coupons.c.campaign, coupons.c.member_ref).order_by(coupons.c.member_ref)
        return [tuple(r) for r in conn.execute(query)]  # type: ignore[misc]


def test_codes_for_a_member_outside_the_segments_come_with_a_warning(live: Live) -> None:
    with live.client("admin") as c:
        assert c.post("/v1/members", json={"id": "dan"}).status_code == 201
        assert c.post("/v1/members", json={"id": "vic", "segments": ["vip"]}).status_code == 201
        made = c.post(URL.format("vip_welcome"), json={"count": 1, "member": "dan"},
                      headers={"Idempotency-Key": "c1"})  # fmt: skip
        assert made.status_code == 201, made.text
        body = made.json()
        assert body == {
            "campaign": "vip_welcome", "member": "dan", "codes": body["codes"],
            "warnings": ["member 'dan' is in none of the segments of campaign 'vip_welcome' "
                         "(vip; theirs: none): the codes are refused at the till until the "
                         "member is in one of them (e.g. by a members import)"],
        }  # fmt: skip
        assert len(body["codes"]) == 1
        again = c.post(URL.format("vip_welcome"), json={"count": 1, "member": "dan"},
                       headers={"Idempotency-Key": "c1"})  # fmt: skip
        assert (again.status_code, again.json()) == (201, body)
        vic = c.post(URL.format("vip_welcome"), json={"count": 1, "member": "vic"},
                     headers={"Idempotency-Key": "c2"})  # fmt: skip
        assert (vic.status_code, vic.json()["warnings"]) == (201, [])
    assert rows(live) == [("vip_welcome", "dan"), ("vip_welcome", "vic")]


def test_codes_of_an_ended_campaign_are_refused(live: Live) -> None:
    with live.client("admin") as c:
        refused = c.post(URL.format("past_promo"), json={"count": 2},
                         headers={"Idempotency-Key": "c1"})  # fmt: skip
    assert (refused.status_code, refused.json()["code"]) == (422, "campaign_ended")
    assert rows(live) == []
