"""An unknown column is guessed as a typo of a column of ours only when it is close to
it: a CRM's own columns (``email``, ``first_name``, ``country``) stand alone (the hint
was ``'first_name' (did you mean 'birth_date'?)``); real typos are still guessed. The
file is refused before anything is written."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from fidelite.processing import EventProcessor
from fidelite.processing.importer import ImportFileError, import_events, import_members
from fidelite.processing.tables import member_states
from fidelite.program import parse_program
from fidelite.store import Database

PROGRAM = """\
id: shop
name: Shop
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
"""


def count_members(db: Database) -> int:
    with db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(member_states)).scalar_one())


def test_a_crm_column_is_no_typo_of_ours(db: Database, tmp_path: Path) -> None:
    processor = EventProcessor(db, parse_program(PROGRAM))
    crm = tmp_path / "crm.csv"
    crm.write_text("member,email,first_name,segmnts,birthdate\nm9,a@b.c,Ann,vip,1990-05-17\n")
    with pytest.raises(ImportFileError) as raised:
        import_members(processor, crm, now=processor.clock())
    assert str(raised.value) == (
        f"{crm}: unknown column(s): 'email', 'first_name', 'segmnts' (did you mean "
        "'segments'?), 'birthdate' (did you mean 'birth_date'?)"
    )
    sales = tmp_path / "sales.csv"
    sales.write_text("event_id,type,member,date,amount,country,chanel\n"
                     "e1,purchase,m9,2026-11-01T10:00:00+00:00,10,FR,web\n")  # fmt: skip
    with pytest.raises(ImportFileError) as raised:
        import_events(processor, sales)
    assert str(raised.value) == (
        f"{sales}: missing column(s): at; unknown column(s): 'date' (did you mean 'at'?), "
        "'country', 'chanel' (did you mean 'channel'?)"
    )
    assert count_members(db) == 0
