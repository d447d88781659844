"""`create_app(settings)`: the route table, middleware and lifespan of the whole service."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route

from collector import api, demo, inbound, redirect
from collector.attribution import ATTRIBUTION_INTERVAL, attribute_pending
from collector.consent import EXPIRY_INTERVAL_SECONDS, expire_pending
from collector.db import Database
from collector.errors import EXCEPTION_HANDLERS
from collector.ingest import ingest, preflight
from collector.instance import instance_key
from collector.metrics import Metrics, MetricsMiddleware
from collector.optin_guard import OptinGuard
from collector.periodic import every
from collector.planner import Planner
from collector.ratelimit import RateLimiter
from collector.retention import INTERVAL_SECONDS, purge_old_events
from collector.scheduler import Scheduler
from collector.sending import Outbox, make_sender
from collector.services import Services
from collector.settings import Settings
from collector.sites import SiteCache
from collector.snippet import SnippetFile
from collector.writer import EventWriter

log = logging.getLogger(__name__)


async def healthz(request: Request) -> Response:
    services: Services = request.state.services
    try:
        await services.db.fetchone("select 1")
    except Exception as exc:
        return JSONResponse({"status": "error", "error": str(exc)}, status_code=503)
    if services.outbox.paused:  # an account-level Vonage error: texts wait, the rest runs
        return JSONResponse({"status": "ok", "sending": "paused"})
    return JSONResponse({"status": "ok"})


async def metrics_endpoint(request: Request) -> Response:
    services: Services = request.state.services
    return PlainTextResponse(services.metrics.render(), media_type="text/plain; version=0.0.4")


def create_app(
    settings: Settings,
    demo_site_key: str | None = None,
    clock: Callable[[], int] | None = None,
) -> Starlette:
    """The whole service; `demo_site_key` also serves the demo shop at `/demo/` for that site.

    `clock` (milliseconds since the epoch) replaces the wall clock of the automations, so tests
    can move time instead of sleeping.
    """
    metrics = Metrics()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        db = await Database.open(settings.db)
        writer = EventWriter(db, settings.write_queue_limit, metrics.events_dropped)
        suppression_key = await instance_key(db, "suppression_key")
        services = Services(
            settings=settings,
            db=db,
            metrics=metrics,
            sites=SiteCache(db),
            writer=writer,
            ip_limiter=RateLimiter(settings.rate_limit_ip),
            site_limiter=RateLimiter(settings.rate_limit_site),
            secret_key=settings.secret_key or await instance_key(db, "secret_key"),
            suppression_key=suppression_key,
            optin_guard=OptinGuard(settings.optin_limit_ip, settings.optin_limit_site),
            outbox=Outbox(db, make_sender(settings), settings, suppression_key),
        )
        scheduler = Scheduler(
            db, services.outbox, suppression_key, settings.public_url, clock=clock
        )
        planner = Planner(db, on_change=scheduler.kick, clock=clock)
        services.planner, services.scheduler = planner, scheduler
        metrics.gauges["smsr_write_queue_events"] = lambda: writer.pending_rows
        metrics.gauges["smsr_sending_paused"] = lambda: float(services.outbox.paused)
        await services.sites.refresh(force=True)
        writer.start()
        services.outbox.start()
        background = [
            asyncio.create_task(planner.run(), name="planner"),
            asyncio.create_task(scheduler.run(), name="scheduler"),
            asyncio.create_task(
                every(ATTRIBUTION_INTERVAL, lambda: attribute_pending(db), "purchases attributed"),
                name="attribution",
            ),
            asyncio.create_task(
                every(
                    INTERVAL_SECONDS,
                    lambda: purge_old_events(db, settings.event_retention_days),
                    "anonymous events deleted by retention",
                ),
                name="retention",
            ),
            asyncio.create_task(
                every(
                    EXPIRY_INTERVAL_SECONDS,
                    lambda: expire_pending(db, settings.optin_expiry_hours),
                    "unconfirmed opt-ins expired",
                ),
                name="optin-expiry",
            ),
        ]
        try:
            yield {"services": services}
        finally:
            # uvicorn has finished the in-flight requests by now; commit what they queued.
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            await writer.stop()
            await services.outbox.stop()
            await services.outbox.sender.close()
            await db.close()

    routes = [
        Route("/s.js", SnippetFile().respond, methods=["GET", "HEAD"]),
        Route("/e", ingest, methods=["POST"]),
        Route("/e", preflight, methods=["OPTIONS"]),
        Route("/r/{code}", redirect.follow, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        Mount("/api/v1", routes=api.routes()),
        *inbound.routes,
    ]
    if demo_site_key is not None:
        routes.append(Mount("/demo", routes=demo.routes(demo_site_key)))
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers=EXCEPTION_HANDLERS)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.state.settings = settings
    return app
