"""A per-key rate limit (the `limits` library, sliding window counters in memory).

Counts are per collector process: with `--workers N` a key may make N times the limit in
all. A refused request is answered 429 with `Retry-After` (whole seconds), which Segment's
libraries honour before retrying.
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter


class KeyRateLimiter:
    def __init__(self, spec: str) -> None:
        self.items: list[RateLimitItem] = parse_many(spec) if spec.strip() else []
        self._limiter = SlidingWindowCounterRateLimiter(MemoryStorage())

    async def retry_after(self, key_id: str) -> int | None:
        """Count one request of `key_id`: None when allowed, else seconds to wait."""
        for item in self.items:
            if not await self._limiter.hit(item, key_id):
                stats = await self._limiter.get_window_stats(item, key_id)
                return max(1, math.ceil(stats.reset_time - time.time()))
        return None
