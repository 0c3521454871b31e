"""What a receiver sends cannot wedge a delivery, and its recovery lifts the worker's
hold: a ``Retry-After`` too long to read is ignored (the back-off applies, the attempt
is recorded), and after a failure that held the subscription back, a successful replay
or a change of its URL lets new events go at once. Real receivers on 127.0.0.1."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from fidelite.store import Database
from fidelite.webhooks import DeliveryWorker, RetryPolicy, attempts_of, log, replay
from fidelite.webhooks import worker as worker_module
from fidelite.webhooks.tables import subscriptions
from tests.webhooks.support import Clock, delivery, processor, purchase
from tests.webhooks.test_retry_after import Scripted, one_delivery, scripted  # noqa: F401

POLICY = RetryPolicy(base_seconds=10, factor=2, cap_seconds=6 * 3600, jitter=0, max_attempts=5)
NOW = datetime(2026, 12, 7, tzinfo=UTC)


def test_absurd_retry_after_is_unreadable() -> None:
    assert worker_module.retry_after("9" * 5000, NOW) is None
    assert worker_module.retry_after("9" * 11, NOW) is None
    assert worker_module.retry_after("0" * 20 + "120", NOW) == timedelta(seconds=120)
    assert worker_module.retry_after("9999999999", NOW) == timedelta(seconds=10**9)


def test_huge_retry_after_is_recorded_with_the_back_off(wdb: Database, scripted: Scripted) -> None:  # noqa: F811
    did = one_delivery(wdb, scripted)
    scripted.script.append((503, {"Retry-After": "9" * 5000}))
    clock = Clock()
    worker = DeliveryWorker(wdb, policy=POLICY, allow_private=True, clock=clock, timeout=5)
    try:
        report = worker.run_once()
    finally:
        worker.close()
    assert (report.claimed, report.failed, report.delivered) == (1, 1, 0)
    row = delivery(wdb, did)
    assert (row["state"], row["attempts"], row["last_status"]) == ("failed", 1, 503)
    assert row["next_attempt_at"] == clock.now + timedelta(seconds=10)
    assert [(a["number"], a["status"]) for a in attempts_of(wdb, "shop", did)] == [(1, 503)]
    assert scripted.hits == 1


def _held(wdb: Database, scripted: Scripted) -> tuple[int, Clock, DeliveryWorker]:  # noqa: F811
    """A delivery answered 503 Retry-After: 21600: the subscription is held 6 hours."""
    did = one_delivery(wdb, scripted)
    scripted.script.append((503, {"Retry-After": "21600"}))
    clock = Clock()
    worker = DeliveryWorker(wdb, policy=POLICY, allow_private=True, clock=clock, timeout=5)
    assert worker.run_once().failed == 1
    clock.now += timedelta(minutes=5)
    return did, clock, worker


def _new_event(wdb: Database, did: int, clock: Clock, worker: DeliveryWorker) -> dict[str, object]:
    processor(wdb).process(purchase("p2", "bob", "10.00"))
    clock.now += timedelta(seconds=1)
    report = worker.run_once().as_dict()
    (new,) = [d for d in log(wdb, "shop") if int(d["id"]) != did]
    row = delivery(wdb, int(new["id"]))
    assert (row["state"], row["attempts"]) == ("delivered", 1)
    return report


def test_successful_replay_lifts_the_hold(wdb: Database, scripted: Scripted) -> None:  # noqa: F811
    did, clock, worker = _held(wdb, scripted)
    try:
        replay(wdb, "shop", did, at=clock.now)
        assert worker.run_once().delivered == 1
        assert delivery(wdb, did)["state"] == "delivered"
        report = _new_event(wdb, did, clock, worker)
    finally:
        worker.close()
    assert (report["delivered"], report["postponed"]) == (1, 0)
    assert scripted.hits == 3


def test_replay_by_another_worker_lifts_the_hold(wdb: Database, scripted: Scripted) -> None:  # noqa: F811
    did, clock, worker = _held(wdb, scripted)
    other = DeliveryWorker(wdb, policy=POLICY, allow_private=True, clock=clock, timeout=5)
    try:
        replay(wdb, "shop", did, at=clock.now)
        assert other.run_once().delivered == 1
        report = _new_event(wdb, did, clock, worker)
    finally:
        other.close()
        worker.close()
    assert (report["delivered"], report["postponed"]) == (1, 0)
    assert scripted.hits == 3


def test_url_change_lifts_the_hold(wdb: Database, scripted: Scripted) -> None:  # noqa: F811
    did, clock, worker = _held(wdb, scripted)
    fixed = Scripted()
    try:
        with wdb.write() as conn:
            conn.execute(update(subscriptions).values(url=fixed.url))
        report = _new_event(wdb, did, clock, worker)
    finally:
        worker.close()
        fixed.server.shutdown()
        fixed.server.server_close()
    assert (report["delivered"], report["postponed"]) == (1, 0)
    assert (scripted.hits, fixed.hits) == (1, 1)
    assert delivery(wdb, did)["state"] == "failed"  # the failed one keeps its back-off


def test_answer_in_a_non_text_charset_is_kept_as_utf8(wdb: Database, scripted: Scripted) -> None:  # noqa: F811
    did = one_delivery(wdb, scripted)
    scripted.script.append((200, {"Content-Type": "text/plain; charset=rot13"}))
    worker = DeliveryWorker(wdb, policy=POLICY, allow_private=True, clock=Clock(), timeout=5)
    try:
        report = worker.run_once()
    finally:
        worker.close()
    assert (report.claimed, report.delivered) == (1, 1)
    assert (delivery(wdb, did)["state"], delivery(wdb, did)["attempts"]) == ("delivered", 1)
    assert [(a["status"], a["response"]) for a in attempts_of(wdb, "shop", did)] == [(200, "no")]
