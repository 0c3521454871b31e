"""``fidelite webhooks log`` pages as the API does: ``--before`` takes the last id of
the page before, and a line on stderr says when more deliveries follow (the API's
``next_cursor``; ``{"next_cursor": N}`` with ``--format json``), none on the last page."""

from __future__ import annotations

import json
from pathlib import Path

from fidelite.store import Database
from fidelite.webhooks import dispatch
from fidelite.webhooks import subscriptions as subs
from tests.cli.support import fidelite
from tests.webhooks.support import processor, purchase


def test_the_log_pages_with_before_and_says_when_more_follow(tmp_path: Path) -> None:
    """3 members, one subscription: deliveries 1-6. Pages of 4: 6-3 (more follow,
    --before 3), then 2-1 (the last page: nothing on stderr)."""
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    fidelite("db", "upgrade", db=url)
    db = Database(url)
    processor(db)
    subs.add(db, "shop", "http://127.0.0.1:9/hooks", ["*"], allow_private=True)
    for n in range(3):
        processor(db).process(purchase(f"p{n}", f"m{n}", "10.00"))
    assert dispatch(db) == 6
    db.dispose()

    page = fidelite("webhooks", "log", "-p", "shop", "--limit", "4", "-f", "json", db=url)
    assert [r["id"] for r in json.loads(page.stdout)] == [6, 5, 4, 3]
    assert json.loads(page.stderr) == {"next_cursor": 3}
    last = fidelite(
        "webhooks", "log", "-p", "shop", "--limit", "4", "--before", "3", "-f", "json", db=url
    )
    assert [r["id"] for r in json.loads(last.stdout)] == [2, 1]
    assert last.stderr == ""

    table = fidelite("webhooks", "log", "-p", "shop", "--limit", "2", "--before", "5", db=url)
    assert table.stderr == "more deliveries follow: the next page is --before 3\n"
    assert "│ 4  " in table.stdout and "│ 3  " in table.stdout and "│ 2  " not in table.stdout
    csv = fidelite("webhooks", "log", "-p", "shop", "--limit", "6", "-f", "csv", db=url)
    assert [line.split(",")[0] for line in csv.stdout.splitlines()] == [
        "id", "6", "5", "4", "3", "2", "1",
    ]  # fmt: skip
    assert csv.stderr == ""
    exact = fidelite(
        "webhooks", "log", "-p", "shop", "--limit", "1000", "--before", "2", "-f", "json", db=url
    )
    assert [r["id"] for r in json.loads(exact.stdout)] == [1]
    assert exact.stderr == ""
