"""The ledger's member commands (balance, earn, spend, adjust) without ``--currency``
use the program's default currency, the first its program file declares, as rules,
rewards and the API do: not a currency literally named ``points``. A balance without
``--currency`` shows every currency of the program; with a program id only and several
currencies in the database, a move needs ``--currency``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.support import fidelite
from tests.conftest import BACKENDS, make_database

AT = "2026-03-01T10:00:00+00:00"
# stars first: the program's default currency; points second
PROGRAM = """\
id: sp
name: SP
currencies:
  - {id: stars, name: Stars, value: 0.01, money: EUR}
  - {id: points, name: Partner points, value: 0.002, money: EUR}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1, per: 1}}
"""
MILES = """\
id: mi
name: MI
currencies:
  - {id: miles, name: Miles, value: 0.001, money: KWD}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1, per: 1}}
"""


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Program ``sp`` (stars, then points) and ``mi`` (miles only); ann holds 20 stars
    and 100 points, bob 7 miles."""
    database = make_database(request.param, request, tmp_path)
    database.dispose()
    fidelite("ledger", "open", "sp", "-c", "stars", "-c", "points", db=database.url)
    fidelite("ledger", "open", "mi", "-c", "miles", db=database.url)
    fidelite("member", "add", "ann", "-p", "sp", db=database.url)
    fidelite("member", "add", "bob", "-p", "mi", db=database.url)
    for currency, points, key in (("stars", 20, "e1"), ("points", 100, "e2")):
        fidelite("ledger", "earn", "ann", str(points), "-k", key, "-c", currency, "-p", "sp",
                 "--at", AT, db=database.url)  # fmt: skip
    fidelite("ledger", "earn", "bob", "7", "-k", "e3", "-c", "miles", "-p", "mi", "--at", AT,
             db=database.url)  # fmt: skip
    yield database.url


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    (sp := tmp_path / "sp.yaml").write_text(PROGRAM, encoding="utf-8")
    (mi := tmp_path / "mi.yaml").write_text(MILES, encoding="utf-8")
    return sp, mi


def available(url: str, member: str, program: str, currency: str) -> int:
    shown = fidelite("ledger", "balance", member, "-p", program, "-c", currency, "-f", "json",
                     db=url).stdout  # fmt: skip
    return int(json.loads(shown)["available"])


def test_spend_without_currency_takes_the_programs_first_currency(
    url: str, files: tuple[Path, Path]
) -> None:
    sp, _ = files
    shown = fidelite("ledger", "spend", "ann", "10", "-k", "s1", "--reason", "voucher",
                     "-P", str(sp), "-f", "json", db=url).stdout  # fmt: skip
    assert json.loads(shown)["currency"] == "stars"
    assert stars_and_points(url) == (10, 100)


def test_earn_and_adjust_without_currency_use_the_first_currency(
    url: str, files: tuple[Path, Path]
) -> None:
    sp, _ = files
    fidelite("ledger", "earn", "ann", "5", "-k", "e9", "-p", str(sp), db=url)
    fidelite("ledger", "adjust", "ann", "3", "-k", "a9", "--reason", "outage", "--actor", "ops",
             "-p", str(sp), db=url)  # fmt: skip
    assert stars_and_points(url) == (28, 100)


def test_balance_without_currency_shows_every_currency(url: str, files: tuple[Path, Path]) -> None:
    sp, _ = files
    table = fidelite("ledger", "balance", "ann", "-P", str(sp), db=url).stdout.splitlines()
    assert [line.split(":")[0] for line in table] == ["ann stars", "ann points"]
    assert "available 20," in table[0] and "available 100," in table[1]
    shown = json.loads(fidelite("ledger", "balance", "ann", "-p", str(sp), "-f", "json",
                                db=url).stdout)  # fmt: skip
    # the default currency's object, as before, the others beside it
    assert (shown["member_ref"], shown["currency"], shown["available"]) == ("ann", "stars", 20)
    assert [(b["currency"], b["available"]) for b in shown["other_currencies"]] == [("points", 100)]
    # one currency asked for: one object, as before
    one = json.loads(fidelite("ledger", "balance", "ann", "-p", str(sp), "-c", "points",
                              "-f", "json", db=url).stdout)  # fmt: skip
    assert (one["currency"], one["available"]) == ("points", 100)


def test_a_program_without_points_needs_no_currency(url: str, files: tuple[Path, Path]) -> None:
    _, mi = files
    one = json.loads(fidelite("ledger", "balance", "bob", "-p", str(mi), "-f", "json",
                              db=url).stdout)  # fmt: skip
    assert (one["currency"], one["available"]) == ("miles", 7)
    # a program id only: the database's one currency of the program
    fidelite("ledger", "earn", "bob", "5", "-k", "e8", "-p", "mi", db=url)
    one = json.loads(fidelite("ledger", "balance", "bob", "-p", "mi", "-f", "json", db=url).stdout)
    assert (one["currency"], one["available"]) == ("miles", 12)


def test_a_move_with_a_program_id_and_several_currencies_needs_currency(url: str) -> None:
    refused = fidelite("ledger", "spend", "ann", "10", "-k", "s2", "-p", "sp", "-f", "json",
                       db=url, ok=False)  # fmt: skip
    assert refused.returncode == 2
    error = json.loads(refused.stdout)["error"]
    assert error["code"] == "usage" and error["field"] == "currency"
    assert error["message"] == (
        "program 'sp' has several currencies (stars, points): give --currency, or the "
        "program file (--program FILE or --program-file) to use its first currency"
    )
    assert stars_and_points(url) == (20, 100)
    history = fidelite("ledger", "history", "ann", "-p", "sp", "-f", "json", db=url).stdout
    assert len(json.loads(history)) == 2  # the two earns, nothing more


def stars_and_points(url: str) -> tuple[int, int]:
    """Ann's available stars and points in program sp."""
    return available(url, "ann", "sp", "stars"), available(url, "ann", "sp", "points")
