"""The daily review visits only the members with a step due: a member in a grace period
is reviewed again when it ends, not on every run before (their re-qualification date,
kept from when the grace period started, is past all along)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from fidelite.engine import Event
from fidelite.processing import EventProcessor
from fidelite.program import parse_program
from fidelite.store import Database
from tests.processing.test_tiers import PROGRAM


def day(text: str) -> datetime:
    return datetime.fromisoformat(f"{text}T10:00:00+01:00")


def test_a_member_in_grace_is_not_visited_before_it_ends(pdb: Database) -> None:
    p = EventProcessor(pdb, parse_program(PROGRAM))
    p.process(Event(id="p1", type="purchase", member="ann", at=day("2026-01-10"),
                    amount=Decimal(120)))  # fmt: skip
    seen: list[tuple[int, int]] = []
    changes = p.review_tiers(day("2027-01-11"), progress=lambda d, t: seen.append((d, t)))
    assert [(c.kind.value, c.to_tier) for _, c in changes] == [("grace_started", "silver")]
    assert seen == [(1, 1)]
    seen.clear()
    assert p.review_tiers(day("2027-02-09"), progress=lambda d, t: seen.append((d, t))) == []
    assert seen == []  # nothing due: ann not locked, read or reviewed
    changes = p.review_tiers(day("2027-02-11"), progress=lambda d, t: seen.append((d, t)))
    assert [(c.kind.value, c.to_tier) for _, c in changes] == [("downgrade", "bronze")]
    assert seen == [(1, 1)]
