"""Codes that could never be used are not issued: to a member in none of the
campaign's segments, or of a campaign whose window has closed."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from fidelite.processing import EventProcessor, ProcessingError
from fidelite.processing.processor import MemberProfile
from fidelite.processing.tables import coupons
from fidelite.program import parse_program
from fidelite.store import Database

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
     window: {start: 2026-01-01T00:00:00+00:00, end: 2026-02-01T00:00:00+00:00}}
"""
AT = datetime(2026, 11, 5, 9, 0, tzinfo=UTC)


def stored(db: Database) -> int:
    with db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(coupons)).scalar_one())


def test_codes_that_could_never_be_used_are_refused(pdb: Database) -> None:
    p = EventProcessor(pdb, parse_program(PROGRAM))
    p.enrol("dan", at=AT)
    p.enrol("vic", at=AT, profile=MemberProfile(segments=["vip"]))
    with pytest.raises(ProcessingError) as outside:
        p.issue_coupons("vip_welcome", 1, at=AT, member_ref="dan")
    assert outside.value.code == "campaign_not_for_member"
    assert str(outside.value.message) == (
        "member 'dan' is in none of the segments of campaign 'vip_welcome' (vip; theirs: "
        "none): the codes could never be used; no code issued"
    )
    with pytest.raises(ProcessingError) as ended:
        p.issue_coupons("past_promo", 3, at=AT)
    assert ended.value.code == "campaign_ended"
    assert str(ended.value.message) == (
        "campaign 'past_promo' ended 2026-02-01T00:00:00+00:00 (its window's end): its codes "
        "could never be used; no code issued"
    )
    assert stored(pdb) == 0
    assert len(p.issue_coupons("vip_welcome", 2, at=AT, member_ref="vic")) == 2
    assert len(p.issue_coupons("vip_welcome", 1, at=AT)) == 1  # to anyone: for a vip's use
    early = datetime(2026, 1, 31, 23, 59, tzinfo=UTC)
    assert len(p.issue_coupons("past_promo", 1, at=early)) == 1  # before its end
    assert stored(pdb) == 4
