"""When to try a failed delivery again: exponential backoff with a little jitter.

After the n-th failed try (n = 1, 2, ...) the next comes `base * 2**(n-1)` seconds later,
capped at `cap`, stretched by a random factor in [1, 1 + jitter) so receivers coming back
from an outage are not hit by every retry at the same instant.
"""

from __future__ import annotations

import random

JITTER = 0.1


def delay(failures: int, base: float, cap: float, jitter: float = JITTER,
          rng: random.Random | None = None) -> float:
    if failures < 1:
        raise ValueError("delay is for after a failed try (failures >= 1)")
    plain = min(cap, base * 2 ** min(failures - 1, 62))
    return plain * (1 + (rng or random).random() * jitter) if jitter else plain


def schedule(max_attempts: int, base: float, cap: float) -> list[float]:
    """The delays between tries without jitter: what docs/realtime.md tabulates."""
    return [delay(n, base, cap, jitter=0) for n in range(1, max_attempts)]
