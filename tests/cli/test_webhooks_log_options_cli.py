"""``fidelite webhooks log --state`` and ``--limit`` out of their values are usage
errors (exit 2, as docs/metrics.md says of usage errors), not exit 1 with
invalid_request; values within them still list the log."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.support import as_json, fidelite


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    fidelite("db", "upgrade", db=url)
    fidelite("ledger", "open", "shop", db=url)
    return url


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--state", "zzz"],
      "Invalid value for '--state': 'zzz' is not one of pending, failed, delivered, dead"),
     (["--limit", "-1"], "Invalid value for '--limit': must be between 1 and 1000, got -1"),
     (["--limit", "0"], "Invalid value for '--limit': must be between 1 and 1000, got 0"),
     (["--limit", "1001"], "Invalid value for '--limit': must be between 1 and 1000, got 1001")],
)  # fmt: skip
def test_a_state_or_limit_out_of_its_values_is_a_usage_error(
    db: str, args: list[str], message: str
) -> None:
    refused = fidelite("webhooks", "log", "-p", "shop", *args, "-f", "json", db=db, ok=False)
    assert refused.returncode == 2
    assert as_json(refused) == {"error": {"code": "usage", "message": message}}
    text = fidelite("webhooks", "log", "-p", "shop", *args, db=db, ok=False)
    assert text.returncode == 2
    assert message in " ".join(text.stderr.replace("│", " ").split())


def test_the_bounds_and_each_state_are_accepted(db: str) -> None:
    for args in (["--limit", "1"], ["--limit", "1000"], *(["--state", s] for s in
                 ("pending", "failed", "delivered", "dead"))):  # fmt: skip
        listed = fidelite("webhooks", "log", "-p", "shop", *args, "-f", "json", db=db)
        assert as_json(listed) == []
