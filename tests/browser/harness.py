"""The parts of the browser tests that aren't fixtures: the collector and site servers, reading
events back from the admin API and off the wire, and a bounded wait."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Request

from collector.events import expand_event
from collector.settings import Settings

from fakes.vonage_server import FakeVonage

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# The collector drops HeadlessChrome as a bot, so the browser says it is a desktop Chrome.
DESKTOP_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)
ADMIN_TOKEN = "browser-test-admin-token"
STUB = "<script>window.smsr=window.smsr||function(){(smsr.q=smsr.q||[]).push(arguments)}</script>"
WAIT_SECONDS = 10.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(
    check: Callable[[], Any],
    what: str,
    timeout: float = WAIT_SECONDS,
    pause: Callable[[], None] = lambda: time.sleep(0.05),
) -> Any:
    """Poll `check` until it returns something truthy; fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        pause()


@dataclass
class Collector:
    url: str
    process: subprocess.Popen[bytes]
    log: Path | None = None  # what it printed

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def api(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        request = urllib.request.Request(
            self.url + path,
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read())


def start_collector(directory: Path, **env: str) -> Collector:
    """`python -m collector serve` on a free port with a fresh SQLite file in `directory`.

    It inherits this process's environment minus our SMSR_ and VONAGE_ variables, and gets the
    admin token, its own URL as `SMSR_PUBLIC_URL`, and `env`.
    """
    port = free_port()
    db = directory / "collector.db"
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("SMSR_", "VONAGE_"))}
    environ.update(SMSR_ADMIN_TOKEN=ADMIN_TOKEN, SMSR_PUBLIC_URL=f"http://127.0.0.1:{port}")
    # Every browser test opts in from 127.0.0.1: the per-IP opt-in limit (a defence against
    # fake sign-ups, tested on its own) would otherwise be shared by the whole session.
    environ.update(SMSR_OPTIN_LIMIT_IP="0")
    environ.update(env)
    args = ["serve", "--host", "127.0.0.1", "--port", str(port), "--db", str(db)]
    log = directory / "collector.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "collector", *args],
            env=environ,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=directory,
        )
    server = Collector(f"http://127.0.0.1:{port}", process, log)

    def healthy() -> bool:
        if process.poll() is not None:
            pytest.fail(f"the collector exited: {log.read_text()}")
        try:
            with urllib.request.urlopen(server.url + "/healthz", timeout=0.5) as response:
                return response.status == 200
        except OSError:
            return False

    wait_until(healthy, "the collector to start", timeout=20)
    return server


def vonage_env(fake: FakeVonage, ca_bundle: Path) -> dict[str, str]:
    """The environment that points a collector process at the fake Vonage and trusts it."""
    overrides = fake.settings_overrides()
    env = {
        f.metadata["env"]: str(overrides[f.name]) for f in fields(Settings) if f.name in overrides
    }
    return {**env, "REQUESTS_CA_BUNDLE": str(ca_bundle)}


@dataclass
class SiteServer:
    """A shop on another origin: serves the pages a test registers, and a slow copy of s.js."""

    url: str
    snippet_url: str
    pages: dict[str, str] = field(default_factory=dict)
    count: int = 0

    def page(
        self,
        key: str,
        body: str = "",
        *,
        title: str = "Test page",
        attrs: str = "",
        path: str | None = None,
        head: str = "",
        script: str | None = None,
    ) -> str:
        """Register a page with the stub and script tag for site `key`; return its URL.

        `script` replaces the script tag's src (the collector's /s.js by default).
        """
        self.count += 1
        path = path or f"/p{self.count}"
        src = script or self.snippet_url
        self.pages[path] = (
            f"<!doctype html><html><head><meta charset=utf-8><title>{title}</title>{STUB}{head}"
            f'<script async src="{src}" data-site="{key}" {attrs}></script></head>'
            f"<body>{body}</body></html>"
        )
        return self.url + path


@dataclass
class Site:
    """A site registered with the collector, and a way to read back its events."""

    id: int
    key: str
    collector: Collector
    pause: Callable[[], None] = lambda: time.sleep(0.05)

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        found = self.collector.api("GET", f"/api/v1/events?site_id={self.id}&per_page=500")
        items = found["items"]
        return [e for e in items if name is None or e["name"] == name]

    def wait_for(self, *names: str, count: int = 1) -> list[dict[str, Any]]:
        """Wait until each of `names` was stored at least `count` times; return all events."""

        def arrived() -> list[dict[str, Any]] | None:
            events = self.events()
            stored = [e["name"] for e in events]
            return events if all(stored.count(n) >= count for n in names) else None

        return wait_until(arrived, f"{', '.join(names)} stored", pause=self.pause)


class Wire:
    """Every beacon body the snippet posted to the collector, parsed, in the order sent.

    `bodies` and `raw` are as sent, compact (event codes, the opt-in form's fields as a list);
    `events()` reads them as the collector does, through `collector.events.expand_event`.
    """

    def __init__(self, collector: Collector, context: BrowserContext) -> None:
        self.endpoint = collector.url + "/e"
        self.context = context
        self.bodies: list[dict[str, Any]] = []
        self.raw: list[str] = []

    def observe(self, request: Request) -> None:
        if request.url == self.endpoint and request.method == "POST":
            data = request.post_data or ""
            self.raw.append(data)
            self.bodies.append(json.loads(data))

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        found = []
        for sent in (e for b in self.bodies for e in b["e"]):
            event = json.loads(json.dumps(sent))  # a copy, expanded as the collector reads it
            expand_event(event)
            if name is None or event["n"] == name:
                found.append(event)
        return found

    def pause(self) -> None:
        """Let Playwright deliver request events: the sync API does so only inside its calls."""
        pages = self.context.pages
        if pages:
            pages[0].wait_for_timeout(50)
        else:
            self.context.cookies()
            time.sleep(0.05)

    def wait_until(self, check: Callable[[], Any], what: str) -> Any:
        return wait_until(check, what, pause=self.pause)

    def wait_for(self, name: str, count: int = 1) -> list[dict[str, Any]]:
        return self.wait_until(
            lambda: len(self.events(name)) >= count and self.events(name),
            f"{count} x {name} on the wire",
        )
