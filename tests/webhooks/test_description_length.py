"""A webhook subscription's operator note is at most 200 characters, the column's size:
`fidelite webhooks add --description` longer than that is refused, naming the option's
field, with nothing written, on SQLite and PostgreSQL (PostgreSQL used to fail with a
traceback, truncation refused by the column)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from fidelite.store import Database
from fidelite.webhooks.tables import subscriptions
from tests.cli.support import fidelite


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        return str(request.getfixturevalue("pg_server"))
    path = tmp_path / "shop.db"
    Database(f"sqlite:///{path}").upgrade()
    return f"sqlite:///{path}"


def _count(url: str) -> int:
    db = Database(url)
    try:
        with db.read() as conn:
            return int(conn.execute(select(func.count()).select_from(subscriptions)).scalar_one())
    finally:
        db.dispose()


def test_a_description_over_200_characters_is_refused(url: str) -> None:
    before = _count(url)
    args = ("webhooks", "add", "https://93.184.216.34/hooks", "--program", "shop", "--key",
            "long-note", "-f", "json")  # fmt: skip
    proc = fidelite(*args, "--description", "n" * 201, db=url, ok=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    error = json.loads(proc.stdout)["error"]
    assert error["code"] == "invalid_request"
    assert error["message"] == "description: at most 200 characters, got 201"
    assert _count(url) == before
    # 200 characters fit, and the same key is still free
    made = json.loads(fidelite(*args, "--description", "n" * 200, db=url).stdout)
    assert made["description"] == "n" * 200
    assert _count(url) == before + 1
