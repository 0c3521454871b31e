"""Signing webhook bodies, and verifying them on the receiving side.

Header: ``Fidelite-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``.
The timestamp is inside the signed text, so a captured request cannot be replayed
later with a fresh timestamp; receivers refuse timestamps older (or newer) than a
tolerance. Comparison is constant-time (:func:`hmac.compare_digest`).
"""

from __future__ import annotations

import hashlib
import hmac
import time

HEADER = "Fidelite-Signature"
DEFAULT_TOLERANCE = 300  # seconds


class SignatureError(ValueError):
    """A webhook request whose signature header is missing, malformed, stale or wrong."""


def compute(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``"<timestamp>.<body>"`` under ``secret``."""
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The ``Fidelite-Signature`` header value for ``body`` (timestamp: now)."""
    t = int(time.time()) if timestamp is None else timestamp
    return f"t={t},v1={compute(secret, t, body)}"


def verify(
    secret: str,
    body: bytes,
    header: str | None,
    *,
    tolerance: int = DEFAULT_TOLERANCE,
    now: int | None = None,
) -> int:
    """Check a received request; return its timestamp or raise :class:`SignatureError`.

    ``body`` must be the raw bytes received (not re-serialised JSON). Several ``v1``
    values are accepted (one per secret while a secret is being rotated).
    """
    if not header:
        raise SignatureError(f"missing {HEADER} header")
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise SignatureError(f"{HEADER}: timestamp {value!r} is not an integer") from None
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        raise SignatureError(f"{HEADER}: expected t=<unix>,v1=<hex>, got {header!r}")
    current = int(time.time()) if now is None else now
    if abs(current - timestamp) > tolerance:
        raise SignatureError(
            f"{HEADER}: timestamp {timestamp} is {current - timestamp}s away from now "
            f"(tolerance {tolerance}s)"
        )
    expected = compute(secret, timestamp, body)
    if not any(hmac.compare_digest(expected, c) for c in candidates):
        raise SignatureError(f"{HEADER}: no signature matches the body")
    return timestamp
