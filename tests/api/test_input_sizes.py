"""Sizes an event or a member is sent with are bounded, refused naming the field: at
most 100 attributes, attribute names of at most 64 characters (told cut, with their
length), ``store`` and ``channel`` of at most 128 characters; at the bounds they are
taken. Nothing is written for a refused call. Real HTTP, SQLite file and PostgreSQL;
the members import refuses the same row."""

from __future__ import annotations

from pathlib import Path

from fidelite.processing.importer import import_members
from fidelite.store import Database
from tests.api.conftest import Live
from tests.processing.test_import_members import NOW, processor

REVIEW = {"type": "review", "member": "ann", "at": "2026-11-20T10:00:00+01:00"}
LONG = "an attribute name is at most 64 characters, got '{}...' ({} characters)"


def test_sizes_beyond_the_bounds_are_refused(live: Live) -> None:
    many = {f"a{i}": i for i in range(101)}
    name = "n" * 300_000
    with live.client("integration") as c:
        answers = {
            "store": c.post("/v1/events", json={**REVIEW, "id": "r1", "store": "s" * 129}),
            "channel": c.post("/v1/events", json={**REVIEW, "id": "r2", "channel": "c" * 129}),
            "count": c.post("/v1/events", json={**REVIEW, "id": "r3", "attributes": many}),
            "name": c.post("/v1/members", json={"id": "bob", "attributes": {name: 1}}),
        }
        assert live.ledger_rows() == 0
        for gone in ("/v1/events/r1", "/v1/events/r2", "/v1/events/r3", "/v1/members/bob"):
            assert c.get(gone).status_code == 404
        edge = c.post("/v1/events", json={
            **REVIEW, "id": "r4", "store": "s" * 128, "channel": "c" * 128,
            "attributes": {**{f"a{i}": i for i in range(99)}, "n" * 64: 1},
        })  # fmt: skip
    errors = {k: (a.status_code, a.json()["errors"]) for k, a in answers.items()}
    assert errors == {
        "store": (422, [{"location": "body.store",
                         "message": "String should have at most 128 characters"}]),
        "channel": (422, [{"location": "body.channel",
                           "message": "String should have at most 128 characters"}]),
        "count": (422, [{"location": "body.attributes",
                         "message": "at most 100 attributes, got 101"}]),
        "name": (422, [{"location": "body.attributes",
                        "message": LONG.format("n" * 40, 300_000)}]),
    }  # fmt: skip
    assert len(answers["name"].text) < 1000
    assert (edge.status_code, edge.json()["outcome"]) == (201, "processed")


def test_members_import_refuses_a_long_attribute_name(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "members.csv"
    path.write_text('member,attributes\nann,"{""' + "n" * 65 + '"": 1}"\n', encoding="utf-8")
    report = import_members(processor(db), path, now=NOW)
    assert report.summary()["rejected"] == 1
    assert [r.message for r in report.rejected] == ["attributes: " + LONG.format("n" * 40, 65)]
