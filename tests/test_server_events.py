"""`POST /api/v1/events`: a site's backend records events with the site's secret."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

import pytest
from starlette.testclient import TestClient

from collector.settings import Settings

PHONE = "+14155552671"


def secret(site: dict) -> dict[str, str]:
    return {"Authorization": f"Bearer {site['secret']}"}


def test_a_purchase_by_visitor_id_is_stored_like_a_beacon(client: TestClient, site: dict) -> None:
    body = {
        "name": "purchase",
        "visitor_id": "visitor-0001",
        "props": {"order_id": "A-1", "value": 48, "currency": "usd", "card": "x"},
        "id": "order-A-1-paid",
    }
    response = client.post("/api/v1/events", json=body, headers=secret(site))
    assert response.status_code == 201, response.text
    event = response.json()
    assert (event["name"], event["visitor_id"], event["site_id"]) == (
        "purchase",
        "visitor-0001",
        site["id"],
    )
    assert event["props"] == {"order_id": "A-1", "value": 48, "currency": "USD"}
    again = client.post("/api/v1/events", json=body, headers=secret(site))
    assert again.status_code == 200 and again.json()["id"] == event["id"]  # a retry is one event


def test_by_phone_the_event_belongs_to_the_contact(
    client: TestClient, site: dict, admin: dict, settings: Settings
) -> None:
    created = client.post(
        "/api/v1/contacts",
        json={"site_id": site["id"], "phone": PHONE, "consent_text": "Yes", "source": "checkout"},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    at = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    response = client.post(
        "/api/v1/events",
        json={
            "name": "subscription_renewed",
            "phone": "(415) 555-2671",
            "props": {"plan": "pro"},
            "at": at,
        },
        headers=secret(site),
    )
    assert response.status_code == 201, response.text
    assert response.json()["contact_id"] == created.json()["id"]
    conn = sqlite3.connect(settings.db)
    assert conn.execute(
        "select count(*) from events where name = 'subscription_renewed'"
    ).fetchone() == (1,)


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"name": "purchase"}, 400, "visitor_id"),
        ({"name": "Bad Name", "visitor_id": "visitor-0001"}, 400, "name"),
        ({"name": "sms_click", "visitor_id": "visitor-0001"}, 400, "name"),
        ({"name": "optin", "visitor_id": "visitor-0001"}, 400, "name"),
        ({"name": "purchase", "visitor_id": "x"}, 400, "visitor_id"),
        ({"name": "purchase", "phone": "not a phone"}, 400, "phone"),
        ({"name": "purchase", "phone": "+14155550199"}, 404, "phone"),
        (
            {"name": "purchase", "visitor_id": "visitor-0001", "props": {"value": "lots"}},
            400,
            "props.value",
        ),
        ({"name": "purchase", "visitor_id": "visitor-0001", "at": "yesterday"}, 400, "at"),
        (
            {"name": "purchase", "visitor_id": "visitor-0001", "at": "2001-01-01T00:00:00Z"},
            400,
            "at",
        ),
        ({"name": "purchase", "visitor_id": "visitor-0001", "id": "no!"}, 400, "id"),
    ],
)
def test_bad_events_are_4xx_naming_the_field(
    client: TestClient, site: dict, body: dict, status: int, field: str
) -> None:
    response = client.post("/api/v1/events", json=body, headers=secret(site))
    assert response.status_code == status, response.text
    assert response.json()["error"]["field"] == field


def test_only_the_sites_secret_is_accepted(client: TestClient, site: dict, admin: dict) -> None:
    body = {"name": "purchase", "visitor_id": "visitor-0001"}
    for headers in (
        {},
        admin,
        {"Authorization": "Bearer ss_wrong"},
        {"Authorization": site["key"]},
    ):
        response = client.post("/api/v1/events", json=body, headers=headers)
        assert response.status_code == 401
        assert "secret" in response.json()["error"]["message"]
