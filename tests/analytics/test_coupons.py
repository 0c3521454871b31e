"""Coupon effectiveness against a holdout group, hand-computed."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest

from fidelite.analytics.engine import open_dataset
from fidelite.analytics.errors import InputError
from fidelite.analytics.metrics.coupons import coupon_effectiveness, load_targeting
from tests.cli.support import fidelite

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
    # no code_prefix: a code cannot be told to be this campaign's, the rate is null
    assert (treated["conversion_rate"], treated["redemption_rate"]) == (66.6667, None)
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
    proc = fidelite(
        "metrics", "coupons", "-i", tx, "--targeting", groups,
        "--from", "2024-03-01", "--to", "2024-03-31", "-f", "json",
    )  # fmt: skip
    assert json.loads(proc.stdout)["rows"][0]["incremental_revenue"] == 35.0


def _cli_coupons(tx: Path, groups: Path) -> subprocess.CompletedProcess[str]:
    args = ["metrics", "coupons", "-i", str(tx), "--targeting", str(groups)]
    return fidelite(*args, "--from", "2024-03-01", "--to", "2024-03-31", "-f", "json", ok=False)


def test_coupons_without_coupon_column_is_one_error(write_csv: Callable[..., Path]) -> None:
    tx = write_csv("customer_id,timestamp,amount\nt1,2024-03-02,50\nh1,2024-03-02,30")
    groups = load_targeting(write_csv(GROUPS, "groups.csv"))
    with pytest.raises(InputError) as err:
        coupon_effectiveness(open_dataset(tx), groups, date(2024, 3, 1), date(2024, 3, 31))
    assert (err.value.file, err.value.column) == (str(tx), "coupon_code")
    assert "coupon effectiveness needs a 'coupon_code' column" in str(err.value)
    proc = _cli_coupons(tx, write_csv(GROUPS, "groups.csv"))
    assert proc.returncode == 1
    error = json.loads(proc.stdout)["error"]
    assert (error["code"], error["column"]) == ("bad_input", "coupon_code")


def test_customer_in_both_groups_is_refused(write_csv: Callable[..., Path]) -> None:
    path = write_csv(GROUPS.strip() + "\nt2,spring,holdout", "groups.csv")
    with pytest.raises(InputError) as err:
        load_targeting(path)
    assert (err.value.row, err.value.column) == (7, "group")
    assert "customer 't2' is in both the treatment group (line 3) and the holdout group" in str(
        err.value
    )
    # the same customer in another campaign's holdout is fine; a repeated row counts once
    extra = "\nt2,summer,holdout,SUMMER\nt2,spring,treatment,SPRING"
    other = write_csv(PREFIXED_GROUPS.strip() + extra, "other.csv")
    rows = coupon_effectiveness(
        open_dataset(write_csv(PREFIXED_TX)),
        load_targeting(other),
        date(2024, 3, 1),
        date(2024, 3, 31),
    ).rows
    assert [(r["campaign"], r["group"], r["customers"]) for r in rows] == [
        ("spring", "treatment", 3),
        ("spring", "holdout", 1),
        ("summer", "treatment", 2),
        ("summer", "holdout", 2),
    ]


# spring codes start with SPRING-, summer uses the shared code SUMMER. t1 redeems a spring
# code (typed in lower case); t2's SPRINGTIME code belongs to neither; t3 uses SUMMER.
PREFIXED_TX = """
customer_id,timestamp,amount,coupon_code
t1,2024-03-02,50,spring-7kq2-m9xd-4hrt-$
t2,2024-03-03,20,SPRINGTIME-AAAA
t3,2024-03-04,30,SUMMER
h1,2024-03-02,30,
"""
PREFIXED_GROUPS = """
customer_id,campaign,group,code_prefix
t1,spring,treatment,SPRING
t2,spring,treatment,SPRING
t3,spring,treatment,SPRING
h1,spring,holdout,SPRING
t1,summer,treatment,SUMMER-
t3,summer,treatment,summer
h1,summer,holdout,SUMMER
"""


def test_redemptions_count_only_the_campaigns_own_codes(write_csv: Callable[..., Path]) -> None:
    groups = load_targeting(write_csv(PREFIXED_GROUPS, "groups.csv"))
    result = coupon_effectiveness(
        open_dataset(write_csv(PREFIXED_TX)), groups, date(2024, 3, 1), date(2024, 3, 31)
    )
    rates = {(r["campaign"], r["group"]): r["redemption_rate"] for r in result.rows}
    assert rates == {
        ("spring", "treatment"): 33.3333,  # t1 of t1, t2, t3
        ("spring", "holdout"): 0.0,
        ("summer", "treatment"): 50.0,  # t3 of t1, t3
        ("summer", "holdout"): 0.0,
    }
    assert result.parameters["code_prefixes"] == {"spring": "SPRING", "summer": "SUMMER"}


def test_several_campaigns_need_code_prefixes(write_csv: Callable[..., Path]) -> None:
    path = write_csv(GROUPS.strip() + "\nt1,summer,treatment", "groups.csv")
    with pytest.raises(InputError) as err:
        load_targeting(path)
    assert err.value.column == "code_prefix"
    assert "several campaigns (spring, summer) and no code_prefix column" in str(err.value)


@pytest.mark.parametrize(
    ("extra", "line", "message"),
    [
        ("t9,spring,treatment,SPRNG", 9, "campaign 'spring' has code prefix 'SPRING' on line 2"),
        ("t9,spring,treatment,", 9, "missing code_prefix"),
    ],
)
def test_code_prefix_is_one_per_campaign(
    extra: str, line: int, message: str, write_csv: Callable[..., Path]
) -> None:
    path = write_csv(PREFIXED_GROUPS.strip() + "\n" + extra, "groups.csv")
    with pytest.raises(InputError) as err:
        load_targeting(path)
    assert (err.value.row, err.value.column) == (line, "code_prefix")
    assert message in str(err.value)


def _targeting_error(path: Path) -> InputError:
    with pytest.raises(InputError) as err:
        load_targeting(path)
    return err.value


def test_targeting_errors_name_the_files_own_line(tmp_path: Path) -> None:
    # A blank line 3 counts: 'control' is on line 4 (it was reported on line 3).
    blank = tmp_path / "blank.csv"
    blank.write_text("customer_id,campaign,group\na,spring,treatment\n\nb,spring,control\n")
    err = _targeting_error(blank)
    assert (err.row, err.column) == (4, "group")
    assert str(err) == (
        f"{blank}, line 4, column 'group': group must be treatment or holdout, not 'control'"
    )
    # A quoted line break in line 2 makes the record span lines 2-3; the empty group is
    # on line 5 (it was "line 4 ... 'None'").
    quoted = tmp_path / "quoted.csv"
    quoted.write_text(
        'customer_id,campaign,group\n"t1\nx",spring,treatment\nh1,spring,holdout\nh2,spring,\n'
    )
    err = _targeting_error(quoted)
    assert str(err) == (
        f"{quoted}, line 5, column 'group': empty group: it must be treatment or holdout"
    )


def test_targeting_lines_count_blank_lines_in_every_check(tmp_path: Path) -> None:
    path = tmp_path / "groups.csv"
    path.write_text(
        "customer_id,campaign,group,code_prefix\n\nt1,spring,treatment,SPRING\n\n"
        "t1,spring,holdout,SPRING\n"
    )
    err = _targeting_error(path)
    assert err.row == 5
    assert "is in both the treatment group (line 3) and the holdout group" in str(err)
    path.write_text("customer_id,campaign,group\n\nt1,spring,treatment,extra\n")
    err = _targeting_error(path)
    assert err.row == 3
    assert "this line has 4 fields but the header has 3" in err.reason


def test_targeting_file_with_bom_semicolons_and_crlf(tmp_path: Path) -> None:
    path = tmp_path / "groups.csv"
    path.write_bytes(
        "\ufeffcustomer_id;campaign;group\r\nt1;spring;treatment\r\nh1;spring;holdout\r\n".encode()
    )
    table = load_targeting(path)
    assert table.to_pylist() == [
        {"customer_id": "t1", "campaign": "spring", "grp": "treatment", "prefix": None},
        {"customer_id": "h1", "campaign": "spring", "grp": "holdout", "prefix": None},
    ]
