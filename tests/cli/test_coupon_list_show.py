"""A campaign's codes and one code's status: there was no way to list or export a
campaign's codes, nor to look one code up. ``fidelite coupon list`` (paged, table, JSON
or CSV, by status) and ``fidelite coupon show`` (as typed: any case, without dashes),
and ``GET /v1/coupons/{code}``. SQLite file, then PostgreSQL; values from the store."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from fidelite.api.keys import create_key
from fidelite.engine import Event
from fidelite.engine.coupon import make_code
from fidelite.processing import EventProcessor, MemberProfile
from fidelite.program import parse_program
from fidelite.store import Database
from tests.api.conftest import Live, start_server
from tests.cli.support import as_json, fidelite
from tests.conftest import BACKENDS, make_database

PROGRAM = """\
id: shop
name: Shop
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: gift, on: [purchase], coupon_campaign: gift, fixed: 50}
coupons:
  - {id: gift, name: Gift, prefix: GIFT, segments: [vip],
     window: {end: 2030-01-01T00:00:00+00:00}}
  - {id: other, name: Other, prefix: OTHER}
"""
AT = datetime.fromisoformat("2026-11-15T10:00:00+01:00")


def _setup(db: Database) -> tuple[list[str], str]:
    """Five gift codes (two for ann), one used by ann with event p1; one other code."""
    p = EventProcessor(db, parse_program(PROGRAM))
    p.enrol("ann", at=AT, profile=MemberProfile(segments=["vip"]))
    anyone = p.issue_coupons("gift", 3, at=AT)
    ann = p.issue_coupons("gift", 2, at=AT, member_ref="ann")
    p.issue_coupons("other", 1, at=AT)
    p.process(Event(id="p1", type="purchase", member="ann", at=AT, amount=Decimal(10),
                    coupon=ann[0]))  # fmt: skip
    return sorted(anyone + ann), ann[0]


def _program(tmp_path: Path) -> Path:
    path = tmp_path / "shop.yaml"
    path.write_text(PROGRAM, encoding="utf-8")
    return path


def test_coupon_list_pages_filters_and_exports(db: Database, tmp_path: Path) -> None:
    codes, used = _setup(db)
    program = _program(tmp_path)
    rows = as_json(fidelite("coupon", "list", "gift", "-p", program, "-f", "json", db=db.url))
    assert [r["code"] for r in rows] == codes
    by_code = {r["code"]: r for r in rows}
    assert {k: by_code[used][k] for k in ("status", "member", "used_by", "used_event_id")} == {
        "status": "used", "member": "ann", "used_by": "ann", "used_event_id": "p1"}  # fmt: skip
    assert by_code[used]["used_at"].startswith("2026-11-15T09:00:00")
    unused = as_json(fidelite("coupon", "list", "gift", "--status", "unused", "-p", program,
                              "-f", "json", db=db.url))  # fmt: skip
    assert [r["code"] for r in unused] == [c for c in codes if c != used]
    assert all(r["used_by"] is None and r["status"] == "issued" for r in unused)
    used_only = fidelite("coupon", "list", "gift", "-s", "used", "-p", program, "-f", "csv",
                         db=db.url).stdout  # fmt: skip
    parsed = list(csv.DictReader(io.StringIO(used_only)))
    assert [(r["code"], r["used_by"], r["used_event_id"]) for r in parsed] == [(used, "ann", "p1")]
    # pages of 2: the cursor on stderr, the rows alone on stdout
    first = fidelite("coupon", "list", "gift", "-n", "2", "-p", program, "-f", "json",
                     db=db.url, separate=True)  # fmt: skip
    assert [r["code"] for r in json.loads(first.stdout)] == codes[:2]
    assert json.loads(first.stderr) == {"next_cursor": codes[1]}
    last = fidelite("coupon", "list", "gift", "-n", "2", "--after", codes[3].lower(), "-p",
                    program, db=db.url, separate=True)  # fmt: skip
    assert codes[4] in last.stdout and codes[3] not in last.stdout
    assert "more codes follow" not in last.stderr
    assert "campaign gift: 4 unused, 1 used" in last.stderr
    refused = fidelite("coupon", "list", "nope", "-p", program, db=db.url, ok=False)
    assert refused.returncode == 1
    assert "[unknown_campaign] no coupon campaign 'nope' (campaigns: gift, other)" in (
        " ".join(refused.stderr.split()))  # fmt: skip


def test_coupon_show_as_typed(db: Database, tmp_path: Path) -> None:
    _, used = _setup(db)
    program = _program(tmp_path)
    typed = used.replace("-", "").lower()
    shown = as_json(fidelite("coupon", "show", typed, "-p", program, "-f", "json", db=db.url))
    assert {k: v for k, v in shown.items() if k not in ("issued_at", "used_at")} == {
        "code": used, "campaign": "gift", "status": "used", "member": "ann", "used_by": "ann",
        "used_event_id": "p1", "valid_from": None, "valid_until": "2030-01-01T00:00:00+00:00",
        "segments": ["vip"]}  # fmt: skip
    table = " ".join(fidelite("coupon", "show", used, "-p", program, db=db.url).stdout.split())
    assert f"Code {used}" in table and "used_event_id │ p1" in table
    typo = used[:-1] + ("0" if used[-1] != "0" else "1")
    bad = fidelite("coupon", "show", typo, "-p", program, "-f", "json", db=db.url, ok=False)
    assert bad.returncode == 1
    error = as_json(bad)["error"]
    assert error["code"] == "coupon_invalid"
    assert "the check symbol (the last one) does not match" in error["message"]
    never = make_code("GIFT", "000000000000")  # valid, never issued
    unknown = fidelite("coupon", "show", never, "-p", program, "-f", "json", db=db.url, ok=False)
    assert as_json(unknown)["error"]["code"] == "coupon_unknown"


@pytest.fixture(params=BACKENDS)
def live(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Live]:
    db = make_database(request.param, request, tmp_path)
    server, url = start_server(db, program=PROGRAM)
    tokens = {role: create_key(db, "shop", role)[1] for role in ("admin", "analyst", "support")}
    yield Live(url, db, tokens)
    server.stop()
    db.dispose()


def test_get_coupon_by_code(live: Live) -> None:
    _, used = _setup(live.db)
    with live.client("support") as client:
        got = client.get(f"/v1/coupons/{used.replace('-', '').lower()}")
        assert got.status_code == 200
        body = got.json()
        assert {k: body[k] for k in ("code", "status", "member", "used_by", "used_event_id",
                                     "segments")} == {
            "code": used, "status": "used", "member": "ann", "used_by": "ann",
            "used_event_id": "p1", "segments": ["vip"]}  # fmt: skip
        typo = client.get(f"/v1/coupons/{used[:-1]}{'0' if used[-1] != '0' else '1'}")
        assert (typo.status_code, typo.json()["code"], typo.json()["field"]) == (
            422,
            "coupon_invalid",
            "code",
        )
        assert "check symbol" in typo.json()["detail"]
    with live.client("analyst") as client:
        assert client.get(f"/v1/coupons/{used}").status_code == 403
