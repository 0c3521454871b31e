"""A code is read as a cashier may type it: without its dashes, or with them misplaced;
a code accepted says so in its reason. O for 0 and I / L for 1 are not read as digits
(a prefix may hold those letters: reading them would let swaps through)."""

from __future__ import annotations

from datetime import datetime

import pytest

from fidelite.engine import MemberState
from fidelite.engine.coupon import CouponStatus, check_coupon, make_code, normalise, parse_code
from fidelite.engine.decision import CouponUse
from tests.engine.helpers import program

CAMPAIGN = "rules: []\ncoupons:\n  - {id: vip, name: VIP, prefix: VIPWELC}\n"
AT = datetime.fromisoformat("2027-03-10T12:00:00+01:00")
CODE = make_code("VIPWELC", "7KQ2M9XD4HR1")  # VIPWELC-7KQ2-M9XD-4HR1-4


@pytest.mark.parametrize(
    "typed", [CODE, CODE.replace("-", ""), "vipwelc 7kq2m9xd4hr14", "VIPWELC7KQ2-M9XD4HR1-4"]
)
def test_a_code_typed_without_its_dashes_is_accepted(typed: str) -> None:
    assert CODE == "VIPWELC-7KQ2-M9XD-4HR1-4"
    assert normalise(typed) == CODE
    assert parse_code(typed) == ("VIPWELC", "7KQ2M9XD4HR1")
    used = check_coupon(program(CAMPAIGN), typed, CouponStatus.issued, MemberState("m1"), AT)
    assert used == CouponUse(CODE, "vip", True, "coupon_accepted")


@pytest.mark.parametrize(
    "typed",
    [
        "VIPWELC-7KQ2-M9XD-4HRL-4",  # L for 1: not read as 1
        "VIPWELC7KQ2M9XD4HR15",  # a wrong check symbol, without dashes
        "VIPWELC-7KQ2-M9XD-4HR1",  # no check symbol
    ],
)
def test_other_forms_are_invalid_and_shown_as_typed(typed: str) -> None:
    used = check_coupon(program(CAMPAIGN), typed, CouponStatus.issued, MemberState("m1"), AT)
    assert used == CouponUse(typed, None, False, "coupon_invalid")


def test_generated_codes_have_the_format_and_check_symbol_of_make_code() -> None:
    """Codes drawn 60 bits at a time (secrets.randbits) are the codes make_code formats
    from their body: same groups, same check symbol, every body symbol used."""
    from fidelite.engine.coupon import RANDOM_ALPHABET, generate_codes, make_code

    seen: set[str] = set()
    for prefix in ("VIPWELC", "SPRING", "AB", "LOI0", "Z9Z9Z9Z9"):
        codes = generate_codes(prefix, 2000)
        assert len(set(codes)) == 2000
        for code in codes:
            parsed = parse_code(code)
            assert parsed is not None and parsed[0] == prefix
            assert make_code(prefix, parsed[1]) == code
            seen.update(parsed[1])
    assert seen == set(RANDOM_ALPHABET)
