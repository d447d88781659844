"""Defences against SMS pumping and fake sign-ups: what stops a web form from sending texts at will.

A double opt-in sends a text to whatever number is typed in, so the form is a way to make us
text numbers of an attacker's choosing (premium-rate "pumping") or to harass someone. Layers:

1. Per-site allowed countries (`phones.parse_phone`): other numbers are refused with 400.
2. Web opt-ins per IP address and per site per hour (in memory, token buckets): 429 above, and
   nothing is stored. A beacon carrying more opt-ins than an IP may make in an hour never passes.
3. A cap on confirmation texts per hour across all sites (in the database, so it holds across
   restarts): above it the opt-in is recorded and stays `pending`, without a text.
4. No second confirmation text to the same number within 24 hours, whatever the site.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import aiosqlite

from collector.errors import TooManyRequests
from collector.ratelimit import RateLimiter

CONFIRMATION_REPEAT_MS = 24 * 3600 * 1000
HOUR_MS = 3600 * 1000


class HourlyLimiter(RateLimiter):
    """`RateLimiter`'s token bucket, holding `per_hour` tokens and refilling them over an hour."""

    def __init__(
        self, per_hour: int, clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000
    ) -> None:
        super().__init__(per_hour, clock, max_keys)
        self.rate = per_hour / 3600.0


class OptinGuard:
    def __init__(
        self, per_ip_hour: int, per_site_hour: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.by_ip = HourlyLimiter(per_ip_hour, clock)
        self.by_site = HourlyLimiter(per_site_hour, clock)

    def admit(self, site_key: str, ip: str, count: int) -> None:
        """Take `count` opt-ins from the IP's and the site's allowance, or raise 429."""
        wait = self.by_ip.take(ip, count)
        if not wait:
            wait = self.by_site.take(site_key, count)
        if wait:
            raise TooManyRequests(
                "too many opt-ins; try again later",
                code="optin_rate_limited",
                retry_after=int(wait),
            )


async def confirmation_refused(
    conn: aiosqlite.Connection, phone: str, now: int, cap_per_hour: int
) -> str | None:
    """Why no confirmation text may go to `phone` now ('repeat' or 'capped'), or None."""
    cursor = await conn.execute(
        "select 1 from messages where to_number = ? and kind = 'confirmation' "
        "and created_at > ? and status not in ('skipped', 'cancelled') limit 1",
        (phone, now - CONFIRMATION_REPEAT_MS),
    )
    if await cursor.fetchone() is not None:
        return "repeat"
    if cap_per_hour:
        cursor = await conn.execute(
            "select count(*) as n from messages where kind = 'confirmation' and created_at > ? "
            "and status not in ('skipped', 'cancelled')",
            (now - HOUR_MS,),
        )
        row = await cursor.fetchone()
        if row is not None and row["n"] >= cap_per_hour:
            return "capped"
    return None
