"""An id too large for the database (64-bit) is a usage error naming the argument, as
the API refuses it, instead of a traceback (SQLite's OverflowError, PostgreSQL's
DataError): ``ledger history --before``, ``ledger reverse`` and ``ledger release``. The
ledger itself answers such a transaction id ``unknown_transaction`` and such a page
``invalid_request``. Nothing is written. On a SQLite file and on PostgreSQL."""

from __future__ import annotations

import pytest

from fidelite.ledger import Ledger, Rejected, RejectionCode
from fidelite.store import Database
from tests.cli.support import fidelite
from tests.support import snapshot

TOO_LARGE = str(2**63)
HUGE = "99999999999999999999"


@pytest.fixture
def shop(db: Database) -> Ledger:
    ledger = Ledger(db)
    ledger.open_program("shop", ["points"])
    ledger.create_member("shop", "m1")
    ledger.earn("shop", "m1", "points", 10, key="e1", at="2026-03-01T00:00:00+00:00")
    return ledger


@pytest.mark.parametrize(
    ("args", "name"),
    [
        (["history", "m1", "--before", TOO_LARGE], "'--before'"),
        (["reverse", HUGE, "-k", "r1"], "'transaction'"),
        (["release", HUGE, "-k", "r1"], "'transaction'"),
        (["reverse", TOO_LARGE, "-k", "r1"], "'transaction'"),
    ],
)
def test_an_id_beyond_64_bits_is_a_usage_error(shop: Ledger, args: list[str], name: str) -> None:
    before = snapshot(shop.db)
    proc = fidelite("ledger", *args, "-p", "shop", db=shop.db.url, ok=False)
    assert proc.returncode == 2
    shown = " ".join(proc.stderr.replace("│", " ").split())
    assert f"Invalid value for {name}: must be at most " in shown
    assert "9223372036854775807" in shown
    assert "Traceback" not in proc.stderr + proc.stdout
    assert snapshot(shop.db) == before


def test_the_largest_id_is_an_unknown_transaction(shop: Ledger) -> None:
    before = snapshot(shop.db)
    for command in ("reverse", "release"):
        proc = fidelite("ledger", command, str(2**63 - 1), "-k", "r1", "-p", "shop",
                        db=shop.db.url, ok=False)  # fmt: skip
        assert proc.returncode == 1
        assert f"error [unknown_transaction] no transaction {2**63 - 1} in program 'shop'" in (
            proc.stderr
        )
    assert snapshot(shop.db) == before


def test_the_ledger_refuses_such_ids_without_a_traceback(shop: Ledger) -> None:
    before = snapshot(shop.db)
    for call in (
        lambda: shop.reverse("shop", 10**20, key="r1"),
        lambda: shop.release("shop", 10**20, key="r1"),
    ):
        with pytest.raises(Rejected) as caught:
            call()
        assert caught.value.code is RejectionCode.UNKNOWN_TRANSACTION
        assert caught.value.message == f"no transaction {10**20} in program 'shop'"
    with pytest.raises(Rejected) as page:
        shop.history("shop", "m1", before_id=2**63)
    assert (page.value.code, page.value.field) == (RejectionCode.INVALID_REQUEST, "before_id")
    assert snapshot(shop.db) == before
    assert [e.kind for e in shop.history("shop", "m1", before_id=2**63 - 1)] == ["earn"]
