"""One router per resource; :data:`ROUTERS` is what the application mounts under /v1."""

from __future__ import annotations

from fidelite.api.routes import adjustments, coupons, events, members, rewards, tiers, webhooks

ROUTERS = [members.router, events.router, rewards.router, adjustments.router, webhooks.router,
           tiers.router, coupons.router]  # fmt: skip
