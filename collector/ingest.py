"""`POST /e`: snippet beacons in, 202 once they are committed.

Order of checks, cheapest first: body size → content type → JSON envelope → site key → origin →
bot → rate limits → every event → group commit. Every refusal is a 4xx with a short JSON reason
and stores nothing; CORS headers go on every answer to a known origin so the snippet can read the
status and `Retry-After`.
"""

from __future__ import annotations

import functools
import time
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from collector.bots import is_bot
from collector.errors import (
    AppError,
    BadRequest,
    Forbidden,
    PayloadTooLarge,
    ServiceUnavailable,
    TooManyRequests,
    error_response,
)
from collector.events import event_rows, parse_beacon
from collector.links import click_tokens, tie_click_tokens
from collector.optins import record_web_optins, screen_optins
from collector.services import Services
from collector.writer import WriterOverloaded

ACCEPTED_TYPES = ("text/plain", "application/json", "")
EXPOSED_HEADERS = "Retry-After, X-SMSR-Dropped"

# `is_bot`'s case-insensitive regex takes ~40 us per User-Agent, 11% of the server's CPU for
# single-event beacons (bench/README.md); a visitor's beacons repeat one UA, so remember answers
# for real-sized UAs, at most 1024 of them (under 1 MB however many are made up).
_known_user_agents = functools.lru_cache(maxsize=1024)(is_bot)


def is_bot_ua(user_agent: str) -> bool:
    return _known_user_agents(user_agent) if len(user_agent) <= 512 else is_bot(user_agent)


def request_origin(request: Request) -> str | None:
    """The page's origin: the Origin header, else the Referer's scheme://host[:port]."""
    origin = request.headers.get("origin")
    if origin and origin != "null":
        return origin.lower().rstrip("/")
    referer = request.headers.get("referer")
    if referer:
        parts = urlsplit(referer)
        if parts.scheme and parts.netloc:
            return f"{parts.scheme}://{parts.netloc}".lower()
    return None


def client_ip(request: Request, trust_proxy: bool) -> str:
    if trust_proxy:
        forwarded = request.headers.get("x-forwarded-for")
        if forwarded:
            return forwarded.split(",")[0].strip()
    return request.client.host if request.client else "unknown"


def cors_headers(origin: str | None, services: Services) -> dict[str, str]:
    if origin is None or origin not in services.sites.all_origins:
        return {}
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Expose-Headers": EXPOSED_HEADERS,
        "Vary": "Origin",
    }


async def ingest(request: Request) -> Response:
    services: Services = request.state.services
    await services.sites.refresh()
    origin = request_origin(request)
    headers = cors_headers(origin, services)
    try:
        accepted = await _accept(request, services, origin)
    except AppError as exc:
        return error_response(exc, headers)
    if not accepted:
        headers["X-SMSR-Dropped"] = "bot"
    return Response(status_code=202, headers=headers)


async def _accept(request: Request, services: Services, origin: str | None) -> bool:
    """Store the beacon; False when it came from a bot and was dropped."""
    settings, metrics = services.settings, services.metrics
    body = await _read_body(request, settings.max_body_bytes)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in ACCEPTED_TYPES:
        raise BadRequest(
            f"content type {content_type!r}; send JSON as text/plain or application/json",
            code="bad_content_type",
        )
    beacon = parse_beacon(body, settings.max_batch_events)
    site = services.sites.by_key.get(beacon.site_key)
    if site is None:
        raise Forbidden("unknown site key", code="unknown_site", field="k")
    if origin is None or origin not in site.origins:
        raise Forbidden(
            f"origin {origin!r} is not one of this site's origins", code="origin_not_allowed"
        )
    if is_bot_ua(request.headers.get("user-agent", "")):
        metrics.events_dropped["bot"] += len(beacon.events)
        return False
    count = len(beacon.events)
    ip = client_ip(request, settings.trust_proxy)
    wait = services.ip_limiter.take(ip, count) or services.site_limiter.take(site.key, count)
    if wait:
        metrics.events_dropped["rate_limited"] += count
        raise TooManyRequests("too many events; retry later", retry_after=int(wait))
    rows = event_rows(beacon, site, int(time.time() * 1000))
    optins = screen_optins(services, beacon, site, ip)  # [] unless the beacon has opt-ins
    try:
        await services.writer.write(rows)
    except WriterOverloaded:
        metrics.events_dropped["overloaded"] += count
        raise ServiceUnavailable("busy; retry later", retry_after=1) from None
    for row in rows:
        metrics.events_accepted[row[2]] += 1
    if optins:
        await record_web_optins(services, site, optins, ip, request.headers.get("user-agent"))
    tokens = click_tokens(beacon.events)
    if tokens:  # a landing page view from a tracked link: tie the browser to the contact
        await tie_click_tokens(services.db, site.id, beacon.visitor_id, tokens)
    return True


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"body over {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def preflight(request: Request) -> Response:
    """CORS preflight for `POST /e`; only origins of some site are allowed."""
    services: Services = request.state.services
    await services.sites.refresh()
    origin = request_origin(request)
    headers = cors_headers(origin, services)
    if not headers:
        return error_response(Forbidden("origin not allowed", code="origin_not_allowed"))
    headers["Access-Control-Allow-Methods"] = "POST, OPTIONS"
    headers["Access-Control-Allow-Headers"] = "Content-Type"
    headers["Access-Control-Max-Age"] = "86400"
    return Response(status_code=204, headers=headers)
