"""Replay over real HTTP on 127.0.0.1: never of an erased member's events; several ids
are replayed all or none."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from fidelite.cli.main import _register, app
from fidelite.privacy import erase_member
from fidelite.store import Database
from fidelite.webhooks import DeliveryWorker, WebhookError, log, replay
from fidelite.webhooks import subscriptions as subs
from fidelite.webhooks.deliveries import replay_all
from tests.webhooks.conftest import Receiver
from tests.webhooks.support import Clock, processor, purchase

_register()
runner = CliRunner()


def deliveries_of(db: Database) -> list[dict[str, Any]]:
    return sorted(log(db, "shop"), key=lambda d: d["id"])


def erased_ann(db: Database, receiver: Receiver, clock: Clock) -> list[dict[str, Any]]:
    """ann's member.created delivered, then ann erased: her points.earned stopped."""
    processor(db)
    subs.add(db, "shop", receiver.url, ["member.created", "points.earned"], allow_private=True)
    processor(db).process(purchase("p1", "ann", "10.00"))
    worker = DeliveryWorker(db, allow_private=True, clock=clock, timeout=5)
    assert worker.run_once(limit=1).delivered == 1
    worker.close()
    with db.write() as conn:
        erase_member(conn, "shop", "ann")
    rows = deliveries_of(db)
    assert [(d["event_type"], d["state"], d["last_error"]) for d in rows] == [
        ("member.created", "delivered", None),
        ("points.earned", "dead", "member erased"),
    ]
    return rows


def test_an_erased_members_deliveries_are_not_replayed(wdb: Database, receiver: Receiver) -> None:
    """Neither the one the erasure stopped nor the one delivered before it: sending the
    tombstone under an event id receivers hold with ann would link the two."""
    clock = Clock()
    before = erased_ann(wdb, receiver, clock)
    for row in before:
        with pytest.raises(WebhookError) as refused:
            replay(wdb, "shop", row["id"], at=clock.now)
        assert (refused.value.code, refused.value.field) == ("member_erased", "delivery_id")
        assert refused.value.message == (
            f"delivery_id: delivery {row['id']}: about a member erased since, never sent "
            "again (the event keeps only the member's tombstone, which its event id would "
            "link to the reference receivers already have)"
        )
    assert deliveries_of(wdb) == before  # nothing changed
    worker = DeliveryWorker(wdb, allow_private=True, clock=clock, timeout=5)
    assert worker.run_once().claimed == 0
    worker.close()
    assert len(receiver.requests) == 1  # ann's member.created, before the erasure


def with_bob_delivered(db: Database, receiver: Receiver, clock: Clock) -> list[dict[str, Any]]:
    """After :func:`erased_ann`, bob's two events delivered (deliveries 3 and 4)."""
    erased_ann(db, receiver, clock)
    processor(db).process(purchase("p2", "bob", "10.00"))
    worker = DeliveryWorker(db, allow_private=True, clock=clock, timeout=5)
    assert worker.run_once().delivered == 2
    worker.close()
    rows = deliveries_of(db)
    assert [(d["id"], d["state"]) for d in rows] == [
        (1, "delivered"), (2, "dead"), (3, "delivered"), (4, "delivered")
    ]  # fmt: skip
    return rows


def test_several_deliveries_are_replayed_all_or_none(wdb: Database, receiver: Receiver) -> None:
    clock = Clock()
    before = with_bob_delivered(wdb, receiver, clock)
    with pytest.raises(WebhookError) as unknown:
        replay_all(wdb, "shop", [3, 999, 4, 1000], at=clock.now)
    assert unknown.value.as_dict() == {
        "code": "unknown_delivery", "field": "delivery_id",
        "message": "delivery_id: no deliveries 999, 1000 in program 'shop'; nothing replayed",
    }  # fmt: skip
    with pytest.raises(WebhookError) as erased:
        replay_all(wdb, "shop", [3, 2, 4, 1], at=clock.now)
    assert erased.value.code == "member_erased"
    assert erased.value.message.startswith("delivery_id: deliveries 1, 2: about a member ")
    assert erased.value.message.endswith("; nothing replayed")
    assert deliveries_of(wdb) == before  # nothing changed
    done = replay_all(wdb, "shop", [4, 3, 4], at=clock.now)
    assert [(d["id"], d["state"], d["attempts"]) for d in done] == [
        (4, "pending", 1), (3, "pending", 1)
    ]  # fmt: skip


def test_the_cli_replays_all_or_none(tmp_path: Path, receiver: Receiver) -> None:
    """`webhooks replay 3 999 4` replays neither 3 nor 4 (exit 1, the error naming 999)."""
    path = tmp_path / "shop.db"
    db = Database(f"sqlite:///{path}")
    db.upgrade()
    clock = Clock()
    before = with_bob_delivered(db, receiver, clock)

    def cli(*ids: str, code: int) -> Any:
        result = runner.invoke(app, ["webhooks", "replay", *ids, "--program", "shop",
                                     "--db", f"sqlite:///{path}", "--format", "json"])  # fmt: skip
        assert result.exit_code == code, result.output
        return json.loads(result.stdout)

    assert cli("3", "999", "4", code=1)["error"] == {
        "code": "unknown_delivery", "field": "delivery_id",
        "message": "delivery_id: no delivery 999 in program 'shop'; nothing replayed",
    }  # fmt: skip
    assert cli("3", "2", code=1)["error"]["code"] == "member_erased"
    assert deliveries_of(db) == before
    assert [d["state"] for d in cli("3", "4", code=0)] == ["pending", "pending"]
    db.dispose()
