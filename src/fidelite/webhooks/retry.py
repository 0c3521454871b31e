"""The retry schedule: exponential backoff with bounded jitter, then the dead letter.

After failed attempt ``n`` (1-based) the next try waits
``min(cap, base * factor ** (n - 1) * (1 + jitter * r))`` seconds, ``r`` uniform in
[0, 1): jitter spreads retries of many deliveries that failed together (a receiver
outage) so they do not all return at once, and the cap bounds the wait. After
``max_attempts`` failed attempts a delivery is ``dead``: only a manual replay sends it
again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long a failing delivery is retried."""

    base_seconds: float = 30.0
    factor: float = 2.0
    cap_seconds: float = 6 * 3600.0
    jitter: float = 0.1
    max_attempts: int = 10

    def __post_init__(self) -> None:
        if self.base_seconds <= 0 or self.factor < 1 or self.cap_seconds < self.base_seconds:
            raise ValueError("retry policy: need base > 0, factor >= 1, cap >= base")
        if not 0 <= self.jitter <= 1 or self.max_attempts < 1:
            raise ValueError("retry policy: need 0 <= jitter <= 1 and max_attempts >= 1")

    def delay(self, attempt: int, r: float = 0.0) -> timedelta:
        """The wait after failed attempt ``attempt`` (1-based), for a random draw ``r``."""
        raw = self.base_seconds * self.factor ** (attempt - 1) * (1 + self.jitter * r)
        return timedelta(seconds=min(self.cap_seconds, raw))

    def is_last(self, attempt: int) -> bool:
        """Whether failed attempt ``attempt`` exhausts the budget (the delivery dies)."""
        return attempt >= self.max_attempts
