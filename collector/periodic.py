"""Background jobs that run every so often for the life of the app (retention, opt-in expiry,
attribution): a failed pass is logged and tried again next time, never ends the task."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


async def every(seconds: float, job: Callable[[], Awaitable[int]], what: str) -> None:
    """Run `job` now and then every `seconds`; logs how many things a pass changed."""
    while True:
        try:
            changed = await job()
            if changed:
                log.info("%s: %d", what, changed)
        except Exception:
            log.exception("%s pass failed; will retry", what)
        await asyncio.sleep(seconds)
