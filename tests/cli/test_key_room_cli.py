"""Every command taking ``--key`` takes one of 200 characters (ASCII or not), on SQLite
and PostgreSQL, and a retry with it does nothing again: ``rewards redeem`` stored its
redemption as ``cli:<key>`` and spent it as ``redeem:cli:<key>``, which refused a key of
over 189 characters as too long; a longer one now stands as a digest there (a key that
fitted is kept whole, so a retry of an earlier redemption finds it)."""

from __future__ import annotations

from hashlib import sha256
from pathlib import Path

import pytest
from sqlalchemy import select, text

from fidelite.store import Database
from tests.cli.support import as_json, fidelite
from tests.cli.test_rewards_cli import PROGRAM, prepare

COUPONS = "coupons:\n  - {id: welcome, name: Welcome, prefix: WELC}\n"


def commands(program: Path, out: Path) -> dict[str, list[str | Path]]:
    return {
        "earn": ["ledger", "earn", "ann", "5", "-p", program],
        "adjust": ["ledger", "adjust", "ann", "7", "--reason", "r", "--actor", "me", "-p", program],
        "assign": ["tier", "assign", "ann", "gold", "--until", "2099-01-01", "--reason", "r",
                   "-p", program],
        "issue": ["coupon", "issue", "welcome", "--count", "1", "--out", out, "-p", program],
        "redeem": ["rewards", "redeem", "ann", "coffee", "-p", program],
    }  # fmt: skip


def ledger_keys(db: Database) -> list[str]:
    with db.read() as conn:
        rows = conn.execute(text("SELECT idempotency_key FROM ledger_transactions ORDER BY id"))
        return [str(r[0]) for r in rows]


@pytest.mark.parametrize("base", ["k" * 200, "é" * 200], ids=["ascii", "accents"])
def test_each_key_command_takes_a_key_of_200_characters(
    db: Database, tmp_path: Path, base: str
) -> None:
    program, url = prepare(tmp_path, db.url)
    program.write_text(PROGRAM + COUPONS, encoding="utf-8")
    before = ledger_keys(db)
    keys = {}
    for i, (name, args) in enumerate(commands(program, tmp_path / "codes.csv").items()):
        keys[name] = key = base[:-1] + "vwxyz"[i]
        first = as_json(fidelite(*args, "--key", key, "--format", "json", db=url))
        again = as_json(fidelite(*args, "--key", key, "--format", "json", db=url))
        assert again["replayed"] is True and first["replayed"] is False, (name, first)
    assert len((tmp_path / "codes.csv").read_text().splitlines()) == 2  # header and 1 code
    spent = "redeem:cli:sha256:" + sha256(keys["redeem"].encode()).hexdigest()[:48]
    assert ledger_keys(db)[len(before) :] == [keys["earn"], keys["adjust"], spent]
    with db.read() as conn:
        stored = conn.execute(select(text("key")).select_from(text("redemptions"))).scalars()
        assert list(stored) == [spent.removeprefix("redeem:")]
    balance = as_json(fidelite("ledger", "balance", "ann", "-p", program, "--format", "json",
                               db=url))  # fmt: skip
    assert balance["available"] == 150 + 5 + 7 - 30


def test_a_redemption_key_that_fitted_is_kept_whole(tmp_path: Path) -> None:
    program, url = prepare(tmp_path, f"sqlite:///{tmp_path / 'shop.db'}")
    key = "k" * 189
    fidelite("rewards", "redeem", "ann", "coffee", "-k", key, "-p", program, db=url)
    db = Database(url)
    try:
        assert ledger_keys(db)[-1] == f"redeem:cli:{key}"
    finally:
        db.dispose()


def test_a_redemption_key_over_200_characters_is_refused_naming_it(tmp_path: Path) -> None:
    program, url = prepare(tmp_path, f"sqlite:///{tmp_path / 'shop.db'}")
    out = fidelite("rewards", "redeem", "ann", "coffee", "-k", "k" * 201, "-p", program,
                   "--format", "json", db=url, ok=False)  # fmt: skip
    assert out.returncode == 1
    message = "key: must be at most 200 characters"
    assert as_json(out) == {"error": {"code": "invalid_request", "field": "key",
                                      "message": message}}  # fmt: skip
    history = as_json(fidelite("rewards", "history", "ann", "-p", program, "--format", "json",
                               db=url))  # fmt: skip
    assert history == []
