"""Keeps texts to the provider's throughput: at most `rate` requests reach it in any second.

Vonage answers status 1 (throttled) above 30 requests a second per API key by default, counted
where the requests arrive. Two rules, both needed:

- Spacing: one start at least every 1/rate seconds (with 3 % headroom), so a queue of due texts
  drains smoothly at the full rate.
- A window over the requests themselves: a new one starts only while fewer than `rate` requests
  are in flight or finished within the last second. Whatever their transit times, the requests
  that arrive within any one second were then all counted when the last of them started, so no
  second at the provider holds more than `rate` (spacing alone let the first requests of a burst,
  slowed by new TLS connections, arrive together with the ones behind them: 33 in a second).

Only the Vonage sender is wrapped; the console sender is not.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable

from collector.sender_types import Sender, SendResult

HEADROOM = 0.97
WINDOW_SECONDS = 1.0


class RateLimitedSender:
    def __init__(
        self, inner: Sender, per_second: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        assert per_second > 0
        self.inner = inner
        self.name = inner.name
        self.interval = 1.0 / (per_second * HEADROOM)
        self.limit = max(1, math.floor(per_second))
        self.clock = clock
        self._next_slot = 0.0
        self._in_flight = 0
        self._finished: deque[float] = deque()  # when recent requests got their answer
        self._lock = asyncio.Lock()
        self._freed = asyncio.Event()

    def _busy(self, now: float) -> int:
        while self._finished and self._finished[0] <= now - WINDOW_SECONDS:
            self._finished.popleft()
        return self._in_flight + len(self._finished)

    async def _wait_for_slot(self) -> None:
        # The lock is held across the waits: starts are strictly one after another.
        async with self._lock:
            while True:
                now = self.clock()
                # Loop: an event loop may wake a timer a millisecond early (uvloop does).
                wait = self._next_slot - now
                if wait <= 0 and self._busy(now) < self.limit:
                    break
                if wait <= 0 and self._finished:
                    wait = self._finished[0] + WINDOW_SECONDS - now
                self._freed.clear()
                if wait > 0:
                    await asyncio.sleep(wait)
                else:  # all in flight: wait for an answer
                    await self._freed.wait()
            self._next_slot = self.clock() + self.interval
            self._in_flight += 1

    async def send(
        self, *, to: str, sender: str | None, text: str, client_ref: str, callback_url: str | None
    ) -> SendResult:
        await self._wait_for_slot()
        try:
            return await self.inner.send(
                to=to, sender=sender, text=text, client_ref=client_ref, callback_url=callback_url
            )
        finally:
            self._in_flight -= 1
            self._finished.append(self.clock())
            self._freed.set()

    async def close(self) -> None:
        await self.inner.close()
