"""Webhooks: the outbox, subscriptions, signed delivery with retries, and the SSRF guard.

Flow: a change and its event commit together (:func:`record` on the caller's
connection writes the outbox row); the :class:`DeliveryWorker` dispatches new events
to one delivery per matching subscription (:func:`dispatch`), claims due deliveries,
POSTs them signed (``Fidelite-Signature``), and records each attempt; failures retry
with exponential backoff and jitter until ``dead``; an operator can replay any
delivery. Receivers check requests with :func:`verify`. Domain code only: no HTTP
routes or CLI here.
"""

from fidelite.webhooks.deliveries import attempts_of, log, replay
from fidelite.webhooks.destination import check_url
from fidelite.webhooks.errors import UnsafeURL, WebhookError
from fidelite.webhooks.events import EVENT_TYPES
from fidelite.webhooks.expiring import announce_expiring, announce_expiring_points
from fidelite.webhooks.outbox import dispatch, record
from fidelite.webhooks.retention import prune
from fidelite.webhooks.retry import RetryPolicy
from fidelite.webhooks.signature import SignatureError, sign, verify
from fidelite.webhooks.subscriptions import Subscription
from fidelite.webhooks.worker import DeliveryWorker, Report

__all__ = [
    "EVENT_TYPES",
    "DeliveryWorker",
    "Report",
    "RetryPolicy",
    "SignatureError",
    "Subscription",
    "UnsafeURL",
    "WebhookError",
    "announce_expiring",
    "announce_expiring_points",
    "attempts_of",
    "check_url",
    "dispatch",
    "log",
    "prune",
    "record",
    "replay",
    "sign",
    "verify",
]
