"""A window or reward date written with the offset the program's zone has at another
time of the year (``+01:00`` on a July date in Europe/Paris, which is at ``+02:00``
then) stands for another local time than written, an hour off: the offer moved by an
hour without a word. ``program check`` (and every load) refuses it naming
file:line:column, the field and the offset the zone has then. An offset the zone never
has there (any offset in a UTC program) names the instant it says, and so do ``Z`` and
``+00:00`` in every zone (Europe/London is at +00:00 in winter) and a local time the
zone skips at its spring change of time, whatever its offset."""

from __future__ import annotations

from pathlib import Path

import pytest

from fidelite.program import ProgramError, parse_program
from tests.cli.support import fidelite

HEAD = """\
id: shop
name: Shop
time_zone: {zone}
currencies:
  - {{id: points, name: Points, value: 0.01}}
rules:
  - {{id: base, on: [purchase], per_amount: {{points: 1}}}}
  - id: summer
    on: [purchase]
    fixed: 10
    window: {{start: {start}, end: {end}}}
"""
WRONG = HEAD.format(
    zone="Europe/Paris", start="2026-07-01T00:00:00+01:00", end="2026-07-02T00:00:00+02:00"
) + (
    "  - {id: gift_code, on: [purchase], coupon_campaign: gift, fixed: 5}\n"
    "coupons:\n"
    "  - id: gift\n"
    "    name: Gift\n"
    "    prefix: GIFT\n"
    "    window: {start: 2026-12-01T00:00:00+02:00}\n"
    "rewards:\n"
    "  - {id: mug, name: Mug, kind: voucher, cost: 10, valid_until: 2026-08-01T00:00:00+01:00}\n"
)


def problems(text: str) -> list[str]:
    with pytest.raises(ProgramError) as refused:
        parse_program(text, name="p.yaml")
    return [str(p) for p in refused.value.problems]


def test_the_other_offset_of_the_zone_is_refused_at_the_field() -> None:
    assert problems(WRONG) == [
        "p.yaml:11:21: rules[1].window.start: 2026-07-01T00:00:00+01:00 has the offset"
        " +01:00, but Europe/Paris is at +02:00 then: it is 2026-07-01T01:00:00 local time,"
        " not 2026-07-01T00:00:00; write 2026-07-01T00:00:00+02:00 (or the time in UTC"
        " with Z)",
        "p.yaml:17:21: coupons[0].window.start: 2026-12-01T00:00:00+02:00 has the offset"
        " +02:00, but Europe/Paris is at +01:00 then: it is 2026-11-30T23:00:00 local time,"
        " not 2026-12-01T00:00:00; write 2026-12-01T00:00:00+01:00 (or the time in UTC"
        " with Z)",
        "p.yaml:19:64: rewards[0].valid_until: 2026-08-01T00:00:00+01:00 has the offset"
        " +01:00, but Europe/Paris is at +02:00 then: it is 2026-08-01T01:00:00 local time,"
        " not 2026-08-01T00:00:00; write 2026-08-01T00:00:00+02:00 (or the time in UTC"
        " with Z)",
    ]


@pytest.mark.parametrize(
    ("zone", "start", "end"),
    [
        ("Europe/Paris", "2026-07-01T00:00:00+02:00", "2026-07-02T00:00:00+02:00"),
        ("Europe/Paris", "2026-06-30T22:00:00Z", "2026-07-01T22:00:00+00:00"),
        ("Europe/Paris", "2026-03-29T00:00:00+01:00", "2026-03-30T00:00:00+02:00"),  # DST day
        ("Europe/Paris", "2026-10-25T00:00:00+02:00", "2026-10-26T00:00:00+01:00"),
        ("Europe/Paris", "2026-07-01T00:00:00-04:00", "2026-07-02T00:00:00-04:00"),
        ("UTC", "2026-07-01T00:00:00+01:00", "2026-07-02T00:00:00+02:00"),
        ("America/New_York", "2026-07-01T00:00:00-04:00", "2026-12-01T00:00:00-05:00"),
    ],
)  # fmt: skip
def test_offsets_the_zone_has_then_or_never_has_load(zone: str, start: str, end: str) -> None:
    program = parse_program(HEAD.format(zone=zone, start=start, end=end))
    window = program.rules[1].window
    assert window is not None
    assert window.start is not None and window.end is not None
    written = (start.replace("Z", "+00:00"), end.replace("Z", "+00:00"))
    assert (window.start.isoformat(), window.end.isoformat()) == written


