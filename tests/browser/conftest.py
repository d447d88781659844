"""Browser fixtures: the real collector in its own process, a test site on another port, and
Debian's Chromium driven by Playwright (one browser per test module).

Each test gets its own site (so its events are its own) and a fresh browser context (so its
storage is empty). What the snippet sends is observed on the wire as well as read back from the
admin API.
"""

from __future__ import annotations

import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from harness import (
    CHROMIUM,
    CHROMIUM_ARGS,
    DESKTOP_UA,
    Collector,
    Site,
    SiteServer,
    Wire,
    free_port,
    start_collector,
)
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright


@pytest.fixture(scope="session")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Collector]:
    """`python -m collector serve` on a free port with a fresh SQLite file."""
    server = start_collector(tmp_path_factory.mktemp("collector"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def site_server(collector: Collector) -> Iterator[SiteServer]:
    with urllib.request.urlopen(collector.url + "/s.js", timeout=5) as response:
        snippet = response.read()
    server: ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            parts = urlsplit(self.path)
            if parts.path == "/slow/s.js":
                # The snippet, late: calls made before it loads must be queued and replayed.
                time.sleep(int(parse_qs(parts.query).get("ms", ["500"])[0]) / 1000)
                body, kind = snippet, "application/javascript"
            elif parts.path in site.pages:
                body, kind = site.pages[parts.path].encode(), "text/html; charset=utf-8"
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    server.daemon_threads = True
    url = f"http://127.0.0.1:{server.server_address[1]}"
    site = SiteServer(url, collector.url + "/s.js")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield site
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def site(
    collector: Collector, site_server: SiteServer, wire: Wire, request: pytest.FixtureRequest
) -> Site:
    created = collector.api(
        "POST", "/api/v1/sites", {"name": request.node.name[:60], "origins": [site_server.url]}
    )
    return Site(created["id"], created["key"], collector, wire.pause)


# Module scope, not session: while Playwright's sync API is open, its event loop counts as running
# in this thread, and every later test that calls asyncio.run() would fail.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context(user_agent=DESKTOP_UA)
    yield ctx
    ctx.close()


@pytest.fixture
def wire(context: BrowserContext, collector: Collector) -> Wire:
    observed = Wire(collector, context)
    context.on("request", observed.observe)
    return observed


@pytest.fixture
def page(context: BrowserContext, wire: Wire) -> Page:
    return context.new_page()
