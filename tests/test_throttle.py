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
    assert len(inner.started) == 25
    # Starts are spaced by the limiter's slots: 24 intervals at least, at a little under 50/s.
    assert inner.started[-1] - inner.started[0] >= 24 / 50
    window = [t for t in inner.started if t - inner.started[0] < 0.2]
    assert len(window) <= 0.2 * 50 + 1
    assert limited.name == "recording"


class SlowStartSender:
    """A real Sender whose first requests take long to arrive, as on new TLS connections."""

    name = "slow-start"

    def __init__(self, slow: int, transit: float) -> None:
        self.slow, self.transit = slow, transit
        self.arrived: list[float] = []

    async def send(self, **_: object) -> SendResult:
        slow = self.slow > 0
        self.slow -= 1
        await asyncio.sleep(self.transit if slow else 0.001)
        self.arrived.append(asyncio.get_running_loop().time())
        return SendResult(("id",), 1, None, None)

    async def close(self) -> None:
        return None


@pytest.mark.asyncio
async def test_no_second_at_the_provider_holds_more_than_the_limit() -> None:
    inner = SlowStartSender(slow=4, transit=0.3)
    limited = RateLimitedSender(inner, per_second=10)
    sends = [
        limited.send(to="+1", sender=None, text="x", client_ref=str(n), callback_url=None)
        for n in range(25)
    ]
    await asyncio.gather(*sends)
    arrived = sorted(inner.arrived)
    busiest = max(sum(1 for t in arrived if start <= t < start + 1.0) for start in arrived)
    assert len(arrived) == 25
    assert busiest <= 10
