"""Coupon effectiveness against a holdout group, hand-computed."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest

from fidelite.analytics.engine import open_dataset
from fidelite.analytics.errors import InputError
from fidelite.analytics.metrics.coupons import coupon_effectiveness, load_targeting

# March campaign. t1 buys 50 (with a coupon) + 30; t2 buys 20 and returns it; t3 only
# bought in February; h1 buys 30 in March; h2 only in April.
TX = """
customer_id,timestamp,amount,coupon_code,refund
t1,2024-03-02,50,SPRING-1,false
t1,2024-03-05,30,,false
t2,2024-03-03,20,,false
t2,2024-03-04,20,,true
t3,2024-02-20,99,,false
h1,2024-03-02,30,,false
h2,2024-04-02,80,,false
"""
GROUPS = """
customer_id,campaign,group
t1,spring,treatment
t2,spring,treatment
t3,spring,Treatment
h1,spring,holdout
h2,spring,holdout
"""


def test_lift_and_incremental_revenue(write_csv: Callable[..., Path]) -> None:
    ds = open_dataset(write_csv(TX))
    groups = load_targeting(write_csv(GROUPS, "groups.csv"))
    treated, holdout = coupon_effectiveness(ds, groups, date(2024, 3, 1), date(2024, 3, 31)).rows
    assert (treated["group"], treated["customers"], treated["buyers"], treated["revenue"]) == (
        "treatment",
        3,
        2,
        80.0,
    )
    assert (treated["conversion_rate"], treated["redemption_rate"]) == (66.6667, 33.3333)
    assert (holdout["revenue_per_customer"], holdout["conversion_rate"]) == (15.0, 50.0)
    # (80/3 - 30/2) / (30/2) = 77.78 %; (80/3 - 15) x 3 = 35
    assert (treated["lift"], treated["incremental_revenue"]) == (77.7778, 35.0)


def test_bad_targeting_row(write_csv: Callable[..., Path]) -> None:
    path = write_csv(GROUPS.strip() + "\nx,spring,control", "groups.csv")
    with pytest.raises(InputError) as err:
        load_targeting(path)
    assert (err.value.row, err.value.column) == (7, "group")


def test_coupons_cli(write_csv: Callable[..., Path]) -> None:
    tx, groups = write_csv(TX), write_csv(GROUPS, "groups.csv")
    fidelite = shutil.which("fidelite") or str(Path(sys.executable).parent / "fidelite")
    proc = subprocess.run(
        [
            fidelite,
            "metrics",
            "coupons",
            "-i",
            str(tx),
            "--targeting",
            str(groups),
            "--from",
            "2024-03-01",
            "--to",
            "2024-03-31",
            "-f",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["rows"][0]["incremental_revenue"] == 35.0
