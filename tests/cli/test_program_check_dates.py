"""``fidelite program check``: a program file's date written as a number is refused
naming its field (it was read as seconds since 1970: a window from 1970-08-23)."""

from __future__ import annotations

from pathlib import Path

from tests.cli.support import fidelite

PROGRAM = """\
id: shop
name: Shop
time_zone: Europe/Paris
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}, window: {start: 20261201}}
rewards:
  - {id: ten, name: Ten, kind: discount_amount, value: 1, cost: 10, valid_until: "1700000000"}
"""
ISO = "must be an ISO 8601 date and time with a UTC offset, e.g. 2026-12-01T10:00:00+01:00"


def test_a_number_as_a_program_date_is_refused_naming_the_field(tmp_path: Path) -> None:
    file = tmp_path / "shop.yaml"
    file.write_text(PROGRAM, encoding="utf-8")
    result = fidelite("program", "check", file, ok=False)
    assert result.returncode == 1
    said = " ".join((result.stderr + result.stdout).split())
    assert f"rules[0].window.start: {ISO}, got 20261201" in said
    assert f"rewards[0].valid_until: {ISO}, got '1700000000'" in said
