"""Shared fixtures: real databases (a SQLite file, the PostgreSQL server) and a ledger.

PostgreSQL: the suite uses ``FIDELITE_TEST_PG`` (default
``postgresql://postgres@127.0.0.1:5432/test``) to create a scratch database per run.
When the server is unreachable the PostgreSQL tests are skipped with the reason,
except in CI (``CI`` set to true, 1 or yes) or with ``FIDELITE_REQUIRE_POSTGRES=1``, where
they fail.

Slow suites (marked ``slow``: Spark parity, concurrency stress, crash and long
property-based runs) run under ``CI=true``, with ``--run-slow``, or when ``-m`` selects
tests explicitly; otherwise they are skipped with that reason, so that a developer's
default run stays short.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import settings
from sqlalchemy import create_engine, text

from fidelite.processing import future
from fidelite.processing import processor as processor_module
from fidelite.store import Database
from tests.support import CheckedLedger

# Property tests: no per-example time limit. An example takes under a millisecond, but a
# collector pause or a descheduled process on a busy 2-core machine can take hundreds,
# and Hypothesis would report that as a failure (DeadlineExceeded / unreliable timings).
settings.register_profile("fidelite", deadline=None)
settings.load_profile("fidelite")

PG_ADMIN_URL = os.environ.get("FIDELITE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
# CI services set CI to true, 1 or yes: any of them means a CI run.
IN_CI = os.environ.get("CI", "").lower() in {"true", "1", "yes"}
REQUIRE_PG = IN_CI or os.environ.get("FIDELITE_REQUIRE_POSTGRES") == "1"
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
RUN_SLOW = IN_CI or os.environ.get("FIDELITE_SLOW") == "1"


TEST_CLOCK = datetime(2031, 1, 1, tzinfo=UTC)
"""The time of processing of the tests' event processors: after every date the tests'
histories use (campaigns of 2027, tiers re-qualified in 2030), so that an event a test
dates after the machine's today is not refused as ``event_in_future``."""


@pytest.fixture(autouse=True)
def processing_clock(monkeypatch: pytest.MonkeyPatch) -> datetime:
    """Every processor built without a clock (in the test, the CLI run in-process or the
    API app) reads :data:`TEST_CLOCK` as the time of processing: the tests give the
    processors a fixed clock, as a replay of history would, instead of widening the
    program's tolerance. A processor given its own ``clock`` keeps it; the tests of the
    check itself use :func:`real_clock` or their own clock."""
    monkeypatch.setattr(processor_module, "system_clock", lambda: TEST_CLOCK)
    return TEST_CLOCK


@pytest.fixture
def real_clock(processing_clock: datetime, monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine's clock as the default time of processing, as in production."""
    monkeypatch.setattr(processor_module, "system_clock", future.system_clock)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--run-slow",
        action="store_true",
        help="run the suites marked slow (CI=true or FIDELITE_SLOW=1 does too)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the slow suites, with the reason, unless CI, --run-slow or -m asks for them."""
    if RUN_SLOW or config.getoption("--run-slow") or config.getoption("markexpr"):
        return
    skip = pytest.mark.skip(reason="slow suite: runs in CI (CI=true); here with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def _pg_url(database: str) -> str:
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    return f"{base}/{database}".replace("postgresql://", "postgresql+psycopg://", 1)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """A scratch PostgreSQL database for this test run, migrated to head."""
    admin_url = _pg_url(PG_ADMIN_URL.rsplit("/", 1)[1])
    try:
        admin = create_engine(
            admin_url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3}
        )
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        message = f"PostgreSQL unreachable at {PG_ADMIN_URL}: {str(exc).splitlines()[0]}"
        if REQUIRE_PG:
            pytest.fail(message + " (required under CI=true)", pytrace=False)
        pytest.skip(message)
    name = f"fidelite_test_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = _pg_url(name)
    db = Database(url)
    db.upgrade()
    db.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def one_at_a_time(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Run the test under a lock shared by the run's xdist workers (a file in their common
    temporary directory): tests that open dozens of PostgreSQL connections at once use
    it, so that two of them never overlap and exceed the server's 100 connections."""
    lock = tmp_path_factory.getbasetemp().parent / "many_connections.lock"
    with lock.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (faster than migrating each time)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    db = Database(f"sqlite:///{path}")
    db.upgrade()
    db.dispose()
    return path


def _truncate_all(url: str) -> None:
    """Empty every table the migrations created (not the migration bookkeeping)."""
    engine = create_engine(url)
    with engine.begin() as conn:
        tables = conn.execute(
            text(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                "AND tablename <> 'alembic_version'"
            )
        ).scalars()
        conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
    engine.dispose()


def make_database(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    """A fresh, empty, migrated database of the given backend."""
    if backend == "sqlite":
        path = tmp_path / "fidelite.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return Database(f"sqlite:///{path}", pool_size=70)
    url = request.getfixturevalue("pg_server")
    _truncate_all(url)
    return Database(url, pool_size=70)


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """An empty migrated database, once on SQLite and once on PostgreSQL."""
    database = make_database(request.param, request, tmp_path)
    yield database
    database.dispose()


@pytest.fixture
def ledger(db: Database) -> CheckedLedger:
    """A ledger with program ``shop`` (currencies ``points`` and ``miles``) and members
    ``alice`` and ``bob``; invariants are asserted after every call."""
    checked = CheckedLedger(db)
    checked.open_program("shop", ["points", "miles"])
    checked.create_member("shop", "alice")
    checked.create_member("shop", "bob")
    return checked
