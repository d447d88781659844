"""Fixtures for the fakes of external services; conftest loads them with `pytest_plugins`.

- `fake_vonage_server` (session): the fake Vonage SMS API over TLS, started once.
- `fake_vonage`: that fake, reset for this test, and trusted: `REQUESTS_CA_BUNDLE` points at a
  bundle holding its certificate (the variable beats `Session.verify` in requests).
- `vonage_settings`: the `settings` fixture pointed at the fake (provider `vonage`).
- `vonage_sender`: a `VonageSender` on those settings (timeout 2 s), closed after the test.
- `closed_port`: a local port nothing listens on, for "connection refused".
"""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from collector.settings import Settings
from collector.vonage import VonageSender

from .vonage_server import FakeVonage, FakeVonageServer


@pytest.fixture(scope="session")
def fake_vonage_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeVonageServer]:
    server = FakeVonageServer(FakeVonage(), tmp_path_factory.mktemp("fake-vonage"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def fake_vonage(
    fake_vonage_server: FakeVonageServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FakeVonage]:
    """The fake, with no recorded requests, accepting every text, and trusted by requests.

    Request it before `live_server` so the server process inherits `REQUESTS_CA_BUNDLE`.
    """
    fake = fake_vonage_server.fake
    fake.reset()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(fake_vonage_server.ca_bundle))
    yield fake
    fake.reset()


@pytest.fixture
def vonage_settings(settings: Settings, fake_vonage: FakeVonage) -> Settings:
    return dataclasses.replace(settings, **fake_vonage.settings_overrides())


@pytest_asyncio.fixture
async def vonage_sender(vonage_settings: Settings) -> AsyncIterator[VonageSender]:
    sender = VonageSender(vonage_settings, max_workers=4, timeout=2)
    yield sender
    await sender.close()


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 that was free a moment ago, so connecting to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
