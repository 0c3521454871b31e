"""A page size beyond any 64-bit number (``limit=99999999999999999999999``) is refused
with the route's real cap, as ``limit=201`` is: the members list and the ledger said
"less than or equal to 9223372036854775807", a bound no page can have."""

from __future__ import annotations

import pytest

from tests.api.conftest import Live
from tests.api.test_page_limits import CAPS, refusal


@pytest.mark.parametrize(("url", "cap"), CAPS)
def test_a_huge_limit_is_refused_naming_the_real_cap(live: Live, url: str, cap: int) -> None:
    with live.client("admin") as c:
        assert c.post("/v1/members", json={"id": "ann"}).status_code == 201
        for limit in ("9223372036854775808", "99999999999999999999999", "1" + "0" * 60):
            out = c.get(url, params={"limit": limit})
            assert (out.status_code, out.json()) == (422, refusal(cap)), out.text
        below = c.get(url, params={"limit": "0"})
        least = "Input should be greater than or equal to 1"
        assert below.json()["errors"] == [{"location": "query.limit", "message": least}]
