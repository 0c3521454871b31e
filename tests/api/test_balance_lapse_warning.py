"""GET /v1/members/{id}/balance under an inactivity expiry policy warns of the points
about to lapse: ``expiring_soon`` and ``next_expiry`` give the deadline the member's
last activity sets, as the ledger's balance does. Over real HTTP, on a SQLite file and
on PostgreSQL, exact values."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
import uvicorn

from fidelite.api import Settings, create_app
from fidelite.api.keys import create_key
from fidelite.program import parse_program
from fidelite.store import Database
from tests.api.conftest import Running, free_port
from tests.conftest import BACKENDS, make_database

PARIS = ZoneInfo("Europe/Paris")
PROGRAM = """\
id: shop
name: Shop
time_zone: Europe/Paris
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
expiry: {mode: inactivity, months: 1}
"""


@pytest.fixture(params=BACKENDS)
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """The API of the inactivity program: its URL and an admin token."""
    db: Database = make_database(request.param, request, tmp_path)
    app = create_app(db.url, parse_program(PROGRAM), Settings())
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="error")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the API server did not start"
        time.sleep(0.02)
    running = Running(server, thread)
    token = create_key(db, "shop", "admin")[1]
    yield f"http://127.0.0.1:{server.config.port}", token
    running.stop()
    db.dispose()


def purchase_day() -> date:
    """A day 10 to 13 days ago (Paris), on the 28th at the latest: a month later is the
    same day of the next month, 17 to 21 days from now, inside the 30-day window."""
    day = datetime.now(PARIS).date() - timedelta(days=10)
    return day.replace(day=min(day.day, 28))


def test_balance_route_warns_of_points_lapsing_at_the_inactivity_deadline(
    served: tuple[str, str],
) -> None:
    url, token = served
    day = purchase_day()
    bought = datetime(day.year, day.month, day.day, 12, tzinfo=PARIS)
    month, year = (day.month % 12) + 1, day.year + (day.month == 12)
    lapses = datetime(year, month, day.day, 12, tzinfo=PARIS).astimezone(UTC)
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as c:
        assert c.post("/v1/members", json={"id": "bob"}).status_code == 201
        sent = {"id": "p1", "type": "purchase", "member": "bob", "at": bought.isoformat(),
                "amount": "50"}  # fmt: skip
        assert c.post("/v1/events", json=sent).status_code == 201
        body = c.get("/v1/members/bob/balance").json()
    (points,) = body["balances"]
    assert {k: v for k, v in points.items() if k != "as_of"} == {
        "member_ref": "bob",
        "currency": "points",
        "available": 50,
        "pending": 0,
        "expiring_soon": 50,
        "expiring_window_days": 30,
        "debt": 0,
        "next_expiry": lapses.isoformat().replace("+00:00", "Z"),  # in UTC, as lots' dates
    }
