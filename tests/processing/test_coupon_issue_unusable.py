"""Codes of a campaign whose window has closed could never be used: they are not
issued. Codes for a member in none of the campaign's segments are issued with a
warning: segments change (the members import replaces them), so such codes may be
usable later."""

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
  - {id: vip_welcome, name: VIP welcome, prefix: VIPWELC, segments: [vip, gold]}
  - {id: past_promo, name: Past, prefix: PAST,
     window: {start: 2026-01-01T00:00:00+00:00, end: 2026-02-01T00:00:00+00:00}}
"""
AT = datetime(2026, 11, 5, 9, 0, tzinfo=UTC)


def stored(db: Database) -> list[tuple[str, str, int]]:
    """(campaign, member or '', codes) of the stored codes."""
    with db.read() as conn:
        rows = conn.execute(
            select(coupons.c.campaign, coupons.c.member_ref, func.count()).group_by(
                coupons.c.campaign, coupons.c.member_ref
            )
        )
        return sorted((campaign, member or "", int(n)) for campaign, member, n in rows)


def test_codes_of_an_ended_campaign_are_refused(pdb: Database) -> None:
    p = EventProcessor(pdb, parse_program(PROGRAM))
    with pytest.raises(ProcessingError) as ended:
        p.issue_coupons("past_promo", 3, at=AT, warnings=[])
    assert ended.value.code == "campaign_ended"
    assert str(ended.value.message) == (
        "campaign 'past_promo' ended 2026-02-01T00:00:00+00:00 (its window's end): its codes "
        "could never be used; no code issued"
    )
    assert stored(pdb) == []
    early = datetime(2026, 1, 31, 23, 59, tzinfo=UTC)
    assert len(p.issue_coupons("past_promo", 1, at=early)) == 1  # before its end
    assert stored(pdb) == [("past_promo", "", 1)]


def test_codes_for_a_member_outside_the_segments_are_issued_with_a_warning(
    pdb: Database,
) -> None:
    p = EventProcessor(pdb, parse_program(PROGRAM))
    p.enrol("dan", at=AT)
    p.enrol("eve", at=AT, profile=MemberProfile(segments=["students"]))
    p.enrol("vic", at=AT, profile=MemberProfile(segments=["vip"]))
    warnings: list[str] = []
    assert len(p.issue_coupons("vip_welcome", 2, at=AT, member_ref="dan", warnings=warnings)) == 2
    assert len(p.issue_coupons("vip_welcome", 1, at=AT, member_ref="eve", warnings=warnings)) == 1
    assert warnings == [
        "member 'dan' is in none of the segments of campaign 'vip_welcome' (vip, gold; "
        "theirs: none): the codes are refused at the till until the member is in one of them "
        "(e.g. by a members import)",
        "member 'eve' is in none of the segments of campaign 'vip_welcome' (vip, gold; "
        "theirs: students): the codes are refused at the till until the member is in one of "
        "them (e.g. by a members import)",
    ]
    quiet: list[str] = []
    assert len(p.issue_coupons("vip_welcome", 1, at=AT, member_ref="vic", warnings=quiet)) == 1
    assert len(p.issue_coupons("vip_welcome", 1, at=AT, warnings=quiet)) == 1  # to anyone
    assert quiet == []
    assert len(p.issue_coupons("vip_welcome", 1, at=AT, member_ref="dan")) == 1  # no list
    assert stored(pdb) == [("vip_welcome", "", 1), ("vip_welcome", "dan", 3),
                           ("vip_welcome", "eve", 1), ("vip_welcome", "vic", 1)]  # fmt: skip
