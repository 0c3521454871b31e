"""A goodwill credit through the API (one member, or in bulk) without ``expires_at``
gets the date the program's ``after_earning`` policy gives points earned then; an
``expires_at`` given wins (a bulk one not later than now is refused whole, nothing
done, nothing stored); a bulk call without it is fingerprinted as before the field
existed, so a stored answer replays. The same on the command line (``ledger adjust``,
``ledger earn`` with the program file). On a SQLite file and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import select, text

from fidelite.api.idempotency import request_hash
from fidelite.api.keys import create_key
from fidelite.engine.expiry import expires_at
from fidelite.program import parse_program
from fidelite.store import Database
from fidelite.store.tables import LedgerTransaction, Lot
from tests.api.conftest import start_server
from tests.cli.support import as_json, fidelite
from tests.conftest import BACKENDS, make_database

PROGRAM = """\
id: shop
name: Shop
time_zone: Europe/Paris
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
expiry: {mode: after_earning, months: 12, rounding: end_of_month}
"""
POLICY = parse_program(PROGRAM).expiry
PARIS = ZoneInfo("Europe/Paris")


@dataclass
class Shop:
    url: str
    db: Database
    token: str

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60,
                            headers={"Authorization": f"Bearer {self.token}"})  # fmt: skip


@pytest.fixture(params=BACKENDS)
def shop(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Shop]:
    db = make_database(request.param, request, tmp_path)
    server, url = start_server(db, program=PROGRAM)
    yield Shop(url, db, create_key(db, "shop", "admin")[1])
    server.stop()
    db.dispose()


def lots(db: Database) -> list[tuple[int, datetime, datetime | None]]:
    with db.read() as conn:
        rows = conn.execute(select(Lot.points, Lot.earned_at, Lot.expires_at).order_by(Lot.id))
        return [(int(p), e, x) for p, e, x in rows]


def stored(db: Database) -> dict[str, str]:
    with db.read() as conn:
        rows = conn.execute(text("SELECT idem_key, request_hash FROM api_requests")).all()
    return {str(k): str(h) for k, h in rows}


def count(db: Database) -> int:
    with db.read() as conn:
        return len(conn.execute(select(LedgerTransaction.id)).all())


def test_credits_get_the_policys_date_unless_one_is_given(shop: Shop) -> None:
    with shop.client() as c:
        for ref in ("ann", "bob"):
            assert c.post("/v1/members", json={"id": ref}).status_code == 201
        one = c.post("/v1/members/ann/adjustments", json={"points": 25, "reason": "outage"},
                     headers={"Idempotency-Key": "a1"})  # fmt: skip
        given = c.post("/v1/members/ann/adjustments",
                       json={"points": 5, "reason": "outage",
                             "expires_at": "2031-06-01T00:00:00+02:00"},
                       headers={"Idempotency-Key": "a2"})  # fmt: skip
        bulk = {"points": 10, "reason": "outage", "members": ["ann", "bob"]}
        many = c.post("/v1/adjustments:bulk", json=bulk, headers={"Idempotency-Key": "b1"})
        dated = c.post("/v1/adjustments:bulk",
                       json={**bulk, "expires_at": "2031-01-01T00:00:00+01:00"},
                       headers={"Idempotency-Key": "b2"})  # fmt: skip
    assert [r.status_code for r in (one, given, many, dated)] == [201, 201, 200, 200]
    assert [many.json()["credited"], dated.json()["credited"]] == [2, 2]
    found = lots(shop.db)
    assert [(points, expiry) for points, _, expiry in found[1:2] + found[4:]] == [
        (5, datetime(2031, 5, 31, 22, tzinfo=UTC)),
        (10, datetime(2030, 12, 31, 23, tzinfo=UTC)),
        (10, datetime(2030, 12, 31, 23, tzinfo=UTC)),
    ]
    for points, earned, expiry in found[:1] + found[2:4]:  # the policy's date from their time
        assert POLICY is not None
        assert (points, expiry) == (points, expires_at(POLICY, earned, PARIS))
        assert expiry is not None and expiry.astimezone(PARIS).day == 1
    assert [p for p, _, _ in found] == [25, 5, 10, 10, 10, 10]
    # the bulk call without expires_at is fingerprinted as it was before the field
    route = "POST /v1/adjustments:bulk"
    old_body = {"points": 10, "reason": "outage", "currency": None,
                "members": ["ann", "bob"], "segment": None}  # fmt: skip
    assert stored(shop.db)["b1"] == request_hash(route, old_body)


def test_a_bulk_expiry_not_after_now_is_refused_whole(shop: Shop) -> None:
    with shop.client() as c:
        assert c.post("/v1/members", json={"id": "ann"}).status_code == 201
        before, keys = count(shop.db), stored(shop.db)
        refused = c.post("/v1/adjustments:bulk",
                         json={"points": 10, "reason": "outage", "members": ["ann"],
                               "expires_at": "2020-01-01T00:00:00+00:00"},
                         headers={"Idempotency-Key": "b1"})  # fmt: skip
        sloppy = c.post("/v1/adjustments:bulk",
                        json={"points": 10, "reason": "outage", "members": ["ann"],
                              "expires_at": "2031-01-01"},
                        headers={"Idempotency-Key": "b2"})  # fmt: skip
    assert (refused.status_code, refused.json()["code"], refused.json()["field"]) == (
        422, "invalid_request", "expires_at")  # fmt: skip
    assert (sloppy.status_code, sloppy.json()["code"]) == (422, "invalid_request")
    assert (count(shop.db), stored(shop.db), lots(shop.db)) == (before, keys, [])


@pytest.fixture
def program_file(tmp_path: Path) -> Path:
    path = tmp_path / "shop.yaml"
    path.write_text(PROGRAM, encoding="utf-8")
    return path


def test_the_command_line_dates_credits_with_the_program_file(
    db: Database, program_file: Path
) -> None:
    fidelite("member", "add", "zed", "-p", program_file, db=db.url)
    common = ("--at", "2035-01-10T00:00:00Z", "-f", "json")
    as_json(fidelite("ledger", "adjust", "zed", "25", "--reason", "goodwill", "--actor", "qa",
                     "-k", "g1", "-P", program_file, *common, db=db.url))  # fmt: skip
    as_json(fidelite("ledger", "earn", "zed", "7", "-k", "e1", "-P", program_file, *common,
                     db=db.url))  # fmt: skip
    as_json(fidelite("ledger", "adjust", "zed", "5", "--reason", "goodwill", "--actor", "qa",
                     "-k", "g2", "-P", program_file, "--expires", "2035-06-01", *common,
                     db=db.url))  # fmt: skip
    as_json(fidelite("ledger", "earn", "zed", "3", "-k", "e2", "-p", "shop", *common,
                     db=db.url))  # fmt: skip
    # 12 months after 10 January, end of month in Paris: 1 February 2036 00:00 Paris (a
    # credit dated in the future: one whose date is already past is refused)
    end = datetime(2036, 1, 31, 23, tzinfo=UTC)
    assert [(p, x) for p, _, x in lots(db)] == [
        (25, end), (7, end), (5, datetime(2035, 5, 31, 22, tzinfo=UTC)), (3, None),
    ]  # fmt: skip
