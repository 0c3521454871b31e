"""Subscriptions: validated on the way in; a refused one writes nothing."""

from __future__ import annotations

import pytest

from fidelite.store import Database
from fidelite.webhooks import UnsafeURL, WebhookError
from fidelite.webhooks import subscriptions as subs
from fidelite.webhooks.tables import subscriptions
from tests.webhooks.support import count, processor


def test_add_list_get_remove(wdb: Database) -> None:
    processor(wdb)
    made = subs.add(wdb, "shop", "http://127.0.0.1:9/x", ["points.earned", "member.created",
                    "points.earned"], description="CRM", allow_private=True)  # fmt: skip
    assert made.secret is not None and made.secret.startswith("whsec_") and len(made.secret) > 40
    assert made.event_types == ["member.created", "points.earned"]
    listed = subs.list_all(wdb, "shop")
    assert [s.id for s in listed] == [made.id] and listed[0].secret is None
    assert "secret" not in listed[0].as_dict()
    assert subs.get(wdb, "shop", made.id).description == "CRM"
    with pytest.raises(WebhookError, match="unknown_subscription"):
        subs.get(wdb, "other", made.id)  # another program's subscription is invisible
    subs.remove(wdb, "shop", made.id)
    subs.remove(wdb, "shop", made.id)  # idempotent
    assert [s.active for s in subs.list_all(wdb, "shop", include_removed=True)] == [False]


@pytest.mark.parametrize(
    ("url", "types", "secret", "field", "message"),
    [
        ("http://10.0.0.1/x", ["*"], None, "url", "is in a private range"),
        ("file:///etc/passwd", ["*"], None, "url", "scheme 'file' is not allowed"),
        ("http://169.254.169.254/", ["*"], None, "url", "cloud metadata"),
        ("https://93.184.216.34/x", [], None, "event_types", "name at least one"),
        ("https://93.184.216.34/x", ["points.burnt"], None, "event_types", "unknown 'points"),
        ("https://93.184.216.34/x", ["*"], "short", "secret", "at least 16 characters"),
    ],
)
def test_bad_subscriptions_are_refused_and_nothing_is_written(
    wdb: Database, url: str, types: list[str], secret: str | None, field: str, message: str
) -> None:
    processor(wdb)
    with pytest.raises(WebhookError) as caught:
        subs.add(wdb, "shop", url, types, secret=secret)
    assert caught.value.field == field and message in caught.value.message
    assert isinstance(caught.value, UnsafeURL) == (field == "url")
    assert count(wdb, subscriptions) == 0
