"""Money is shown to its minor unit: program-kpis rounds each money figure to the
decimals of the currency's ``money`` (ISO 4217: KWD 3, JPY 0, EUR 2) and names that
money; the metrics on a transactions file round to ``--money-places`` (default 2, cents),
stated in their parameters, alike in DuckDB and Spark. Program currencies priced in
different moneys are reported apart, with a warning."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from fidelite.analytics.metrics.result import money
from fidelite.engine import Event
from fidelite.processing import EventProcessor
from fidelite.program import parse_program
from fidelite.store import Database
from tests.cli.support import fidelite

KWD = """\
id: kw
name: KW
time_zone: UTC
currencies:
  - {id: points, name: Points, value: 0.001, money: KWD}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1, per: 0.100}, rounding: half_up}
"""


def _program(money: str, *more: str) -> str:
    """KWD with the points' money replaced, and more currency lines."""
    text = KWD.replace("money: KWD", f"money: {money}")
    lines = "".join(f"  - {line}\n" for line in more)
    return text.replace("rules:\n", lines + "rules:\n")


def _purchases(db: Database, program: str) -> None:
    """ann buys 4.500 (45 points), bob 0.125 (1 point): 46 points, spend 4.625."""
    p = EventProcessor(db, parse_program(program))
    for event_id, member, amount in (("p1", "ann", "4.500"), ("p2", "bob", "0.125")):
        p.process(Event.model_validate({"id": event_id, "type": "purchase", "member": member,
                                        "at": "2026-11-07T10:00:00+00:00",
                                        "amount": Decimal(amount)}))  # fmt: skip


def _kpis(db: Database, tmp_path: Path, program: str, *args: str) -> dict[str, Any]:
    (path := tmp_path / "program.yaml").write_text(program, encoding="utf-8")
    out = fidelite("metrics", "program-kpis", "--db", f"{db.url}#kw", "-P", path, "-f", "json",
                   *args)  # fmt: skip
    return dict(json.loads(out.stdout))


MONEY = ("liability", "member_spend", "spend_per_active_member")


def test_minor_units() -> None:
    from fidelite.program.currency import minor_unit

    assert [minor_unit(c) for c in ("KWD", "BHD", "JPY", "KRW", "VND", "EUR", "USD")] == [
        3, 3, 0, 0, 0, 2, 2
    ]  # fmt: skip
    assert (money(0.0455, 3), money(0.045, 2), money(1234.5, 0), money(152.625)) == (
        0.046, 0.05, 1235.0, 152.63
    )  # fmt: skip


def test_kwd_figures_keep_their_fils(db: Database, tmp_path: Path) -> None:
    _purchases(db, KWD)
    out = _kpis(db, tmp_path, KWD)
    row = out["rows"][0]
    assert row["points_outstanding"] == 46
    # 46 x 0.001 = 0.046 KWD (was 0.05), spend 4.625 (was 4.63), per member 2.3125 -> 2.313
    assert [row[k] for k in MONEY] == [0.046, 4.625, 2.313]
    params = out["parameters"]
    assert (params["money"], params["money_places"], params["money_places_from"]) == (
        "KWD", 3, "money KWD of points in the program file " + str(tmp_path / "program.yaml")
    )  # fmt: skip
    assert "money_warning" not in params


def test_yen_figures_have_no_cents(db: Database, tmp_path: Path) -> None:
    _purchases(db, KWD)
    out = _kpis(db, tmp_path, _program("JPY"))
    assert [out["rows"][0][k] for k in MONEY] == [0.0, 5.0, 2.0]
    assert (out["parameters"]["money"], out["parameters"]["money_places"]) == ("JPY", 0)


def test_money_places_given_wins_and_without_file_cents(db: Database, tmp_path: Path) -> None:
    _purchases(db, KWD)
    out = _kpis(db, tmp_path, KWD, "--money-places", "2")
    assert [out["rows"][0][k] for k in MONEY] == [0.05, 4.63, 2.31]
    assert (out["parameters"]["money_places"], out["parameters"]["money_places_from"]) == (
        2, "--money-places"
    )  # fmt: skip
    bare = json.loads(fidelite("metrics", "program-kpis", "--db", f"{db.url}#kw",
                               "--point-value", "0.001", "-f", "json").stdout)  # fmt: skip
    assert [bare["rows"][0][k] for k in MONEY] == [0.05, 4.63, 2.31]
    assert (bare["parameters"]["money"], bare["parameters"]["money_places"]) == (None, 2)


def test_currencies_in_different_moneys_are_not_added_silently(
    db: Database, tmp_path: Path
) -> None:
    program = _program("KWD", "{id: stars, name: Stars, value: 0.01, money: EUR}")
    _purchases(db, program)
    out = _kpis(db, tmp_path, program)
    assert (out["parameters"]["currency"], out["parameters"]["money"]) == ("points", "KWD")
    assert out["parameters"]["money_warning"] == (
        "the program's currencies are priced in different moneys (points in KWD, stars in "
        "EUR): liability and cost of rewards are of points only, in KWD; never add them to "
        "another currency's; member spend, incremental revenue and the ROI compare them with "
        "purchase amounts, whose money the database does not record"
    )
    (path := tmp_path / "program.yaml").write_text(program, encoding="utf-8")
    table = fidelite("metrics", "program-kpis", "--db", f"{db.url}#kw", "-P", path,
                     "--currency", "stars", separate=True)  # fmt: skip
    assert "priced in different moneys" in table.stderr
    assert "stars only, in EUR" in " ".join(table.stderr.split())


TX = "customer_id,timestamp,amount\nk0,2026-05-20,0.005\nk1,2026-05-20,0.005\nk1,2026-06-01,0.005\n"


@pytest.mark.parametrize("engine", ["duckdb", pytest.param("spark", marks=pytest.mark.slow)])
def test_file_metrics_round_to_money_places(tmp_path: Path, engine: str) -> None:
    (path := tmp_path / "tx.csv").write_text(TX, encoding="utf-8")

    def monetary(*args: str) -> tuple[dict[str, float], Any]:
        out = json.loads(fidelite("metrics", "rfm", "-i", path, "--engine", engine, "-f", "json",
                                  *args).stdout)  # fmt: skip
        return {r["customer_id"]: r["monetary"] for r in out["rows"]}, out["parameters"]

    fils, params = monetary("--money-places", "3")
    assert (fils, params["money_places"]) == ({"k0": 0.005, "k1": 0.01}, 3)
    cents, params = monetary()  # as before: cents, now stated
    assert (cents, params["money_places"]) == ({"k0": 0.01, "k1": 0.01}, 2)
    out = json.loads(fidelite("metrics", "pareto", "-i", path, "--engine", engine,
                              "--money-places", "3", "-f", "json").stdout)  # fmt: skip
    assert (out["summary"]["revenue"], out["parameters"]["money_places"]) == (0.015, 3)


def test_money_places_out_of_range_is_refused(tmp_path: Path) -> None:
    (path := tmp_path / "tx.csv").write_text(TX, encoding="utf-8")
    bad = fidelite("metrics", "rfm", "-i", path, "--money-places", "5", ok=False)
    assert bad.returncode == 2
