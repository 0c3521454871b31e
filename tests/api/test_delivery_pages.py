"""The delivery log is paged as the ledger is: ``GET /v1/webhooks/deliveries`` answers one
page of ``limit`` with ``next_cursor`` (null on the last page), passed as ``?before=``
for the next one; walking the pages gives every delivery exactly once, newest first.
It answered only the newest ``limit`` (at most 1,000), with no sign that more existed."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import select

from fidelite.webhooks import subscriptions as subs
from fidelite.webhooks.events import ALL
from fidelite.webhooks.outbox import dispatch
from fidelite.webhooks.tables import deliveries
from tests.api.conftest import Live


def walk(c: httpx.Client, limit: int, **params: Any) -> tuple[list[int], list[int]]:
    """Every page of the log: the ids in the order given, and each page's size."""
    ids: list[int] = []
    sizes: list[int] = []
    before = None
    while True:
        query = {**params, "limit": limit, **({"before": before} if before else {})}
        page = c.get("/v1/webhooks/deliveries", params=query)
        assert page.status_code == 200, page.text
        got = [d["id"] for d in page.json()["deliveries"]]
        ids, before = ids + got, page.json()["next_cursor"]
        sizes.append(len(got))
        if before is None:
            return ids, sizes
        assert before == got[-1]


def test_walking_the_pages_gives_each_delivery_once_in_order(live: Live) -> None:
    for n in range(3):
        subs.add(live.db, "shop", f"http://127.0.0.1:9/hook{n}", [ALL], allow_private=True)
    with live.client("integration") as c:
        for n in range(4):
            event = {"id": f"E{n}", "type": "purchase", "member": f"m{n % 2}",
                     "amount": "12.00", "at": "2026-11-20T10:00:00+01:00"}  # fmt: skip
            assert c.post("/v1/events", json=event).status_code == 201
    dispatch(live.db)
    with live.db.read() as conn:
        stored = [int(i) for i in conn.execute(select(deliveries.c.id)).scalars()]
    everything = sorted(stored, reverse=True)
    total = len(everything)
    assert total >= 12 and len(set(everything)) == total
    with live.client("admin") as c:
        whole = c.get("/v1/webhooks/deliveries").json()
        assert [d["id"] for d in whole["deliveries"]] == everything
        assert whole["next_cursor"] is None
        assert walk(c, 5) == (everything, [5] * (total // 5) + [total % 5] * (total % 5 > 0))
        assert walk(c, total - 1) == (everything, [total - 1, 1])
        assert walk(c, total) == (everything, [total])  # a full last page says no more
        assert walk(c, 1) == (everything, [1] * total)
        # the cursor goes with the filters
        first = everything[0]
        sub_id = whole["deliveries"][0]["subscription_id"]
        one_sub = [d["id"] for d in whole["deliveries"] if d["subscription_id"] == sub_id]
        assert walk(c, 2, subscription_id=sub_id)[0] == one_sub
        below = c.get("/v1/webhooks/deliveries", params={"before": first, "limit": 1000})
        assert [d["id"] for d in below.json()["deliveries"]] == everything[1:]
        for bad in ("0", "-1", "x", str(2**63)):
            refused = c.get("/v1/webhooks/deliveries", params={"before": bad})
            assert refused.status_code == 422 and refused.json()["errors"][0]["location"] == (
                "query.before"
            ), refused.text
