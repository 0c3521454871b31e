"""A whole-number field written with a fraction a binary float rounds away
(``4999.999999999999999``, read as 5000.0) is refused 422 naming the field, changing
nothing, over real HTTP on a SQLite file and PostgreSQL: it credited 5000 points. A
fraction that is zero (``500.0``, ``5e2``) still says the whole number."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.api.conftest import Live
from tests.api.test_redemption_reads_and_use import available, seed


@pytest.mark.parametrize("text", ["4999.999999999999999", "0.99999999999999999999", "1e-30"])
def test_an_adjustment_of_points_that_are_not_whole_is_refused(live: Live, text: str) -> None:
    seed(live, "ann", 100)
    with live.client("admin") as c:
        before = (live.ledger_rows(), available(c, "ann"))
        body = '{"points": ' + text + ', "reason": "goodwill"}'
        refused = c.post("/v1/members/ann/adjustments", content=body.encode(),
                         headers={"Content-Type": "application/json",
                                  "Idempotency-Key": f"k-{text}"})  # fmt: skip
        assert refused.status_code == 422, refused.text
        problem = refused.json()
        assert problem["code"] == "invalid_request"
        assert problem["errors"] == [
            {"location": "body.points", "message": f"must be a whole number, got {Decimal(text)}"}
        ]
        bulk = c.post("/v1/adjustments:bulk",
                      content=('{"points": ' + text + ', "reason": "outage", '
                               '"members": ["ann"]}').encode(),
                      headers={"Content-Type": "application/json",
                               "Idempotency-Key": f"b-{text}"})  # fmt: skip
        assert bulk.status_code == 422, bulk.text
        assert bulk.json()["errors"][0]["location"] == "body.points"
        assert (live.ledger_rows(), available(c, "ann")) == before


def test_whole_numbers_written_with_a_zero_fraction_are_taken(live: Live) -> None:
    seed(live, "bob", 100)
    with live.client("admin") as c:
        for n, text in enumerate(["500.0", "5e2", "5.00E+2"]):
            body = '{"points": ' + text + ', "reason": "goodwill"}'
            done = c.post("/v1/members/bob/adjustments", content=body.encode(),
                          headers={"Content-Type": "application/json",
                                   "Idempotency-Key": f"z{n}"})  # fmt: skip
            assert (done.status_code, done.json()["points"]) == (201, 500), done.text
        assert available(c, "bob") == 1600
