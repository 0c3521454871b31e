"""Webhook subscriptions of a program: add, list, show, remove.

A subscription names a URL (checked by :mod:`fidelite.webhooks.destination`), the
event types it wants (or ``*``) and the secret its deliveries are signed with. The
secret is kept in clear because signing needs it; it is shown once at creation and
never listed. A subscription added with ``allow_private`` (the operator's explicit
development choice, the CLI's ``--allow-private``) keeps it: the delivery worker
allows that subscription's loopback and private destinations too. Removing a
subscription deactivates it (its delivery log stays) and stops its undelivered
deliveries (marked ``dead``, error ``subscription removed``).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from fidelite.store import Database
from fidelite.webhooks.destination import (
    PRIVATE_ALLOWED_BY,
    Resolver,
    check_url,
    system_resolver,
)
from fidelite.webhooks.errors import WebhookError
from fidelite.webhooks.events import ALL, EVENT_TYPES
from fidelite.webhooks.tables import deliveries, subscriptions


@dataclass(frozen=True)
class Subscription:
    """A webhook subscription (``secret`` only filled in when just created)."""

    id: int
    program_id: str
    url: str
    event_types: list[str]
    active: bool
    description: str | None
    created_at: datetime
    secret: str | None = None
    allow_private: bool = False

    def as_dict(self) -> dict[str, Any]:
        out = {
            "id": self.id,
            "program": self.program_id,
            "url": self.url,
            "event_types": self.event_types,
            "active": self.active,
            "description": self.description,
            "created_at": self.created_at.isoformat(),
            "allow_private": self.allow_private,
        }
        if self.secret is not None:
            out["secret"] = self.secret
        return out


def new_secret() -> str:
    """A fresh signing secret (256 random bits)."""
    return "whsec_" + secrets.token_urlsafe(32)


def valid_event_types(event_types: list[str]) -> list[str]:
    """The requested types, checked against :data:`EVENT_TYPES` (``*`` for all)."""
    if not event_types:
        raise WebhookError("invalid_request", "event_types: name at least one", field="event_types")
    unknown = [t for t in event_types if t != ALL and t not in EVENT_TYPES]
    if unknown:
        raise WebhookError(
            "invalid_request",
            f"event_types: unknown {', '.join(map(repr, unknown))} "
            f"(known: {', '.join(EVENT_TYPES)} or *)",
            field="event_types",
        )
    return sorted(set(event_types))


@dataclass(frozen=True)
class Checked:
    """A subscription asked for, checked: its URL safe, its event types known, a secret."""

    url: str
    event_types: list[str]
    secret: str
    allow_private: bool = False


MAX_DESCRIPTION = 200
"""The longest operator note a subscription keeps (its column holds 200 characters)."""


def check(
    url: str,
    event_types: list[str],
    *,
    secret: str | None = None,
    allow_private: bool = False,
    resolve: Resolver = system_resolver,
    allowed_by: str = PRIVATE_ALLOWED_BY,
    description: str | None = None,
) -> Checked:
    """The request checked (``WebhookError`` naming the field if not), before any
    transaction: checking the URL resolves its host, which may take a while.
    ``allowed_by``: how a refused private URL can be allowed, in the caller's words."""
    types = valid_event_types(event_types)
    checked = check_url(url, allow_private=allow_private, resolve=resolve,
                        allowed_by=allowed_by)  # fmt: skip
    if secret is not None and len(secret) < 16:
        raise WebhookError("invalid_request", "secret: at least 16 characters", field="secret")
    if description is not None and len(description) > MAX_DESCRIPTION:
        raise WebhookError(
            "invalid_request",
            f"description: at most {MAX_DESCRIPTION} characters, got {len(description)}",
            field="description",
        )
    return Checked(checked, types, secret or new_secret(), allow_private)


