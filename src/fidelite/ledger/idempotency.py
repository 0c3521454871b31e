"""Request fingerprints for idempotency.

A retry must carry the same key *and* the same content. The fingerprint is a SHA-256
of the canonical JSON of what the caller asked for; values the caller left to the
ledger (such as ``at`` defaulting to now) are not part of it, so a retry a second
later still matches.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any


def _canonical(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    return value


def request_hash(request: dict[str, Any]) -> str:
    """Fingerprint of a request (``None`` values are left out)."""
    body = json.dumps(_canonical(request), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(body.encode()).hexdigest()
