"""A subscription added with --allow-private keeps that permission: the worker delivers
to its loopback URL without being given the flag again, while every other subscription
is still checked as before (real HTTP to a receiver on 127.0.0.1)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, insert, select, text
from typer.testing import CliRunner

from fidelite.cli.main import _register, app
from fidelite.store import Database
from fidelite.store.migrate import current_revision
from fidelite.webhooks import DeliveryWorker
from fidelite.webhooks import subscriptions as subs
from fidelite.webhooks.tables import deliveries, subscriptions
from tests.conftest import BACKENDS, PG_ADMIN_URL, _pg_url
from tests.webhooks.conftest import Receiver
from tests.webhooks.support import processor, purchase

_register()
runner = CliRunner()
NO_FLAG = {"FIDELITE_WEBHOOKS_ALLOW_PRIVATE": None}  # the flag not given by the environment


def cli(dbfile: Path, *args: str, code: int = 0) -> Any:
    result = runner.invoke(
        app, [*args, "--db", f"sqlite:///{dbfile}", "--format", "json"], env=NO_FLAG
    )
    assert result.exit_code == code, result.output
    return json.loads(result.stdout)


def states(db: Database) -> list[tuple[int, str, str | None]]:
    with db.read() as conn:
        rows = conn.execute(
            select(deliveries.c.subscription_id, deliveries.c.state, deliveries.c.last_error)
            .order_by(deliveries.c.id)
        ).all()  # fmt: skip
    return [(int(r[0]), r[1], r[2]) for r in rows]


def test_deliver_honours_the_permission_given_when_the_subscription_was_added(
    tmp_path: Path, receiver: Receiver
) -> None:
    dbfile = tmp_path / "shop.db"
    db = Database(f"sqlite:///{dbfile}")
    db.upgrade()
    made = cli(dbfile, "webhooks", "add", receiver.url, "-e", "points.earned", "--allow-private",
               "--program", "shop", "-k", "dev-1")  # fmt: skip
    assert made["allow_private"] is True
    (listed,) = cli(dbfile, "webhooks", "list", "--program", "shop")
    assert (listed["id"], listed["allow_private"]) == (made["id"], True)
    processor(db).process(purchase("p1", "ann", "42.00"))
    report = cli(dbfile, "webhooks", "deliver")  # no --allow-private, no environment variable
    assert report == {
        "claimed": 1,
        "delivered": 1,
        "failed": 0,
        "dead": 0,
        "lost": 0,
        "released": 0,
        "postponed": 0,
    }
    (request,) = receiver.requests
    assert json.loads(request.body)["data"]["points"] == 42
    assert states(db) == [(made["id"], "delivered", None)]
    db.dispose()


def test_only_the_subscription_added_with_the_permission_reaches_a_private_url(
    wdb: Database, receiver: Receiver
) -> None:
    allowed = subs.add(wdb, "shop", receiver.url, ["points.earned"], allow_private=True)
    # A subscription to the same receiver that was not given the permission (as one made
    # before it was kept, or whose name has come to resolve to a private address).
    with wdb.write() as conn:
        plain = subs.create(conn, "shop", subs.Checked(receiver.url, ["points.earned"],
                                                       subs.new_secret()))  # fmt: skip
    assert (allowed.allow_private, plain.allow_private) == (True, False)
    assert [(s.id, s.allow_private) for s in subs.list_all(wdb, "shop")] == [
        (allowed.id, True), (plain.id, False)
    ]  # fmt: skip
    processor(wdb).process(purchase("p1", "ann", "10.00"))
    worker = DeliveryWorker(wdb)
    report = worker.run_once()
    worker.close()
    assert (report.claimed, report.delivered, report.failed) == (2, 1, 1)
    assert len(receiver.requests) == 1
    assert states(wdb) == [
        (allowed.id, "delivered", None),
        (plain.id, "failed", "refused: url: host 127.0.0.1 is loopback (this server itself); "
         "allowed only when private destinations are allowed (the CLI's --allow-private, "
         "allow_private=True in code), for development"),
    ]  # fmt: skip


@pytest.fixture(params=BACKENDS)
def db_at_0007(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """An empty database migrated to 0007 only."""
    if request.param == "sqlite":
        database = Database(f"sqlite:///{tmp_path / 'old.db'}")
        database.upgrade("0007")
        yield database
        database.dispose()
        return
    request.getfixturevalue("pg_server")
    admin = create_engine(_pg_url(PG_ADMIN_URL.rsplit("/", 1)[1]), isolation_level="AUTOCOMMIT")
    name = f"fidelite_mig_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    database = Database(_pg_url(name))
    database.upgrade("0007")
    yield database
    database.dispose()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_migration_0008_keeps_existing_subscriptions_checked(db_at_0007: Database) -> None:
    """Subscriptions made before 0008 were never given the permission to keep: false."""
    with db_at_0007.write() as conn:
        conn.execute(text(
            "INSERT INTO webhook_subscriptions (program_id, url, event_types, secret, active, "
            "description, created_at) VALUES ('shop', 'http://127.0.0.1:9/hooks', '[\"*\"]', "
            "'whsec_0123456789abcdef', true, NULL, '2026-11-01 08:00:00')"
        ))  # fmt: skip
    db_at_0007.upgrade("0008")  # later migrations have their own tests
    assert current_revision(db_at_0007) == "0008"
    (old,) = subs.list_all(db_at_0007, "shop")
    assert (old.url, old.allow_private) == ("http://127.0.0.1:9/hooks", False)
    with db_at_0007.write() as conn:  # and a new row without the column gets false
        conn.execute(insert(subscriptions), {
            "program_id": "shop", "url": "https://93.184.216.34/", "event_types": ["*"],
            "secret": "whsec_0123456789abcdef", "active": True, "description": None,
            "created_at": old.created_at,
        })  # fmt: skip
    assert [s.allow_private for s in subs.list_all(db_at_0007, "shop")] == [False, False]
