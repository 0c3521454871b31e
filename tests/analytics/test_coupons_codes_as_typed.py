"""``metrics coupons`` reads codes as the till does, and shows holdout leakage.

A valid code typed without dashes in lower case (``springyxwnee02gxng3``, accepted by
the till) did not count: 2 treated customers who both used a code read 50 %, not 100 %.
A mistyped code (check symbol wrong), refused by the till, counted for its prefix.
An offer without a code prefix counted any code, even another campaign's (50 %). Held-out
customers who used the campaign's code were hidden (the holdout's rate was null).
DuckDB and Spark alike; numbers counted by hand.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from fidelite.analytics.engine import EngineName, open_dataset
from fidelite.analytics.metrics.coupons import coupon_effectiveness, load_targeting
from tests.cli.support import fidelite

ENGINES: list[Any] = ["duckdb", pytest.param("spark", marks=pytest.mark.slow)]

# SPRING-YXWN-EE02-GXNG-3 and SPRING-ABCD-EFGH-1234-C are valid codes; SPRING-ABCD-
# EFGH-1234-D is the second one mistyped (its check symbol is C).
TX = """
customer_id,timestamp,amount,coupon_code
t1,2026-12-08T10:00:00Z,10,springyxwnee02gxng3
t2,2026-12-08T10:00:00Z,10,SPRING-ABCD-EFGH-1234-C
t3,2026-12-08T10:00:00Z,10,SPRING-ABCD-EFGH-1234-D
t4,2026-12-08T10:00:00Z,10,SPRINGABCDEFGH1234C
h1,2026-12-08T10:00:00Z,10, Spring Abcd-efgh1234c
h2,2026-12-08T10:00:00Z,10,
"""
TARGETING = """
customer_id,campaign,group,code_prefix
t1,spring,treatment,SPRING
t2,spring,treatment,SPRING
t3,spring,treatment,SPRING
t4,spring,treatment,SPRING
h1,spring,holdout,SPRING
h2,spring,holdout,SPRING
"""


def _rows(write_csv: Callable[..., Path], targeting: str, engine: EngineName) -> Any:
    ds = open_dataset(write_csv(TX), engine=engine)
    groups = load_targeting(write_csv(targeting, "groups.csv"))
    return coupon_effectiveness(ds, groups, date(2026, 12, 1), date(2026, 12, 31))


@pytest.mark.parametrize("engine", ENGINES)
def test_codes_count_as_the_till_reads_them(
    write_csv: Callable[..., Path], engine: EngineName
) -> None:
    result = _rows(write_csv, TARGETING, engine)
    rates = {r["group"]: (r["customers"], r["redemption_rate"]) for r in result.rows}
    # t1 and t4 (no dashes) and t2 count; t3's mistyped code does not: 3 of 4.
    # h1 typed a valid code with spaces and odd dashes: 1 of 2 held-out customers.
    assert rates == {"treatment": (4, 75.0), "holdout": (2, 50.0)}
    assert result.summary == {
        "warning": "campaign spring: 1 of 2 holdout customers (50 %) bought with the "
        "campaign's code: they were not kept out of the offer, so lift and incremental "
        "revenue understate its effect."
    }


@pytest.mark.parametrize("engine", ENGINES)
def test_an_offer_without_a_prefix_has_no_redemption_rate(
    write_csv: Callable[..., Path], engine: EngineName
) -> None:
    # one campaign, no code_prefix column: t2 used a code, which may be another
    # campaign's; the rate is null, the definition says why
    targeting = (
        "customer_id,campaign,group\nt1,flash,treatment\nt2,flash,treatment\nh1,flash,holdout"
    )
    result = _rows(write_csv, targeting, engine)
    assert [(r["group"], r["customers"], r["redemption_rate"]) for r in result.rows] == [
        ("treatment", 2, None),
        ("holdout", 1, None),
    ]
    assert result.summary == {}
    assert "the targeting file names no code_prefix" in result.definition
    treated = result.rows[0]
    assert (treated["buyers"], treated["revenue"], treated["incremental_revenue"]) == (2, 20.0, 0.0)


def test_cli_shows_the_holdout_warning(write_csv: Callable[..., Path]) -> None:
    tx, groups = write_csv(TX), write_csv(TARGETING, "groups.csv")
    args = ["metrics", "coupons", "-i", tx, "--targeting", groups, "--from", "2026-12-01"]
    out = json.loads(fidelite(*args, "--to", "2026-12-31", "-f", "json").stdout)
    assert out["summary"]["warning"].startswith("campaign spring: 1 of 2 holdout customers")
    table = fidelite(*args, "--to", "2026-12-31").stdout
    assert "warning: campaign spring: 1 of 2 holdout customers (50 %)" in " ".join(table.split())
