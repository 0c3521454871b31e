"""Request limits: body size (413), page size caps, and a per-key rate limit (429).

The rate limit counts events: a batch is charged its number of events, and a batch
larger than a full bucket, which could never pass, is refused whole (422).

The rate limit is a token bucket per API key and kind of call (events, redemptions),
in the memory of one server process: with ``--workers N`` each worker keeps its own
buckets, so the effective limit is up to N times the configured one.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fidelite.api.problems import BASE, MEDIA_TYPE, Problem


@dataclass
class RateLimiter:
    """``rate`` calls per second with bursts up to ``burst``; 0 disables it.

    Invariant: ``rate`` is 0 or a positive finite number, and then ``burst`` is finite
    and at least 1 (a limiter built otherwise raises :class:`ValueError`: ``nan`` or a
    negative rate would limit nothing, an infinite one break every batch).
    """

    rate: float
    burst: float
    _buckets: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.rate) and self.rate >= 0):
            raise ValueError(f"rate limit must be 0 (none) or a positive number, not {self.rate}")
        if self.rate > 0 and not (math.isfinite(self.burst) and self.burst >= 1):
            raise ValueError(f"rate limit burst must be a number of at least 1, not {self.burst}")

    def take(self, key_id: str, kind: str, cost: float = 1.0) -> None:
        """Spend ``cost`` tokens or raise ``429 rate_limited`` with the wait in seconds."""
        if self.rate <= 0:
            return
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get((key_id, kind), (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens < cost:
                wait = (cost - tokens) / self.rate
                self._buckets[(key_id, kind)] = (tokens, now)
                raise Problem("rate_limited", f"too many {kind} calls for this key",
                              status=429, retry_after=max(1, round(wait + 0.5)))  # fmt: skip
            self._buckets[(key_id, kind)] = (tokens - cost, now)

    def most_per_call(self) -> int | None:
        """The most a single call may cost: a full bucket (None: no limit). A call costing
        more could never pass, however long its client waited."""
        return int(self.burst) if self.rate > 0 else None


def batch_refusal(size: int, max_batch: int, limiter: RateLimiter) -> str | None:
    """Why a batch of ``size`` events is refused whole (None: it is not): over
    ``max_batch`` (1,000), or over the rate limit's bucket, which a batch is
    charged its number of events from (``--rate-limit N``: bursts of 2N). The refusal
    names the smaller of the two limits, the one a batch must keep to."""
    most = limiter.most_per_call()
    if most is not None and most < max_batch and size > most:
        return (f"at most {most} events per batch at this server's rate limit "
                f"({limiter.rate:g} events per second per key, bursts of {most}); this one "
                f"holds {size}: send them in smaller batches")  # fmt: skip
    if size > max_batch:
        return f"at most {max_batch} events per batch; this one holds {size}"
    return None


class BodyLimit:
    """ASGI middleware refusing request bodies over ``max_bytes`` with 413 (``max_bytes``
    is at least 1: :class:`ValueError` otherwise, as every request would be refused)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        if max_bytes < 1:
            raise ValueError(f"the largest request body must be at least 1 byte, not {max_bytes}")
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit():
            if int(declared) > self.max_bytes:
                await _too_large(send, self.max_bytes)
                return
            # the server reads no more than the declared length: the app may stream it
            await self.app(scope, receive, send)
            return
        # no length declared (chunked): read the body here, at most max_bytes, so that
        # the refusal is this 413 whichever route would have read it, then hand it on
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client went away: nobody to answer
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > self.max_bytes:
                await _too_large(send, self.max_bytes)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        given = False

        async def replay() -> Message:
            nonlocal given
            if not given:
                given = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: the disconnect, when it comes

        await self.app(scope, replay, send)


async def _too_large(send: Send, limit: int) -> None:
    import json

    body: dict[str, Any] = {"type": BASE + "payload_too_large", "title": "payload too large",
                            "status": 413, "code": "payload_too_large",
                            "detail": f"the request body is over {limit} bytes"}  # fmt: skip
    raw = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", MEDIA_TYPE.encode()),
                            (b"content-length", str(len(raw)).encode())]})  # fmt: skip
    await send({"type": "http.response.body", "body": raw})
