"""``fidelite rewards redeem|cancel|use --actor``: who did it is kept, as ``ledger adjust
--actor`` is, on the spend and the reversing transactions (``ledger history``) and on
the use (a real SQLite file)."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from fidelite.processing.tables import redemptions
from fidelite.store import Database
from tests.cli.support import as_json, fidelite
from tests.cli.test_rewards_cli import prepare


def test_redeem_cancel_and_use_keep_the_actor(tmp_path: Path) -> None:
    program, db = prepare(tmp_path, f"sqlite:///{tmp_path / 'shop.db'}")
    first = as_json(fidelite("rewards", "redeem", "ann", "mug", "-k", "r1", "--actor", "desk-2",
                             "-p", program, "-f", "json", db=db))  # fmt: skip
    fidelite("rewards", "cancel", str(first["id"]), "--actor", "ops@cafe", "-p", program, db=db)
    second = as_json(fidelite("rewards", "redeem", "ann", "mug", "-k", "r2", "-p", program,
                              "-f", "json", db=db))  # fmt: skip
    fidelite("rewards", "use", str(second["id"]), "-k", "u1", "--actor", "till-7", "-p",
             program, db=db)  # fmt: skip
    lines = json.loads(fidelite("ledger", "history", "ann", "-p", "shop", "-f", "json",
                                db=db).stdout)  # fmt: skip
    actors = [(r["reason"], r["actor"]) for r in lines if r["kind"] != "earn"]
    assert actors == [
        ("reward mug", None),
        (f"redemption {first['id']} cancelled", "ops@cafe"),
        ("reward mug", "desk-2"),
    ]
    database = Database(db)
    with database.read() as conn:
        used_by = conn.execute(select(redemptions.c.id, redemptions.c.used_by)
                               .order_by(redemptions.c.id)).all()  # fmt: skip
    database.dispose()
    assert [tuple(r) for r in used_by] == [(first["id"], None), (second["id"], "till-7")]
