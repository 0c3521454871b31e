"""A URL's user information and port: refused when empty or 0, never in ``Host``
(real HTTP on 127.0.0.1)."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from fidelite.store import Database
from fidelite.webhooks import DeliveryWorker, UnsafeURL, log
from fidelite.webhooks import subscriptions as subs
from fidelite.webhooks.destination import pin
from fidelite.webhooks.tables import subscriptions
from tests.webhooks.conftest import Receiver
from tests.webhooks.support import Clock, processor, purchase


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://@127.0.0.1:{port}/hooks", "url: must not carry credentials (user:password@)"),
        ("http://:@127.0.0.1:{port}/hooks", "url: must not carry credentials (user:password@)"),
        ("http://127.0.0.1:0/hooks",
         "url: 'http://127.0.0.1:0/hooks': port 0 is no port to send to (1 to 65535)"),
    ],
)  # fmt: skip
def test_empty_user_information_and_port_0_are_refused_adding_nothing(
    wdb: Database, receiver: Receiver, url: str, reason: str
) -> None:
    processor(wdb)
    port = receiver.server.server_address[1]
    with pytest.raises(UnsafeURL) as refused:
        subs.add(wdb, "shop", url.format(port=port), ["*"], allow_private=True)
    assert (refused.value.field, refused.value.message) == ("url", reason)
    assert subs.list_all(wdb, "shop", include_removed=True) == []


def test_host_is_the_urls_host_and_port(wdb: Database, receiver: Receiver) -> None:
    """The receiver is told the URL's host and port, and a subscription stored with an
    empty user information (before it was refused) is refused at delivery: nothing is
    sent with ``Host: @127.0.0.1:<port>``."""
    port = receiver.server.server_address[1]
    assert pin("http://Hooks.Example.com:8080/x", resolve=lambda h, p: ["93.184.216.34"]) \
        .host_header == "hooks.example.com:8080"  # fmt: skip
    processor(wdb)
    good = subs.add(wdb, "shop", receiver.url, ["member.created"], allow_private=True)
    bad = subs.add(wdb, "shop", receiver.url, ["member.created"], allow_private=True)
    with wdb.write() as conn:
        conn.execute(
            update(subscriptions)
            .where(subscriptions.c.id == bad.id)
            .values(url=f"http://@127.0.0.1:{port}/hooks")
        )
    processor(wdb).process(purchase("p1", "ann", "10.00"))
    worker = DeliveryWorker(wdb, clock=Clock(), timeout=5)
    report = worker.run_once()
    worker.close()
    assert report.as_dict() == {
        "claimed": 2,
        "delivered": 1,
        "failed": 1,
        "dead": 0,
        "lost": 0,
        "released": 0,
        "postponed": 0,
    }
    assert [(r.headers["Host"], r.headers["Fidelite-Delivery-Id"]) for r in receiver.requests] == [
        (f"127.0.0.1:{port}", "1")
    ]
    failed = log(wdb, "shop", subscription_id=bad.id)[0]
    assert failed["last_error"] == "refused: url: must not carry credentials (user:password@)"
    assert log(wdb, "shop", subscription_id=good.id)[0]["state"] == "delivered"
