"""``fidelite coupon issue`` refuses codes that could never be used, as it refuses an
unknown campaign: exit 1, a coded message, no file, nothing stored."""

from __future__ import annotations

from pathlib import Path

from tests.cli.support import fidelite
from tests.cli.test_coupon_cli import stored

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


def test_coupon_issue_refuses_codes_that_could_never_be_used(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'shop.db'}"
    program = tmp_path / "shop.yaml"
    program.write_text(PROGRAM, encoding="utf-8")
    fidelite("db", "upgrade", db=db)
    (tmp_path / "crm.csv").write_text("member,segments\ndan,\nvic,vip\n", encoding="utf-8")
    fidelite("import", "members", tmp_path / "crm.csv", "-p", program, db=db)
    out = tmp_path / "codes.csv"
    cases = [
        (["vip_welcome", "-n", "1", "--member", "dan"],
         "[campaign_not_for_member] member 'dan' is in none of the segments of campaign "
         "'vip_welcome' (vip; theirs: none): the codes could never be used; no code issued"),
        (["past_promo", "-n", "1"],
         "[campaign_ended] campaign 'past_promo' ended 2020-02-01T00:00:00+00:00 (its "
         "window's end): its codes could never be used; no code issued"),
    ]  # fmt: skip
    for args, message in cases:
        refused = fidelite("coupon", "issue", *args, "-o", out, "-k", "k1", "-p", program,
                           db=db, ok=False)  # fmt: skip
        assert refused.returncode == 1, args
        assert message in " ".join(refused.stderr.split()), (args, refused.stderr)
        assert not out.exists(), args
    assert stored(db) == []
    fidelite("coupon", "issue", "vip_welcome", "-n", "1", "--member", "vic", "-o", out,
             "-k", "k2", "-p", program, db=db)  # fmt: skip
    assert [(c, s, m) for _, c, s, m in stored(db)] == [("vip_welcome", "issued", "vic")]
