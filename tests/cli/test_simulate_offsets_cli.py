"""``program simulate`` refuses an event's time as the import and the API do: without a
UTC offset in the import's words (it said pydantic's ``Input should have timezone
info``), and with an offset no clock has (beyond -12:00..+14:00) naming the field
(it simulated the event; recorded, the API refuses it)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.support import fidelite

PROGRAM = """\
id: shop
name: Shop
time_zone: Europe/Paris
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
"""
OFFSETS = "offsets run from -12:00 to +14:00 (write the time with its real offset, or in UTC "


@pytest.mark.parametrize(
    ("at", "told"),
    [
        ("2026-02-28T10:00:00", "at: needs a UTC offset (e.g. +00:00): '2026-02-28T10:00:00'"),
        ("2026-02-28T10:00:00-23:59",
         f"at: 2026-02-28T10:00:00-23:59 has UTC offset -23:59: {OFFSETS}with Z)"),
    ],
)  # fmt: skip
def test_simulate_refuses_the_time_naming_the_field(tmp_path: Path, at: str, told: str) -> None:
    program = tmp_path / "shop.yaml"
    program.write_text(PROGRAM, encoding="utf-8")
    sent = tmp_path / "e.json"
    sent.write_text(json.dumps({"id": "e1", "type": "purchase", "member": "ann", "at": at,
                                "amount": 10}), encoding="utf-8")  # fmt: skip
    done = fidelite("program", "simulate", str(program), str(sent), "-f", "json", ok=False)
    assert done.returncode != 0
    assert json.loads(done.stdout) == {
        "error": {"code": "invalid_event", "message": f"{sent}: {told}"}
    }
