"""A bad option value is refused in our words, not pydantic's (typer checks values with
pydantic): no ``Value error, `` before a check's own message, and a number that is not
one is named as such, in the JSON error object and in the message on stderr."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.support import as_json, fidelite


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["clv", "fit", "-m", "nope", "tx.csv"],
         "Invalid value for '--model' / '-m': 'nope' is not one of 'bgnbd', 'paretonbd', "
         "'mbgnbd', 'gammagamma', 'sbg'."),
        (["clv", "fit", "--time-unit", "month", "tx.csv"],
         "Invalid value for '--time-unit': 'month' is not one of 'day', 'week'."),
        (["ledger", "reverse", "1", "-p", "shop", "-k", "k1", "--shortfall", "zz"],
         "Invalid value for '--shortfall': 'zz' is not one of 'reject', 'within_balance', "
         "'debt'."),
        (["webhooks", "log", "--subscription", "abc"],
         "Invalid value for '--subscription': 'abc' is not a whole number"),
        (["webhooks", "log", "--subscription", "1.5"],
         "Invalid value for '--subscription': '1.5' is not a whole number"),
        (["rewards", "show", "abc", "-p", "shop"],
         "Invalid value for 'redemption': 'abc' is not a whole number"),
        (["ledger", "history", "ann", "-p", "shop", "--before", "abc"],
         "Invalid value for '--before': 'abc' is not a whole number"),
    ],
)  # fmt: skip
def test_a_bad_option_value_is_named_in_plain_words(
    tmp_path: Path, args: list[str], message: str
) -> None:
    db = f"sqlite:///{tmp_path / 'none.db'}"
    refused = fidelite(*args, "-f", "json", db=db, ok=False)
    assert refused.returncode == 2
    assert as_json(refused) == {"error": {"code": "usage", "message": message}}
    text = fidelite(*args, db=db, ok=False)
    assert text.returncode == 2
    flat = " ".join(text.stderr.replace("│", " ").split())
    assert message in flat
    assert "Value error" not in flat and "Input should be" not in flat
    assert not (tmp_path / "none.db").exists()
