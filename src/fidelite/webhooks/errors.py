"""Webhook errors: a stable ``code``, the offending ``field`` and a message saying why."""

from __future__ import annotations

from typing import Any


class WebhookError(Exception):
    """A refused webhook request (nothing was written).

    ``code`` is stable (``unsafe_url``, ``unknown_subscription``, ``invalid_request``...),
    ``field`` names the input at fault when there is one.
    """

    def __init__(self, code: str, message: str, *, field: str | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.field = field

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form used by the CLI (and later the API's problem details)."""
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field:
            out["field"] = self.field
        return out


class UnsafeURL(WebhookError):
    """A subscription URL that could reach the server itself or a private network."""

    def __init__(self, message: str, *, field: str = "url") -> None:
        super().__init__("unsafe_url", f"{field}: {message}", field=field)