def test_program_check_refuses_it(tmp_path: Path) -> None:
    file = tmp_path / "p.yaml"
    file.write_text(WRONG, encoding="utf-8")
    checked = fidelite("program", "check", file, ok=False)
    assert checked.returncode == 1
    said = " ".join(checked.stderr.split())
    assert f"{file}: 3 problems" in said
    assert f"{file}:11:21: rules[1].window.start: 2026-07-01T00:00:00+01:00 has the offset" in said


UTC_ZERO = HEAD.format(
    zone="ZONE", start="2026-07-01T00:00:00Z", end="2026-07-02T00:00:00+00:00"
) + (
    "coupons:\n"
    "  - id: gift\n"
    "    name: Gift\n"
    "    prefix: GIFT\n"
    "    window: {start: 2026-07-01T00:00:00Z, end: 2026-08-01T00:00:00+00:00}\n"
    "rewards:\n"
    "  - id: mug\n"
    "    name: Mug\n"
    "    kind: voucher\n"
    "    cost: 10\n"
    "    valid_from: 2026-07-01T00:00:00Z\n"
    "    valid_until: 2026-08-01T00:00:00+00:00\n"
)


@pytest.mark.parametrize("zone", ["Europe/London", "Europe/Lisbon", "Europe/Dublin"])
def test_a_utc_offset_of_zero_is_utc_where_the_zone_is_at_zero_in_winter(zone: str) -> None:
    # In July these zones are at +01:00 and at +00:00 in winter; Z (read as +00:00) is UTC.
    program = parse_program(UTC_ZERO.replace("ZONE", zone))
    window, campaign, reward = program.rules[1].window, program.coupons[0], program.rewards[0]
    assert window is not None and campaign.window is not None
    utc = "+00:00"
    assert (str(window.start), str(window.end)) == (
        f"2026-07-01 00:00:00{utc}",
        f"2026-07-02 00:00:00{utc}",
    )
    assert (str(campaign.window.start), str(campaign.window.end)) == (
        f"2026-07-01 00:00:00{utc}",
        f"2026-08-01 00:00:00{utc}",
    )
    assert (str(reward.valid_from), str(reward.valid_until)) == (
        f"2026-07-01 00:00:00{utc}",
        f"2026-08-01 00:00:00{utc}",
    )


@pytest.mark.parametrize("offset", ["+01:00", "+02:00"])
def test_a_local_time_the_spring_change_skips_loads_with_either_offset(offset: str) -> None:
    # 02:30 does not exist in Paris on 2026-03-29: each offset used to be refused
    # advising the other one.
    start = f"2026-03-29T02:30:00{offset}"
    text = HEAD.format(zone="Europe/Paris", start=start, end="2026-04-01T00:00:00+02:00")
    window = parse_program(text).rules[1].window
    assert window is not None and window.start is not None
    assert window.start.isoformat() == start


@pytest.mark.parametrize(
    ("zone", "start", "message"),
    [
        (  # the winter offset of London is zero, its summer one is still judged
            "Europe/London",
            "2026-12-01T00:00:00+01:00",
            "2026-12-01T00:00:00+01:00 has the offset +01:00, but Europe/London is at"
            " +00:00 then: it is 2026-11-30T23:00:00 local time, not 2026-12-01T00:00:00;"
            " write 2026-12-01T00:00:00+00:00 (or the time in UTC with Z)",
        ),
        (  # 03:30 exists on the day of the spring change, at +02:00
            "Europe/Paris",
            "2026-03-29T03:30:00+01:00",
            "2026-03-29T03:30:00+01:00 has the offset +01:00, but Europe/Paris is at"
            " +02:00 then: it is 2026-03-29T04:30:00 local time, not 2026-03-29T03:30:00;"
            " write 2026-03-29T03:30:00+02:00 (or the time in UTC with Z)",
        ),
    ],
)
def test_other_offsets_are_still_refused(zone: str, start: str, message: str) -> None:
    text = HEAD.format(zone=zone, start=start, end="2027-01-01T00:00:00Z")
    assert problems(text) == [f"p.yaml:11:21: rules[1].window.start: {message}"]
