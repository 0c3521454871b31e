"""Who may call what: one table of routes and roles, checked by one dependency.

Every ``/v1`` route must have an entry in :data:`ACCESS` (a route without one is
refused to everybody, and a test fails): deny by default. A key only ever acts on
its own program: a key of another program gets ``403 wrong_program`` and no data.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from fidelite.api.keys import ApiKey, authenticate
from fidelite.api.problems import Problem

ALL = frozenset({"admin", "integration", "analyst", "support"})
READ = ALL
WRITE_MEMBERS = frozenset({"admin", "integration", "support"})
TILL = frozenset({"admin", "integration"})
SUPPORT = frozenset({"admin", "support"})
ADMIN = frozenset({"admin"})
REDEMPTIONS = frozenset({"admin", "integration", "support"})
"""Redemptions: read and cancelled by the roles that redeem (a till checks a code) and
by support; not by analysts (a code is what the reward is handed over for)."""

ACCESS: dict[tuple[str, str], frozenset[str]] = {
    ("GET", "/v1/members"): READ,
    ("POST", "/v1/members"): WRITE_MEMBERS,
    ("GET", "/v1/members/{member_id}"): READ,
    ("PATCH", "/v1/members/{member_id}"): WRITE_MEMBERS,
    ("DELETE", "/v1/members/{member_id}"): ADMIN,
    ("GET", "/v1/members/{member_id}/balance"): READ,
    ("GET", "/v1/members/{member_id}/ledger"): READ,
    ("GET", "/v1/members/{member_id}/timeline"): READ,
    ("GET", "/v1/members/{member_id}/export"): SUPPORT,
    ("GET", "/v1/members/{member_id}/tier"): READ,
    ("POST", "/v1/members/{member_id}/tier:assign"): ADMIN,
    ("POST", "/v1/coupon-campaigns/{campaign_id}/coupons"): ADMIN,
    ("GET", "/v1/coupons/{code}"): REDEMPTIONS,
    ("POST", "/v1/members/{member_id}/adjustments"): SUPPORT,
    ("POST", "/v1/adjustments:bulk"): ADMIN,
    ("POST", "/v1/events"): TILL,
    ("POST", "/v1/events:batch"): TILL,
    ("GET", "/v1/events/{event_id}"): READ,
    ("GET", "/v1/rewards"): READ,
    ("POST", "/v1/redemptions"): TILL,
    ("POST", "/v1/redemptions/{redemption_id}:cancel"): frozenset(
        {"admin", "integration", "support"}
    ),
    ("GET", "/v1/redemptions"): REDEMPTIONS,
    ("GET", "/v1/redemptions/{redemption_id}"): REDEMPTIONS,
    ("GET", "/v1/members/{member_id}/redemptions"): REDEMPTIONS,
    ("POST", "/v1/redemptions/{redemption_id}:use"): TILL,
    ("GET", "/v1/webhooks"): ADMIN,
    ("POST", "/v1/webhooks"): ADMIN,
    ("DELETE", "/v1/webhooks/{subscription_id}"): ADMIN,
    ("GET", "/v1/webhooks/deliveries"): ADMIN,
    ("GET", "/v1/webhooks/deliveries/{delivery_id}/attempts"): ADMIN,
    ("POST", "/v1/webhooks/deliveries/{delivery_id}:replay"): ADMIN,
}


@dataclass(frozen=True)
class Caller:
    """The authenticated key behind a request."""

    key: ApiKey

    @property
    def role(self) -> str:
        return self.key.role

    @property
    def actor(self) -> str:
        """How the ledger records who did a manual change."""
        return f"api-key:{self.key.key_id}"


def caller(request: Request) -> Caller:
    """FastAPI dependency of every /v1 route: authenticate, then authorise."""
    token = bearer_token(request.headers.get("authorization", ""))
    services = request.app.state.services
    key = authenticate(services.db, token)
    route = request.scope.get("route")
    # the route's path without its converters ("{event_id:event_id}" is "{event_id}"), as
    # ACCESS and the OpenAPI document write it
    path = getattr(route, "path_format", request.url.path)
    problem = refusal(key, services.program.id, request.method, path)
    if problem is not None:
        raise problem
    assert key is not None
    return Caller(key)


def bearer_token(header: str) -> str:
    """The token of an ``Authorization: Bearer <token>`` header (401 if there is none)."""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Problem("unauthenticated", "send 'Authorization: Bearer <API key>'",
                      status=401)  # fmt: skip
    return token.strip()


def refusal(key: ApiKey | None, program_id: str, method: str, path: str) -> Problem | None:
    """Why the caller holding ``key`` (None: unknown, malformed or revoked) may not call
    ``method path`` on program ``program_id``; None if it may."""
    if key is None:
        return Problem("unauthenticated", "unknown, malformed or revoked API key", status=401)
    if key.program_id != program_id:
        return Problem("wrong_program", "this key belongs to another program")
    if key.role not in ACCESS.get((method, path), frozenset()):
        return Problem("forbidden", f"role '{key.role}' may not call {method} {path}")
    return None
