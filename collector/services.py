"""What the lifespan opens and the handlers use, as one typed object in the request state."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from collector.db import Database
from collector.metrics import Metrics
from collector.optin_guard import OptinGuard
from collector.ratelimit import RateLimiter
from collector.sending import Outbox
from collector.settings import Settings
from collector.sites import SiteCache
from collector.writer import EventWriter

if TYPE_CHECKING:  # the automations import services' users; avoid the cycle
    from collector.planner import Planner
    from collector.scheduler import Scheduler


@dataclass
class Services:
    settings: Settings
    db: Database
    metrics: Metrics
    sites: SiteCache
    writer: EventWriter
    ip_limiter: RateLimiter
    site_limiter: RateLimiter
    secret_key: str
    # consent (issue 3)
    suppression_key: str
    optin_guard: OptinGuard
    outbox: Outbox
    # automations (issue 4); set once the lifespan has built them
    planner: Planner | None = None
    scheduler: Scheduler | None = None
