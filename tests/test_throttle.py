"""The Vonage rate limit: sends are spaced so no second holds more than the limit."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from collector.sender_types import SendResult
from collector.throttle import RateLimitedSender


class RecordingSender:
    """A real Sender implementation that records when each send started (loop time)."""

    name = "recording"

    def __init__(self) -> None:
        self.started: list[float] = []

    async def send(self, **_: object) -> SendResult:
        self.started.append(asyncio.get_running_loop().time())
        return SendResult(("id",), 1, Decimal("0.03"), "EUR")

    async def close(self) -> None:
        return None


@pytest.mark.asyncio
async def test_sends_are_spaced_at_the_rate() -> None:
    inner = RecordingSender()
    limited = RateLimitedSender(inner, per_second=50)
    sends = [
        limited.send(to="+1", sender=None, text="x", client_ref=str(n), callback_url=None)
        for n in range(25)
    ]
    await asyncio.gather(*sends)
    gaps = [b - a for a, b in zip(inner.started, inner.started[1:], strict=False)]
    assert len(inner.started) == 25
    assert min(gaps) >= 0.02  # one every 1/50 s at least (a little more: headroom)
    assert limited.name == "recording"
