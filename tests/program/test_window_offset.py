"""A window or reward date written with the offset the program's zone has at another
time of the year (``+01:00`` on a July date in Europe/Paris, which is at ``+02:00``
then) stands for another local time than written, an hour off: the offer moved by an
hour without a word. ``program check`` (and every load) refuses it naming
file:line:column, the field and the offset the zone has then. An offset the zone never
has there (``Z``, or any offset in a UTC program) names the instant it says."""

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
