"""Engagement from a program database: hand-counted interactions per period."""

from __future__ import annotations

import json
import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from fidelite.analytics.engagement import engagement
from fidelite.analytics.errors import InputError
from fidelite.engine import Event
from fidelite.processing import EventProcessor
from fidelite.program import parse_program
from fidelite.store import Database
from tests.cli.support import fidelite

PROGRAM = """\
id: cafe
name: Cafe
time_zone: Europe/Paris
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
  - {id: reviews, on: [review], fixed: 5}
events: [signup]  # recorded, earns nothing
"""

# ann: Jan sign-up + purchase + review (3 kinds), Mar purchase and its refund.
# bob: a review at 23:30 UTC on Jan 31, which is Feb 1 in Paris.
EVENTS = [
    ("s1", "signup", "ann", "2024-01-02T09:00:00+01:00", None, None),
    ("p1", "purchase", "ann", "2024-01-05T10:00:00+01:00", "20", None),
    ("v1", "review", "ann", "2024-01-06T10:00:00+01:00", None, None),
    ("v2", "review", "bob", "2024-01-31T23:30:00+00:00", None, None),
    ("p2", "purchase", "ann", "2024-03-10T10:00:00+01:00", "30", None),
    ("r2", "refund", "ann", "2024-03-12T10:00:00+01:00", "10", "p2"),
]


def _load(db: Database) -> None:
    processor = EventProcessor(db, parse_program(PROGRAM))
    for event_id, kind, member, at, amount, refund_of in EVENTS:
        data: dict[str, Any] = {"id": event_id, "type": kind, "member": member, "at": at}
        if amount:
            data["amount"] = Decimal(amount)
        if refund_of:
            data["refund_of"] = refund_of
        processor.process(Event.model_validate(data))


def test_engagement_counts_kinds_per_local_month(db: Database) -> None:
    _load(db)
    rows = engagement(db.url, "cafe", "month", "Europe/Paris").rows
    assert [r["period"] for r in rows] == ["2024-01", "2024-02", "2024-03"]
    jan, feb, mar = rows
    assert (jan["active_members"], jan["interactions"], jan["multi_kind_members"]) == (1, 3, 1)
    assert (jan["kind_signup"], jan["kind_purchase"], jan["kind_review"]) == (1, 1, 1)
    assert (jan["interactions_per_active_member"], jan["multi_kind_rate"]) == (3.0, 100.0)
    assert (feb["active_members"], feb["kind_review"], feb["multi_kind_rate"]) == (1, 1, 0.0)
    # the refund is not an interaction
    assert (mar["interactions"], mar["kind_purchase"], mar["kind_signup"]) == (1, 1, 0)
    assert "kind_refund" not in mar and "refund" not in mar


def test_engagement_lists_empty_periods(db: Database) -> None:
    _load(db)
    rows = engagement(db.url, "cafe", "week", "Europe/Paris").rows
    empty = [r for r in rows if r["active_members"] == 0]
    assert empty and all(r["interactions_per_active_member"] is None for r in empty)
    assert sum(r["interactions"] for r in rows) == 5


def test_engagement_without_events_is_a_clear_error(db: Database) -> None:
    from fidelite.ledger import Ledger

    with pytest.raises(InputError, match=r"no program 'cafe' in this database \(it holds none\)"):
        engagement(db.url, "cafe", "month")
    Ledger(db).open_program("cafe", ["points"])
    with pytest.raises(InputError, match="program 'cafe' has no events"):
        engagement(db.url, "cafe", "month")


def test_engagement_cli_json(sqlite_template: Path, tmp_path: Path) -> None:
    path = tmp_path / "cafe.db"
    shutil.copy(sqlite_template, path)
    db = Database(f"sqlite:///{path}")
    _load(db)
    db.dispose()
    args = ["metrics", "engagement", "--input", str(path), "--timezone", "Europe/Paris"]
    proc = fidelite(*args, "--format", "json")
    out = json.loads(proc.stdout)
    assert out["metric"] == "engagement"
    assert out["parameters"] == {
        "period": "month",
        "program": "cafe",
        "timezone": "Europe/Paris",
        "database": f"sqlite:///{path}#cafe",
        "engine": "duckdb",
    }
    assert [r["interactions"] for r in out["rows"]] == [3, 1, 1]
    bad = fidelite(*args, "--timezone", "Mars/Base", "--format", "json", ok=False)
    assert bad.returncode != 0
    assert json.loads(bad.stdout)["error"]["message"] == (
        "--timezone: unknown time zone 'Mars/Base'"
    )


def test_an_event_type_named_like_a_column_does_not_overwrite_it(db: Database) -> None:
    program = PROGRAM.replace("events: [signup]", "events: [signup, start, period, interactions]")
    processor = EventProcessor(db, parse_program(program))
    for event_id, kind in (("k1", "start"), ("k2", "period"), ("k3", "interactions")):
        at = "2024-06-10T12:00:00+02:00"
        processor.process(Event.model_validate({"id": event_id, "type": kind, "member": "ann",
                                                "at": at}))  # fmt: skip
    (june,) = engagement(db.url, "cafe", "month", "Europe/Paris").rows
    # The fixed columns keep their meaning; each kind has its own kind_ column (1 each).
    assert (june["period"], june["start"], june["end"], june["interactions"]) == (
        "2024-06",
        "2024-06-01",
        "2024-06-30",
        3,
    )
    assert (june["kind_start"], june["kind_period"], june["kind_interactions"]) == (1, 1, 1)
