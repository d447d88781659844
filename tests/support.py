"""What the tests share besides fixtures: constants, a real server process, beacon builders.

A module of its own (not conftest) so that test files can import it unambiguously.
"""

from __future__ import annotations

import itertools
import json
import socket
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
from starlette.testclient import TestClient

from collector.settings import Settings

ADMIN_TOKEN = "test-admin-token"
ORIGIN = "https://shop.example.com"
DESKTOP_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    """`smsretarget serve` in its own process, as a user runs it."""

    url: str
    db: Path
    port: int
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    stderr: str = ""

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "collector",
                "serve",
                "--port",
                str(self.port),
                "--db",
                str(self.db),
            ],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    self.process.stderr.read().decode() if self.process.stderr else ""
                )
            try:
                if httpx2.get(f"{self.url}/healthz", timeout=0.5).status_code == 200:
                    return
            except httpx2.HTTPError:
                time.sleep(0.05)
        raise RuntimeError("server did not start")

    def stop(self) -> None:
        """SIGTERM, as a service manager stops it; keeps what it printed in `stderr`."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
        try:
            _, err = self.process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, err = self.process.communicate()
        self.stderr += err.decode() if err else ""

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        assert self.process is not None
        self.process.kill()
        self.stop()

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "collector", *args, "--db", str(self.db)],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=30,
        )


_ids = itertools.count()


def event(name: str = "page_view", **fields: Any) -> dict[str, Any]:
    body = {
        "i": f"evt{next(_ids):08d}",
        "n": name,
        "t": int(time.time() * 1000),
        "u": f"{ORIGIN}/products/tee",
        "ti": "Tee",
    }
    body.update(fields)
    return body


def beacon(site: dict[str, Any], *events: dict[str, Any], **envelope: Any) -> dict[str, Any]:
    body = {"v": 1, "k": site["key"], "vid": "visitor-0001", "sid": "session-0001"}
    body["e"] = list(events) or [event()]
    body.update(envelope)
    return body


def post(client: TestClient, body: Any, origin: str | None = ORIGIN, **headers: str) -> Any:
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    all_headers = {"Content-Type": "text/plain;charset=UTF-8", **headers}
    if origin:
        all_headers["Origin"] = origin
    return client.post("/e", content=data, headers=all_headers)


def stored(settings: Settings) -> list[dict[str, Any]]:
    conn = sqlite3.connect(settings.db)
    conn.row_factory = sqlite3.Row
    rows = [dict(r) for r in conn.execute("select * from events order by id")]
    conn.close()
    for row in rows:
        row["props"] = json.loads(row["props"])
    return rows
