"""A redemption is shown in the currency its points were spent in, as the ledger
recorded it, also once its reward, or the reward's currency, is no longer in the program
file (it was shown in the program's default currency then). SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.support import as_json, fidelite
from tests.conftest import BACKENDS, make_database

BEFORE = """\
id: shop
name: Shop
currencies:
  - {id: points, name: Points, value: 0.01}
  - {id: stars, name: Stars, value: 1}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
  - {id: star, on: [purchase], fixed: 3, currency: stars}
rewards:
  - {id: star_mug, name: Mug, kind: free_product, sku: MUG, cost: 1, currency: stars}
"""
WITHOUT_REWARD = BEFORE.split("rewards:")[0]
WITHOUT_STARS = """\
id: shop
name: Shop
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
"""
EVENTS = "event_id,type,member,at,amount\np1,purchase,ann,2026-01-10T10:00:00Z,20\n"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("after", [WITHOUT_REWARD, WITHOUT_STARS], ids=["reward", "currency"])
def test_redemption_keeps_its_currency_once_removed_from_the_program(
    backend: str, after: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    database = make_database(backend, request, tmp_path)
    db = database.url
    database.dispose()
    program = tmp_path / "shop.yaml"
    program.write_text(BEFORE, encoding="utf-8")
    (tmp_path / "events.csv").write_text(EVENTS, encoding="utf-8")
    fidelite("import", "events", tmp_path / "events.csv", "-p", program, db=db)
    done = as_json(fidelite("rewards", "redeem", "ann", "star_mug", "-k", "k1", "-p", program,
                            "-f", "json", db=db))  # fmt: skip
    assert (done["points"], done["currency"]) == (1, "stars")
    program.write_text(after, encoding="utf-8")
    rid = str(done["id"])
    shown = as_json(fidelite("rewards", "show", rid, "-p", program, "-f", "json", db=db))
    assert (shown["reward"], shown["points"], shown["currency"]) == ("star_mug", 1, "stars")
    history = as_json(fidelite("rewards", "history", "ann", "-p", program, "-f", "json", db=db))
    assert [(h["id"], h["currency"]) for h in history] == [(done["id"], "stars")]
    text = fidelite("rewards", "cancel", rid, "-p", program, db=db).stdout
    assert f"cancelled redemption {rid} (star_mug for ann), 1 stars: 1 stars back" in " ".join(
        text.split()
    )
    again = as_json(fidelite("rewards", "cancel", rid, "-p", program, "-f", "json", db=db))
    assert (again["currency"], again["points"], again["replayed"]) == ("stars", 1, True)
