"""What the lifespan opens and the handlers use, as one typed object in the request state."""

from __future__ import annotations

from dataclasses import dataclass

from collector.db import Database
from collector.metrics import Metrics
from collector.optin_guard import OptinGuard
from collector.ratelimit import RateLimiter
from collector.sending import Outbox
from collector.settings import Settings
from collector.sites import SiteCache
from collector.writer import EventWriter


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
