"""A PostgreSQL password in ``--db`` or ``FIDELITE_DB`` is never printed: ``db upgrade``
and ``db status`` name the database without it (text and JSON), and so do the errors of
``db status``, ``ledger check`` and the commands that upgrade first."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from fidelite.store.migrate import MIGRATIONS
from tests.cli.support import fidelite
from tests.conftest import PG_ADMIN_URL

HEAD = ScriptDirectory(str(MIGRATIONS)).get_current_head()

UNREACHABLE = "postgresql://postgres:secretpw@127.0.0.1:1/x"
COMMANDS = [["db", "status"], ["ledger", "check"], ["apikey", "list"], ["db", "upgrade"]]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_an_error_names_the_database_without_its_password(command: list[str]) -> None:
    proc = fidelite(*command, "--db", UNREACHABLE, "-f", "json", ok=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "secretpw" not in proc.stdout + proc.stderr
    error = json.loads(proc.stdout)["error"]
    assert error["code"] == "db"
    verb = "upgrade" if command == ["db", "upgrade"] else "open"
    assert error["message"].startswith(
        f"cannot {verb} postgresql+psycopg://postgres@127.0.0.1:1/x: "
        "(psycopg.OperationalError) connection failed"
    )


def test_an_error_in_plain_text_from_the_environment() -> None:
    proc = fidelite("ledger", "check", db=UNREACHABLE, ok=False)
    assert proc.returncode == 1 and "secretpw" not in proc.stdout + proc.stderr
    assert proc.stderr.startswith(
        "error [db] cannot open postgresql+psycopg://postgres@127.0.0.1:1/x: "
    )


@pytest.fixture
def with_password(pg_server: str) -> Iterator[tuple[str, str]]:
    """A new PostgreSQL database: its URL with a password (the server's trust
    authentication ignores it) and how it must be shown."""
    admin_url = make_url(PG_ADMIN_URL)
    password = admin_url.password or "secretpw"
    name = f"fidelite_pw_{uuid.uuid4().hex[:10]}"
    admin = create_engine(
        admin_url.set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin_url.set(password=password, database=name)
    shown = url.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    shown = shown.replace(f":{password}@", "@")
    yield url.render_as_string(hide_password=False), shown
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.mark.postgres
def test_upgrade_and_status_name_the_database_without_its_password(
    with_password: tuple[str, str],
) -> None:
    url, shown = with_password
    password = make_url(url).password
    assert password and password in url and password not in shown
    upgraded = fidelite("db", "upgrade", "--db", url, "-f", "json")
    assert json.loads(upgraded.stdout) == {"database": shown, "revision": HEAD}
    status = fidelite("db", "status", "-f", "json", db=url)
    assert json.loads(status.stdout) == {
        "database": shown, "revision": HEAD, "head": HEAD, "current": True
    }  # fmt: skip
    plain = fidelite("db", "upgrade", "--db", url)
    assert plain.stdout.strip() == f"database {shown} is at revision {HEAD}"
    plain = fidelite("db", "status", "--db", url)
    assert plain.stdout.strip() == f"{shown}: revision {HEAD} (newest {HEAD}) — up to date"
    for proc in (upgraded, status, plain):
        assert password not in proc.stdout + proc.stderr
