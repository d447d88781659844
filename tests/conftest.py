"""Shared fixtures: real SQLite files, the real app, and a real server process where it matters."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest
from starlette.testclient import TestClient

from collector.app import create_app
from collector.settings import Settings

pytest_plugins = ["fakes.fixtures"]

ADMIN_TOKEN = "test-admin-token"
ORIGIN = "https://shop.example.com"
DESKTOP_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No SMSR_ or VONAGE_ variable of the developer's shell leaks into a test, nor a .env."""
    for name in list(os.environ):
        if name.startswith(("SMSR_", "VONAGE_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.from_env(
        {}, env_file=None, db=str(tmp_path / "test.db"), admin_token=ADMIN_TOKEN
    )


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """The real app with its lifespan running, talking to a fresh SQLite file."""
    with TestClient(create_app(settings), headers={"User-Agent": DESKTOP_UA}) as test_client:
        yield test_client


@pytest.fixture
def admin() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def site(client: TestClient, admin: dict[str, str]) -> dict:
    """A site created through the API, allowed to post from ORIGIN."""
    response = client.post(
        "/api/v1/sites", json={"name": "Shop", "origins": [ORIGIN]}, headers=admin
    )
    assert response.status_code == 201, response.text
    return response.json()


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
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "collector", *args, "--db", str(self.db)],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=30,
        )


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    """A real uvicorn server on 127.0.0.1 with a fresh database file; stopped after the test."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SMSR_", "VONAGE_"))}
    env.update(SMSR_ADMIN_TOKEN=ADMIN_TOKEN, SMSR_PUBLIC_URL=f"http://127.0.0.1:{port}")
    server = LiveServer(f"http://127.0.0.1:{port}", tmp_path / "live.db", port, env)
    server.start()
    yield server
    server.stop()