def create(
    conn: Connection,
    program_id: str,
    request: Checked,
    *,
    description: str | None = None,
    at: datetime | None = None,
) -> Subscription:
    """Write the checked subscription in the caller's transaction (e.g. with the
    idempotency record of a keyed command); the returned value carries the secret."""
    now = at or datetime.now(UTC)
    sid = conn.execute(
        insert(subscriptions).returning(subscriptions.c.id),
        {"program_id": program_id, "url": request.url, "event_types": request.event_types,
         "secret": request.secret, "active": True, "description": description,
         "created_at": now, "allow_private": request.allow_private},
    ).scalar_one()  # fmt: skip
    return Subscription(int(sid), program_id, request.url, request.event_types, True,
                        description, now, request.secret, request.allow_private)  # fmt: skip


def add(
    db: Database,
    program_id: str,
    url: str,
    event_types: list[str],
    *,
    secret: str | None = None,
    description: str | None = None,
    allow_private: bool = False,
    resolve: Resolver = system_resolver,
    at: datetime | None = None,
    allowed_by: str = PRIVATE_ALLOWED_BY,
) -> Subscription:
    """Check and create a subscription; the returned value carries the secret
    (``allowed_by``: as for :func:`check`)."""
    request = check(url, event_types, secret=secret, allow_private=allow_private,
                    resolve=resolve, allowed_by=allowed_by)  # fmt: skip
    with db.write() as conn:
        return create(conn, program_id, request, description=description, at=at)


def secret_of(conn: Connection, program_id: str, subscription_id: int) -> tuple[bool, str] | None:
    """Whether the subscription is active, and its secret (None: no such subscription)."""
    row = conn.execute(
        select(subscriptions.c.active, subscriptions.c.secret).where(
            subscriptions.c.program_id == program_id, subscriptions.c.id == subscription_id
        )
    ).one_or_none()
    return None if row is None else (bool(row.active), str(row.secret))


def _from_row(row: Any) -> Subscription:
    return Subscription(
        int(row.id), row.program_id, row.url, list(row.event_types), bool(row.active),
        row.description, row.created_at, allow_private=bool(row.allow_private),
    )  # fmt: skip


def list_all(db: Database, program_id: str, *, include_removed: bool = False) -> list[Subscription]:
    """The program's subscriptions, oldest first (secrets not included)."""
    query = select(subscriptions).where(subscriptions.c.program_id == program_id)
    if not include_removed:
        query = query.where(subscriptions.c.active.is_(True))
    with db.read() as conn:
        return [_from_row(r) for r in conn.execute(query.order_by(subscriptions.c.id))]


def get(db: Database, program_id: str, subscription_id: int) -> Subscription:
    """One subscription of the program, or ``unknown_subscription``."""
    with db.read() as conn:
        row = conn.execute(
            select(subscriptions).where(
                subscriptions.c.program_id == program_id, subscriptions.c.id == subscription_id
            )
        ).one_or_none()
    if row is None:
        raise _unknown(program_id, subscription_id)
    return _from_row(row)


def remove(
    db: Database, program_id: str, subscription_id: int, *, at: datetime | None = None
) -> Subscription:
    """Deactivate a subscription and stop its undelivered deliveries (idempotent)."""
    now = at or datetime.now(UTC)
    with db.write() as conn:
        found = conn.execute(
            update(subscriptions)
            .where(subscriptions.c.program_id == program_id, subscriptions.c.id == subscription_id)
            .values(active=False)
        )
        if found.rowcount == 0:
            raise _unknown(program_id, subscription_id)
        conn.execute(
            update(deliveries)
            .where(
                deliveries.c.subscription_id == subscription_id,
                deliveries.c.state.in_(("pending", "failed")),
            )
            .values(state="dead", last_error="subscription removed", next_attempt_at=None,
                    lease_token=None, lease_until=None, last_attempt_at=now)
        )  # fmt: skip
    return get(db, program_id, subscription_id)


def _unknown(program_id: str, subscription_id: int) -> WebhookError:
    return WebhookError(
        "unknown_subscription",
        f"subscription_id: no subscription {subscription_id} in program {program_id!r}",
        field="subscription_id",
    )
