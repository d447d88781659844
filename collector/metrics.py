"""Counters and a latency histogram in Prometheus text format, and the middleware that feeds them.

Plain dictionaries: one process, one event loop, so no locks and no client library. Route labels
are a fixed set of path prefixes, so label cardinality stays bounded whatever URLs are requested.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
ROUTE_PREFIXES = (
    ("/e", "/e"),
    ("/s.js", "/s.js"),
    ("/r/", "/r"),
    ("/api/", "/api"),
    ("/webhooks/", "/webhooks"),
    ("/dashboard", "/dashboard"),
    ("/demo", "/demo"),
    ("/healthz", "/healthz"),
    ("/metrics", "/metrics"),
)


def route_label(path: str) -> str:
    for prefix, label in ROUTE_PREFIXES:
        if path == prefix or path.startswith(prefix if prefix.endswith("/") else prefix + "/"):
            return label
    return "other"


class Metrics:
    def __init__(self) -> None:
        self.events_accepted: dict[str, int] = defaultdict(int)
        self.events_dropped: dict[str, int] = defaultdict(int)
        self.requests: dict[tuple[str, str, int], int] = defaultdict(int)
        self.latency_counts: dict[str, list[int]] = {}
        self.latency_sum: dict[str, float] = defaultdict(float)
        self.gauges: dict[str, Callable[[], float]] = {}

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests[(method, route, status)] += 1
        counts = self.latency_counts.get(route)
        if counts is None:
            counts = self.latency_counts[route] = [0] * (len(LATENCY_BUCKETS) + 1)
        for index, bound in enumerate(LATENCY_BUCKETS):
            if seconds <= bound:
                counts[index] += 1
                break
        else:
            counts[-1] += 1
        self.latency_sum[route] += seconds

    def render(self) -> str:
        lines: list[str] = []

        def family(name: str, kind: str, help: str) -> None:
            lines.append(f"# HELP {name} {help}")
            lines.append(f"# TYPE {name} {kind}")

        family("smsr_events_accepted_total", "counter", "Events accepted by POST /e, by name.")
        for name, n in sorted(self.events_accepted.items()):
            lines.append(f'smsr_events_accepted_total{{name="{name}"}} {n}')
        family("smsr_events_dropped_total", "counter", "Events not stored, by reason.")
        for reason, n in sorted(self.events_dropped.items()):
            lines.append(f'smsr_events_dropped_total{{reason="{reason}"}} {n}')
        family("smsr_http_requests_total", "counter", "HTTP requests by method, route and status.")
        for (method, route, status), n in sorted(self.requests.items()):
            lines.append(
                f'smsr_http_requests_total{{method="{method}",route="{route}",status="{status}"}} {n}'
            )
        family("smsr_http_request_duration_seconds", "histogram", "HTTP request latency.")
        for route, counts in sorted(self.latency_counts.items()):
            cumulative = 0
            for bound, n in zip((*LATENCY_BUCKETS, "+Inf"), counts, strict=True):
                cumulative += n
                lines.append(
                    f'smsr_http_request_duration_seconds_bucket{{route="{route}",le="{bound}"}} '
                    f"{cumulative}"
                )
            lines.append(
                f'smsr_http_request_duration_seconds_sum{{route="{route}"}} {self.latency_sum[route]:.6f}'
            )
            lines.append(
                f'smsr_http_request_duration_seconds_count{{route="{route}"}} {cumulative}'
            )
        for name, read in sorted(self.gauges.items()):
            family(name, "gauge", name.replace("_", " "))
            lines.append(f"{name} {read()}")
        return "\n".join(lines) + "\n"


class MetricsMiddleware:
    """Pure ASGI (no BaseHTTPMiddleware), so it adds microseconds, not a task, per request."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            self.metrics.observe_request(
                scope["method"], route_label(scope["path"]), status, time.perf_counter() - started
            )
