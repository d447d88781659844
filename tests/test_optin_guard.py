"""Defences against SMS pumping: a flood of fake opt-ins through the real `POST /e` causes at
most a handful of texts."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from collector.app import create_app
from collector.errors import TooManyRequests
from collector.optin_guard import HourlyLimiter, OptinGuard
from collector.settings import Settings

from optin_support import optin_event, send_optin, settled
from support import ADMIN_TOKEN, DESKTOP_UA, ORIGIN, beacon, post

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def fake_number(n: int) -> str:
    return f"+1415555{n:04d}"


@pytest.fixture
def flood_client(settings: Settings, request: pytest.FixtureRequest) -> Iterator[TestClient]:
    """The app with the event rate limits off, so only the opt-in defences stand in the way."""
    overrides = {"rate_limit_ip": 0, "rate_limit_site": 0, "trust_proxy": True}
    overrides.update(getattr(request, "param", {}))
    with TestClient(
        create_app(dataclasses.replace(settings, **overrides)), headers={"User-Agent": DESKTOP_UA}
    ) as client:
        yield client


def make_site(client: TestClient, **fields: object) -> dict:
    body = {"name": "Shop", "origins": [ORIGIN], **fields}
    response = client.post("/api/v1/sites", json=body, headers=ADMIN)
    assert response.status_code == 201, response.text
    return response.json()


def count(client: TestClient, path: str) -> int:
    return int(client.get(path, params={"per_page": 1}, headers=ADMIN).json()["total"])


def test_ten_thousand_fake_optins_from_one_ip_send_a_handful_of_texts(
    flood_client: TestClient, settings: Settings
) -> None:
    site = make_site(flood_client)
    statuses: Counter[int] = Counter()
    numbers = iter(range(10_000))
    # first in small batches, as a careful attacker would, then as fast as beacons allow
    batches = [5] * 20 + [50] * 198
    assert sum(batches) == 10_000
    for size in batches:
        events = [optin_event(fake_number(next(numbers))) for _ in range(size)]
        response = post(flood_client, beacon(site, *events))
        statuses[response.status_code] += 1
    assert set(statuses) == {202, 429}
    assert statuses[202] == settings.optin_limit_ip // 5
    texts = settled(flood_client, ADMIN)
    assert len(texts) <= settings.optin_limit_ip
    assert {t["kind"] for t in texts} == {"confirmation"}
    assert count(flood_client, "/api/v1/contacts") <= settings.optin_limit_ip
    refused = post(flood_client, beacon(site, optin_event(fake_number(1))))
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "optin_rate_limited"
    assert int(refused.headers["Retry-After"]) >= 1


@pytest.mark.parametrize(
    "flood_client", [{"optin_limit_site": 40, "confirmations_per_hour": 5}], indirect=True
)
def test_a_flood_from_many_ips_meets_the_site_limit_and_the_global_cap(
    flood_client: TestClient,
) -> None:
    site = make_site(flood_client)
    statuses: Counter[int] = Counter()
    for n in range(100):
        response = send_optin(
            flood_client,
            site,
            phone=fake_number(n),
            visitor=f"visitor-{n:04d}",
            headers={"X-Forwarded-For": f"198.51.100.{n}"},
        )
        statuses[response.status_code] += 1
    assert statuses == {202: 40, 429: 60}
    assert count(flood_client, "/api/v1/contacts") == 40  # recorded, pending, without a text
    assert len(settled(flood_client, ADMIN)) == 5


def test_no_second_confirmation_to_a_number_within_a_day(flood_client: TestClient) -> None:
    first = make_site(flood_client)
    second = make_site(flood_client, name="Other")
    send_optin(flood_client, first)
    send_optin(flood_client, second, visitor="visitor-0002")
    send_optin(flood_client, first, visitor="visitor-0003")
    assert len(settled(flood_client, ADMIN)) == 1
    assert count(flood_client, "/api/v1/contacts") == 2


def test_hourly_buckets_refill_over_the_hour() -> None:
    now = [0.0]
    guard = OptinGuard(per_ip_hour=3, per_site_hour=100, clock=lambda: now[0])
    for _ in range(3):
        guard.admit("site", "203.0.113.1", 1)
    with pytest.raises(TooManyRequests) as refused:
        guard.admit("site", "203.0.113.1", 1)
    assert refused.value.retry_after == 1200  # one opt-in comes back every 20 minutes
    guard.admit("site", "203.0.113.2", 1)  # another address has its own allowance
    now[0] = 1200.0
    guard.admit("site", "203.0.113.1", 1)
    with pytest.raises(TooManyRequests):
        guard.admit("site", "203.0.113.1", 4)  # more than an hour's allowance never passes


def test_a_limit_of_zero_means_no_limit() -> None:
    limiter = HourlyLimiter(0)
    assert limiter.take("x", 1_000_000) == 0.0
