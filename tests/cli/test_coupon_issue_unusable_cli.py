"""``fidelite coupon issue`` refuses codes of a campaign whose window has closed, as it
refuses an unknown campaign (exit 1, a coded message, no file, nothing stored); codes
for a --member in none of the campaign's segments are issued with a warning on stderr
(segments change: a members import may put the member in one later)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.support import fidelite
from tests.cli.test_coupon_cli import read_csv, stored

PROGRAM = """\
id: shop
name: Shop
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: vip, on: [purchase], coupon_campaign: vip_welcome, fixed: 50}
  - {id: old, on: [purchase], coupon_campaign: past_promo, fixed: 10}
coupons:
  - {id: vip_welcome, name: VIP welcome, prefix: VIPWELC, segments: [vip]}
  - {id: past_promo, name: Past, prefix: PAST,
     window: {start: 2020-01-01T00:00:00+00:00, end: 2020-02-01T00:00:00+00:00}}
"""
WARNING = (
    "Warning: member 'dan' is in none of the segments of campaign 'vip_welcome' (vip; "
    "theirs: none): the codes are refused at the till until the member is in one of them "
    "(e.g. by a members import)"
)


def setup(tmp_path: Path) -> tuple[str, Path]:
    db = f"sqlite:///{tmp_path / 'shop.db'}"
    program = tmp_path / "shop.yaml"
    program.write_text(PROGRAM, encoding="utf-8")
    fidelite("db", "upgrade", db=db)
    (tmp_path / "crm.csv").write_text("member,segments\ndan,\nvic,vip\n", encoding="utf-8")
    fidelite("import", "members", tmp_path / "crm.csv", "-p", program, db=db)
    return db, program


def test_coupon_issue_refuses_codes_of_an_ended_campaign(tmp_path: Path) -> None:
    db, program = setup(tmp_path)
    out = tmp_path / "codes.csv"
    refused = fidelite("coupon", "issue", "past_promo", "-n", "1", "-o", out, "-k", "k1",
                       "-p", program, db=db, ok=False)  # fmt: skip
    assert refused.returncode == 1
    assert (
        "[campaign_ended] campaign 'past_promo' ended 2020-02-01T00:00:00+00:00 (its "
        "window's end): its codes could never be used; no code issued"
    ) in " ".join(refused.stderr.split()), refused.stderr
    assert not out.exists()
    assert stored(db) == []


def test_coupon_issue_warns_for_a_member_outside_the_segments(tmp_path: Path) -> None:
    db, program = setup(tmp_path)
    out = tmp_path / "codes.csv"
    done = fidelite("coupon", "issue", "vip_welcome", "-n", "1", "--member", "dan", "-o", out,
                    "-k", "k1", "-p", program, "-f", "json", db=db)  # fmt: skip
    assert " ".join(done.stderr.split()) == WARNING
    (row,) = stored(db)
    assert row[1:] == ("vip_welcome", "issued", "dan")
    assert read_csv(out) == [["code", "campaign", "member"], [row[0], "vip_welcome", "dan"]]
    assert json.loads(done.stdout) == {
        "campaign": "vip_welcome", "member": "dan", "count": 1, "file": str(out),
        "warnings": [WARNING.removeprefix("Warning: ")], "replayed": False,
    }  # fmt: skip
    again = fidelite("coupon", "issue", "vip_welcome", "-n", "1", "--member", "dan", "-o", out,
                     "-k", "k1", "-p", program, db=db)  # fmt: skip
    assert " ".join(again.stderr.split()) == WARNING  # the replay says it again
    assert len(stored(db)) == 1
    quiet = fidelite("coupon", "issue", "vip_welcome", "-n", "1", "--member", "vic",
                     "-o", tmp_path / "vic.csv", "-k", "k2", "-p", program, db=db)  # fmt: skip
    assert quiet.stderr.strip() == ""  # no warning
    assert sorted(m for *_, m in stored(db)) == ["dan", "vic"]
