"""``fidelite rewards use``: a reward handed over in store is marked used once per key
(the same key prints the first use), a used redemption reads ``used`` in ``show`` and
``history`` and cannot be cancelled, a cancelled one cannot be used, and every refusal
changes nothing (a real SQLite file)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from tests.cli.support import as_json, fidelite
from tests.cli.test_rewards_cli import available, catalogue, prepare, state


@pytest.fixture
def shop(tmp_path: Path) -> tuple[Path, str]:
    """ann has 150 points, bob 120, dan 100."""
    return prepare(tmp_path, f"sqlite:///{tmp_path / 'shop.db'}")


def test_rewards_use_has_help_with_examples() -> None:
    shown = " ".join(fidelite("rewards", "use", "--help").stdout.split())
    assert "Example: fidelite rewards use 42 --key till-7-0042 --store paris-04" in shown
    assert "--format json" in shown
    assert "use" in " ".join(fidelite("rewards", "--help").stdout.split())


def test_a_used_reward_reads_used_and_cannot_be_cancelled(shop: tuple[Path, str]) -> None:
    program, db = shop
    made = as_json(fidelite("rewards", "redeem", "ann", "mug", "-k", "r1", "-p", program,
                            "-f", "json", db=db))  # fmt: skip
    rid = str(made["id"])
    redeemed = datetime.fromisoformat(made["redeemed_at"])
    used = as_json(fidelite("rewards", "use", rid, "--key", "till-1", "--store", "paris-04",
                            "-p", program, "-f", "json", db=db))  # fmt: skip
    used_at = datetime.fromisoformat(used["used_at"])
    assert used_at >= redeemed
    assert used == made | {"status": "used", "used_at": used["used_at"],
                           "used_store": "paris-04", "replayed": False}  # fmt: skip
    before = state(db)
    again = as_json(fidelite("rewards", "use", rid, "--key", "till-1", "--store", "paris-04",
                             "-p", program, "-f", "json", db=db))  # fmt: skip
    assert again == used | {"replayed": True}
    table = fidelite("rewards", "use", rid, "--key", "till-1", "--store", "paris-04", "-p",
                     program, db=db)  # fmt: skip
    assert " ".join(table.stdout.split()) == (
        f"used redemption {rid} (mug for ann, code {made['code']}) in store paris-04 at "
        f"{used['used_at']} (replayed: already done with this key)"
    )
    conflict = fidelite("rewards", "use", rid, "--key", "till-1", "--store", "lyon-01", "-p",
                        program, "-f", "json", db=db, ok=False)  # fmt: skip
    assert as_json(conflict)["error"]["code"] == "idempotency_conflict"
    twice = fidelite("rewards", "use", rid, "--key", "till-2", "-p", program, "-f", "json",
                     db=db, ok=False)  # fmt: skip
    assert twice.returncode == 1
    assert as_json(twice)["error"] == {
        "code": "redemption_already_used",
        "message": f"cannot use again: redemption {rid} was used in store 'paris-04' at "
        f"{used['used_at']}",
        "detail": {"used_at": used["used_at"], "used_store": "paris-04"},
    }  # fmt: skip
    cancel = fidelite("rewards", "cancel", rid, "-p", program, "-f", "json", db=db, ok=False)
    assert cancel.returncode == 1
    assert as_json(cancel)["error"]["code"] == "redemption_used"
    assert state(db) == before
    assert available(program, db, "ann") == 50
    assert catalogue(program, db)["mug"]["left"] == 0  # still counts against the stock
    shown = as_json(fidelite("rewards", "show", rid, "-p", program, "-f", "json", db=db))
    assert shown["status"] == "used"
    history = as_json(fidelite("rewards", "history", "ann", "-p", program, "-f", "json", db=db))
    assert [(h["id"], h["status"]) for h in history] == [(made["id"], "used")]


def test_a_cancelled_redemption_cannot_be_used(shop: tuple[Path, str]) -> None:
    program, db = shop
    made = as_json(fidelite("rewards", "redeem", "bob", "coffee", "-k", "b1", "-p", program,
                            "-f", "json", db=db))  # fmt: skip
    rid = str(made["id"])
    fidelite("rewards", "cancel", rid, "-p", program, db=db)
    before = state(db)
    refused = fidelite("rewards", "use", rid, "--key", "till-1", "-p", program, "-f", "json",
                       db=db, ok=False)  # fmt: skip
    assert refused.returncode == 1
    error = as_json(refused)["error"]
    assert error["code"] == "redemption_cancelled"
    assert error["message"].startswith(f"cannot use redemption {rid}: it was cancelled at ")
    assert error["message"].endswith(f": its code {made['code']} is void and its points were "
                                     "returned")  # fmt: skip
    early = fidelite("rewards", "use", rid, "--key", "k", "--at", "2020-01-01", "-p", program,
                     "-f", "json", db=db, ok=False)  # fmt: skip
    assert as_json(early)["error"]["code"] == "redemption_cancelled"
    blank = fidelite("rewards", "use", rid, "--key", " ", "-p", program, "-f", "json", db=db,
                     ok=False)  # fmt: skip
    assert as_json(blank)["error"]["code"] == "usage"
    assert state(db) == before
    assert available(program, db, "bob") == 120


def test_a_use_before_the_redemption_is_refused(shop: tuple[Path, str]) -> None:
    program, db = shop
    made = as_json(fidelite("rewards", "redeem", "dan", "coffee", "-k", "d1", "-p", program,
                            "-f", "json", db=db))  # fmt: skip
    before = state(db)
    early = fidelite("rewards", "use", str(made["id"]), "--key", "k", "--at",
                     "2020-01-01T10:00:00+01:00", "-p", program, "-f", "json", db=db,
                     ok=False)  # fmt: skip
    error = as_json(early)["error"]
    assert error["code"] == "invalid_request"
    assert error["message"].startswith("at: 2020-01-01T09:00:00+00:00 is before the redemption")
    assert state(db) == before
