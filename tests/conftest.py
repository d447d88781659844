"""Shared fixtures: real SQLite files, the real app, and a real server process where it matters."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from collector.app import create_app
from collector.settings import Settings

from support import ADMIN_TOKEN, DESKTOP_UA, ORIGIN, LiveServer, free_port

pytest_plugins = ["fakes.fixtures"]


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
