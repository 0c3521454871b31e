"""Three command-line holes a review found:

- a time option (``ledger adjust --at``) took an offset no clock has (``-23:59``) and
  recorded the adjustment a day off; it is now refused as the API refuses it, and
  nothing is written;
- ``apikey revoke " fid_<id>_<secret>"`` (a token pasted with a space, or after
  ``Bearer``) answered ``no key ' fid_..._<secret>'``, printing the secret, and left the
  key live: it is now read as the token it is;
- CSV output guarded every cell against spreadsheet formulas, so ``metrics rfm -f csv``
  wrote customer ``-bob`` as ``'-bob`` and a file joined back by ``customer_id`` missed
  them; only text people type (a key's label) is guarded now."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from sqlalchemy import func, select

from fidelite.api.keys import authenticate, create_key
from fidelite.store import Database
from fidelite.store.tables import LedgerTransaction
from tests.cli.support import fidelite

PROGRAM = """\
id: shop
name: Shop
time_zone: Europe/Paris
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1}}
"""


def test_a_time_option_with_an_offset_no_clock_has_is_refused(tmp_path: Path) -> None:
    program = tmp_path / "shop.yaml"
    program.write_text(PROGRAM, encoding="utf-8")
    db = f"sqlite:///{tmp_path / 'shop.db'}"
    fidelite("db", "upgrade", db=db)
    for at in ("2026-12-01T10:00:00-23:59", "2026-12-01T10:00:00+18:00"):
        refused = fidelite("ledger", "adjust", "ann", "5", "--reason", "r", "--actor", "me",
                           "-k", f"k{at[-6:]}", "-P", program, "--at", at, "-f", "json",
                           db=db, ok=False)  # fmt: skip
        assert refused.returncode == 2
        error = json.loads(refused.stdout)["error"]
        assert error["code"] == "usage"
        assert error["message"].startswith("--at: ")
        assert "offsets run from -12:00 to +14:00" in error["message"]
    database = Database(db)
    with database.read() as conn:
        assert conn.execute(select(func.count()).select_from(LedgerTransaction)).scalar() == 0
    database.dispose()


def test_a_token_pasted_with_a_space_or_after_bearer_is_revoked(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'keys.db'}")
    db.upgrade()
    _, first = create_key(db, "shop", "support")
    _, second = create_key(db, "shop", "support")
    for pasted, token in ((f" {first} ", first), (f"Bearer {second}", second)):
        done = fidelite("apikey", "revoke", pasted, "-f", "json", db=db.url)
        assert token.split("_", 2)[2] not in done.stdout + done.stderr
        assert authenticate(db, token) is None
    _, third = create_key(db, "shop", "support")
    secret = third.split("_", 2)[2]
    garbled = fidelite("apikey", "revoke", f"xfid_{third}", db=db.url, ok=False)
    assert garbled.returncode == 1 and secret not in garbled.stdout + garbled.stderr
    assert authenticate(db, third) is not None
    db.dispose()


def test_csv_ids_are_written_as_they_are(tmp_path: Path) -> None:
    tx = tmp_path / "tx.csv"
    tx.write_text(
        "customer_id,timestamp,amount\n-bob,2026-01-05,10\n=carl,2026-01-06,20\n"
        "@ann,2026-02-01,5\n-bob,2026-02-03,7\n",
        encoding="utf-8",
    )
    out = fidelite("metrics", "rfm", "--input", tx, "-f", "csv").stdout
    ids = sorted(row["customer_id"] for row in csv.DictReader(io.StringIO(out)))
    assert ids == ["-bob", "=carl", "@ann"]
