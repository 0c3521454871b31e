"""`points_already_spent` says how to allow the reversal where it was refused: for a
refund event, the program setting (`refunds.shortfall` in the program file); for
`fidelite ledger reverse`, its `--shortfall` option. It used to read like a Python
keyword argument (`choose shortfall='within_balance' or 'debt'`) in both, on SQLite
and PostgreSQL; the refused call changes nothing."""

from __future__ import annotations

import json

import pytest

from fidelite.engine import Event
from fidelite.ledger import Rejected
from fidelite.processing import EventProcessor
from fidelite.program import parse_program
from fidelite.store import Database
from tests.cli.support import fidelite
from tests.support import snapshot

PROGRAM = """\
id: shop
name: Shop
time_zone: Europe/Paris
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
refunds: {shortfall: reject}
"""


def event(event_id: str, kind: str, day: str, **extra: str) -> Event:
    at = f"{day}T10:00:00+01:00"
    fields = {"id": event_id, "type": kind, "member": "ann", "at": at, "amount": "70"}
    return Event.model_validate(fields | extra)


def test_a_refund_names_the_program_setting_and_ledger_reverse_its_option(pdb: Database) -> None:
    p = EventProcessor(pdb, parse_program(PROGRAM))
    p.process(event("p1", "purchase", "2026-11-02"))
    p.ledger.spend("shop", "ann", "points", 60, key="s1", at="2026-11-03T10:00:00+01:00")
    before = snapshot(pdb)
    with pytest.raises(Rejected) as info:
        p.process(event("r1", "refund", "2026-11-04", refund_of="p1"))
    assert info.value.as_dict() == {
        "code": "points_already_spent",
        "message": "60 of the 70 points to reverse were already used; to reverse them"
        " anyway, set refunds.shortfall: within_balance or debt in the program file",
        "field": "shortfall",
        "detail": {"shortfall": 60},
    }
    assert snapshot(pdb) == before
    (earn,) = [e for e in p.ledger.history("shop", "ann") if e.kind == "earn"]
    refused = fidelite("ledger", "reverse", str(earn.transaction_id), "--key", "x1", "-p",
                       "shop", "-f", "json", db=pdb.url, ok=False)  # fmt: skip
    assert refused.returncode == 1
    assert json.loads(refused.stdout) == {
        "error": {
            "code": "points_already_spent",
            "message": "60 of the 70 points to reverse were already used; to reverse them"
            " anyway, give --shortfall within_balance or debt",
            "field": "shortfall",
            "detail": {"shortfall": 60},
        }
    }
    assert snapshot(pdb) == before
