"""Why a code was refused, in words: a mistyped code was answered with ``reason:
coupon_invalid`` alone (the decision's coupon, 201 in the API), and ``fidelite event
show`` printed ``coupon ...: refused`` without any reason. The decision's coupon now has
a ``detail`` (the check symbol does not match: likely a typo), and ``event show`` prints
the reason and its detail. SQLite file, then PostgreSQL."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from fidelite.engine import Event
from fidelite.engine.coupon import make_code, parse_code
from fidelite.processing import EventProcessor
from fidelite.program import parse_program
from fidelite.store import Database
from tests.cli.support import as_json, fidelite

PROGRAM = """\
id: shop
name: Shop
currencies:
  - {id: points, name: Points, value: 0.01}
rules:
  - {id: base, on: [purchase], per_amount: {points: 1, per: 1}}
  - {id: gift, on: [purchase], coupon_campaign: gift, fixed: 50, when: 'event.amount > 10'}
coupons:
  - {id: gift, name: Gift, prefix: GIFT}
"""
AT = datetime.fromisoformat("2026-11-15T10:00:00+01:00")
CHECK = "the check symbol (the last one) does not match the rest of the code: a symbol is "
CHECK += "likely mistyped (O is not read as 0, nor I or L as 1); check the code and type it again"


def _typo(code: str) -> str:
    """``code`` without dashes, in lower case, its check symbol changed."""
    prefix, body = parse_code(code) or ("", "")
    other = make_code(prefix, body[:-1] + ("2" if body[-1] != "2" else "3"))
    return (code[:-1] + other[-1]).replace("-", "").lower()


def test_a_mistyped_code_says_its_check_symbol_does_not_match(db: Database) -> None:
    p = EventProcessor(db, parse_program(PROGRAM))
    p.enrol("ann", at=AT)
    (code,) = p.issue_coupons("gift", 1, at=AT)
    typo = _typo(code)
    assert parse_code(typo) is None
    result = p.process(Event(id="p1", type="purchase", member="ann", at=AT,
                             amount=Decimal(20), coupon=typo))  # fmt: skip
    coupon = result.decision.as_dict()["coupon"] if result.decision else None
    assert coupon == {"code": typo.upper(), "campaign": None, "accepted": False,
                      "reason": "coupon_invalid", "detail": CHECK}  # fmt: skip
    # a code the rule does not give points for stays unused, and says so
    p.process(Event(id="p2", type="purchase", member="ann", at=AT, amount=Decimal(5),
                    coupon=code))  # fmt: skip
    p.process(Event(id="p3", type="purchase", member="ann", at=AT, amount=Decimal(5),
                    coupon="HELLO30"))  # fmt: skip
    shown = fidelite("event", "show", "p1", "-p", "shop", db=db.url).stdout
    assert f"coupon {typo.upper()}: refused (coupon_invalid: {CHECK})" in " ".join(shown.split())
    unused = " ".join(fidelite("event", "show", "p2", "-p", "shop", db=db.url).stdout.split())
    assert (f"coupon {code}: not used (coupon_not_applied: no rule of the code's campaign "
            "gave points: it stays unused)") in unused  # fmt: skip
    shared = " ".join(fidelite("event", "show", "p3", "-p", "shop", db=db.url).stdout.split())
    assert "coupon HELLO30: refused (coupon_invalid: not a single-use code of a coupon " in shared
    assert "a rule may still read it as event.coupon (a shared code))" in shared
    # the JSON record is unchanged: the reason is in its trace
    record = as_json(fidelite("event", "show", "p1", "-p", "shop", "-f", "json", db=db.url))
    assert (record["coupon"], record["coupon_accepted"]) == (typo.upper(), False)
    assert {"rule": "gift", "note": "coupon_invalid"}.items() <= next(
        line for line in record["trace"] if line["rule"] == "gift"
    ).items()
