"""A database upgraded by a newer fidelite (at a schema revision this one does not ship)
is refused by the upgrade, which names the revision and changes nothing, on SQLite and
PostgreSQL; before, Alembic failed with "Can't locate revision identified by '0009'"."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, text

from fidelite.store.migrate import (
    NewerSchema,
    check_known,
    current_revision,
    head_revision,
    known_revisions,
)
from tests.store.test_upgrade_with_rows import Scratch, scratch  # noqa: F401 (fixture)


def test_a_newer_database_is_refused_and_left_as_it_is(scratch: Scratch) -> None:  # noqa: F811
    db = scratch.new()
    db.upgrade()
    head = head_revision(db)
    assert head is not None
    newer = f"{int(head) + 1:04d}"  # the revision a newer fidelite's next migration has
    with db.write() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": newer})
        conn.execute(text("CREATE TABLE from_the_future (id INTEGER PRIMARY KEY)"))
    with db.read() as conn:
        before = sorted(inspect(conn).get_table_names())
    with pytest.raises(NewerSchema) as refused:
        db.upgrade()
    assert str(refused.value) == (
        f"the database was upgraded by a newer fidelite: it is at schema revision {newer}, "
        f"which this fidelite does not know (its newest is {head}); use that newer fidelite"
    )
    assert (refused.value.revision, refused.value.head) == (newer, head)
    assert current_revision(db) == newer
    with db.read() as conn:
        assert sorted(inspect(conn).get_table_names()) == before


def test_our_own_revisions_and_an_empty_database_pass() -> None:
    assert "0001" in known_revisions()
    for revision in [None, *sorted(known_revisions())]:
        check_known(revision)  # no exception
    with pytest.raises(NewerSchema):
        check_known("9999")
