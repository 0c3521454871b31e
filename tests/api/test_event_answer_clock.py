"""An event's answer (``POST /v1/events``, in a batch, replayed under its key) gives its
earnings' ``pending_until`` and ``expires_at`` on the program's clock, as ``program
simulate`` does, on a SQLite file and PostgreSQL: the pending end kept the event's offset
(``2026-03-14T10:00:00+05:00``) while the expiry was in the program's zone."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fidelite.api.keys import create_key
from tests.api.conftest import Live, start_server
from tests.cli.support import fidelite
from tests.conftest import BACKENDS, make_database


def event(event_id: str, at: str, amount: str) -> dict[str, Any]:
    return {"id": event_id, "type": "purchase", "member": "ann", "at": at, "amount": amount}


HOLDING = """\
id: shop
name: Shop
time_zone: Europe/Paris
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
pending: {days: 14, event_types: [purchase]}
expiry: {mode: after_earning, months: 1, rounding: end_of_month}
"""


@pytest.fixture(params=BACKENDS)
def holding(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Live]:
    db = make_database(request.param, request, tmp_path)
    server, url = start_server(db, program=HOLDING)
    yield Live(url, db, {"integration": create_key(db, "shop", "integration")[1]})
    server.stop()
    db.dispose()


def test_earnings_dates_are_on_the_programs_clock_as_simulate_gives_them(
    holding: Live, tmp_path: Path
) -> None:
    at = "2026-02-28T10:00:00+05:00"  # 06:00 in Paris
    program = tmp_path / "shop.yaml"
    program.write_text(HOLDING, encoding="utf-8")
    sent = tmp_path / "e.json"
    sent.write_text(json.dumps(event("s1", at, "10")), encoding="utf-8")
    simulated = json.loads(
        fidelite("program", "simulate", str(program), str(sent), "-f", "json").stdout
    )
    earned = [{"currency": "points", "points": 10,
               "pending_until": "2026-03-14T06:00:00+01:00",  # 14 days, in Paris time
               "expires_at": "2026-04-01T00:00:00+02:00"}]  # fmt: skip
    assert simulated["earnings"] == earned
    with holding.client("integration") as c:
        alone = c.post("/v1/events", json=event("s1", at, "10"))
        assert alone.status_code == 201, alone.text
        assert alone.json()["decision"]["earnings"] == earned
        assert alone.json()["decision"]["at"] == at  # the event's time as sent
        batch = c.post("/v1/events:batch", json={"events": [event("s2", at, "10")]})
        (entry,) = batch.json()["results"]
        assert (entry["outcome"], entry["decision"]["earnings"]) == ("processed", earned)
        keyed = {"Idempotency-Key": "k1"}
        first = c.post("/v1/events", json=event("s3", at, "10"), headers=keyed)
        replayed = c.post("/v1/events", json=event("s3", at, "10"), headers=keyed)
        assert first.json()["decision"]["earnings"] == earned
        assert replayed.json() == first.json()
