"""Token buckets per key (IP address, site), in memory, for `POST /e`.

A bucket holds up to `per_minute` tokens and refills continuously, so a client may burst to its
minute's allowance and then goes at the steady rate. Idle buckets are forgotten.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable


class RateLimiter:
    def __init__(
        self, per_minute: int, clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000
    ) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.clock = clock
        self.max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, key: str, count: int = 1) -> float:
        """Take `count` tokens; 0.0 when allowed, else the seconds to wait before trying again."""
        if self.capacity <= 0:
            return 0.0  # a limit of 0 means unlimited
        now = self.clock()
        tokens, last = self._buckets.get(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - last) * self.rate)
        if tokens >= count:
            self._set(key, tokens - count, now)
            return 0.0
        self._set(key, tokens, now)
        return max(1.0, math.ceil((count - tokens) / self.rate))

    def _set(self, key: str, tokens: float, now: float) -> None:
        if key not in self._buckets and len(self._buckets) >= self.max_keys:
            self._forget_full(now)
        self._buckets[key] = (tokens, now)

    def _forget_full(self, now: float) -> None:
        """Drop buckets that have refilled completely: they hold no information."""
        full = [
            k
            for k, (t, last) in self._buckets.items()
            if t + (now - last) * self.rate >= self.capacity
        ]
        for k in full:
            del self._buckets[k]
        if len(self._buckets) >= self.max_keys:
            self._buckets.clear()
