"""Keeps texts to the provider's throughput: at most `rate` sends start in any second.

Vonage answers status 1 (throttled) above 30 requests a second per API key by default. Sends are
spaced, one at least every 1/rate seconds, so the limit holds over any window and a queue of
due texts drains at the full rate. Only the Vonage sender is wrapped; the console sender is not.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from collector.sender_types import Sender, SendResult

HEADROOM = 0.97


class RateLimitedSender:
    def __init__(
        self, inner: Sender, per_second: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        assert per_second > 0
        self.inner = inner
        self.name = inner.name
        # A little under the limit: the network and the provider's clock add jitter of their own.
        self.interval = 1.0 / (per_second * HEADROOM)
        self.clock = clock
        self._next_slot = 0.0
        self._lock = asyncio.Lock()

    async def _wait_for_slot(self) -> None:
        # The lock is held across the sleep: starts are strictly one after another, each at
        # least `interval` after the previous one actually started, so a stalled event loop
        # can delay texts but never bunch them above the limit.
        async with self._lock:
            # Loop: an event loop may wake a timer a millisecond early (uvloop does).
            while (wait := self._next_slot - self.clock()) > 0:
                await asyncio.sleep(wait)
            self._next_slot = self.clock() + self.interval

    async def send(
        self, *, to: str, sender: str | None, text: str, client_ref: str, callback_url: str | None
    ) -> SendResult:
        await self._wait_for_slot()
        return await self.inner.send(
            to=to, sender=sender, text=text, client_ref=client_ref, callback_url=callback_url
        )

    async def close(self) -> None:
        await self.inner.close()
