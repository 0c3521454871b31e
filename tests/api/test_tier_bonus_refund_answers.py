"""The refund that undoes gold, over real HTTP (SQLite file and PostgreSQL): its answer,
its id sent again and ``GET /v1/events/{id}`` list the reversal of the later purchase's
tier bonus with its own; the CLI import of the same events leaves the same books."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from fidelite.store import Database
from fidelite.store.tables import LedgerTransaction
from tests.api.conftest import Live, start_server
from tests.cli.support import fidelite
from tests.conftest import make_database
from tests.processing.test_tier_bonus_refund import SPEND

EVENTS = [
    {"id": "p1", "type": "purchase", "member": "ann", "at": "2026-01-05T10:00:00+01:00",
     "amount": "1000"},
    {"id": "p2", "type": "purchase", "member": "ann", "at": "2026-01-10T10:00:00+01:00",
     "amount": "100"},
]  # fmt: skip
REFUND = {"id": "r1", "type": "refund", "member": "ann", "at": "2026-01-20T10:00:00+01:00",
          "amount": "1000", "refund_of": "p1"}  # fmt: skip


def books(db: Database) -> list[tuple[Any, ...]]:
    tx = LedgerTransaction
    with db.read() as conn:
        rows = conn.execute(
            select(tx.id, tx.kind, tx.points, tx.idempotency_key, tx.reverses_id, tx.reason)
            .order_by(tx.id)
        ).all()  # fmt: skip
    return [tuple(r) for r in rows]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def shop(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    from fidelite.api.keys import ROLES, create_key

    db = make_database(request.param, request, tmp_path)
    server, url = start_server(db, program=SPEND)
    tokens = {role: create_key(db, "shop", role)[1] for role in ROLES}
    yield Live(url, db, tokens)
    server.stop()
    db.dispose()


def test_every_answer_about_the_refund_lists_the_bonus_reversal(
    shop: Live, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    with shop.client("integration") as c:
        for event in EVENTS:
            assert c.post("/v1/events", json=event).status_code == 201
        first = c.post("/v1/events", json=REFUND)
        again = c.post("/v1/events", json=REFUND)
        batch = c.post("/v1/events:batch", json={"events": [REFUND]})
        recorded = c.get("/v1/events/r1")
        balance = c.get("/v1/members/ann/balance")
    assert (first.status_code, again.status_code, batch.status_code) == (201, 200, 200)
    answers = [first.json(), again.json(), batch.json()["results"][0], recorded.json()]
    assert [(a["points"], a["transactions"]) for a in answers] == [
        ({"points": -1100}, [3, 4])] * 4  # fmt: skip
    assert recorded.json()["trace"][1] == {
        "transaction_id": 2,
        "currency": "points",
        "points": 100,
        "written_off": 0,
        "debt_added": 0,
        "tier_bonus_of": "p2",
        "bonus": 100,
        "tier": "gold",
        "now": "bronze",
    }
    assert balance.json()["balances"][0]["available"] == 100
    api_books = books(shop.db)
    assert [b[2:5] for b in api_books[2:]] == [
        (1000, "refund:r1:1", 1), (100, "tier-bonus:r1:2", 2)]  # fmt: skip
    # the same events imported with the CLI, in another database: the same books
    (tmp_path / "cli").mkdir()
    other = make_database("sqlite", request, tmp_path / "cli")
    program = tmp_path / "program.yaml"
    program.write_text(SPEND, encoding="utf-8")
    rows = ["event_id,type,member,at,amount,refund_of"] + [
        f"{e['id']},{e['type']},ann,{e['at']},{e['amount']},{e.get('refund_of', '')}"
        for e in [*EVENTS, REFUND]
    ]
    path = tmp_path / "events.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    done = fidelite("import", "events", path, "-p", program, "-f", "json", db=other.url)
    assert done.returncode == 0, done.stderr
    assert books(other) == api_books
    other.dispose()
