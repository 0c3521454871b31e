"""``fidelite metrics program-kpis``: ``--point-value`` refuses negative zero (it was
printed as ``-0`` and priced the liability ``-0.0``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.support import TIER_EVENTS, TIER_PROGRAM, as_json, fidelite


@pytest.fixture
def db(tmp_path: Path) -> str:
    program = tmp_path / "shop.yaml"
    program.write_text(TIER_PROGRAM, encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    fidelite("db", "upgrade", db=url)
    (tmp_path / "events.csv").write_text(TIER_EVENTS, encoding="utf-8")
    fidelite("import", "events", tmp_path / "events.csv", "-p", program, db=url)
    return url


@pytest.mark.parametrize("text", ["-0", "-0.00", "-0.01"])
def test_a_negative_point_value_even_zero_is_a_usage_error(db: str, text: str) -> None:
    refused = fidelite("metrics", "program-kpis", "--db", db, f"--point-value={text}", "-f",
                       "json", ok=False)  # fmt: skip
    assert refused.returncode == 2
    assert as_json(refused) == {"error": {"code": "usage", "message": (
        f"--point-value: expected a money amount such as 0.01, got {text!r}")}}  # fmt: skip


def test_a_point_value_of_zero_prices_the_liability_at_zero(db: str) -> None:
    kpis = as_json(fidelite("metrics", "program-kpis", "--db", db, "--point-value", "0", "-f",
                            "json"))  # fmt: skip
    assert kpis["parameters"]["point_value"] == "0"
    assert [row["liability"] for row in kpis["rows"]] == [0.0] * len(kpis["rows"])
    assert all(str(row["liability"]) == "0.0" for row in kpis["rows"])
