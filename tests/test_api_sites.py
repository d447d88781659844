"""`/api/v1/sites` and the API's skeleton: auth, errors, pagination, OpenAPI."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from support import ORIGIN


def test_api_requires_the_admin_token(client: TestClient) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"}):
        response = client.get("/api/v1/sites", headers=headers)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "unauthorized"
        assert response.headers["www-authenticate"] == "Bearer"


def test_no_token_configured_means_no_token_access(settings, tmp_path) -> None:
    from dataclasses import replace

    from collector.app import create_app

    with TestClient(create_app(replace(settings, admin_token=None))) as client:
        response = client.get("/api/v1/sites", headers={"Authorization": "Bearer "})
        assert response.status_code == 401
        assert "SMSR_ADMIN_TOKEN" in response.json()["error"]["message"]


def test_create_site_with_contract_defaults(client: TestClient, admin: dict) -> None:
    response = client.post(
        "/api/v1/sites",
        json={"name": "Shop", "origins": ["https://Shop.example.com/", "http://localhost:3000"]},
        headers=admin,
    )
    assert response.status_code == 201
    site = response.json()
    assert site["origins"] == ["http://localhost:3000", "https://shop.example.com"]
    assert site["country"] == "US"
    assert site["timezone"] == "America/New_York"
    assert site["allowed_countries"] == ["US"]
    assert site["send_window"] == {"start": "09:00", "end": "20:00"}
    assert site["daily_cap"] == 1
    assert site["double_opt_in"] is True
    assert site["attribution_click_seconds"] == 432000
    assert site["attribution_delivery_seconds"] == 43200
    assert site["pricing_paths"] == []
    assert "Shop" in site["help_text"] and "STOP" in site["help_text"]
    assert len(site["key"]) >= 16 and site["secret"].startswith("ss_")
    assert client.get(f"/api/v1/sites/{site['id']}", headers=admin).json() == site


def test_country_sets_timezone_and_allowed_countries(client: TestClient, admin: dict) -> None:
    site = client.post(
        "/api/v1/sites", json={"name": "FR", "origins": [ORIGIN], "country": "fr"}, headers=admin
    ).json()
    assert site["country"] == "FR"
    assert site["timezone"] == "Europe/Paris"
    assert site["allowed_countries"] == ["FR"]


def test_partial_update(client: TestClient, admin: dict, site: dict) -> None:
    response = client.patch(
        f"/api/v1/sites/{site['id']}",
        json={"send_window": {"start": "00:00", "end": "24:00"}, "pricing_paths": ["/pricing*"]},
        headers=admin,
    )
    assert response.status_code == 200
    updated = response.json()
    assert updated["send_window"] == {"start": "00:00", "end": "24:00"}
    assert updated["pricing_paths"] == ["/pricing*"]
    assert updated["name"] == site["name"] and updated["key"] == site["key"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"origins": [ORIGIN]}, "name"),
        ({"name": "x"}, "origins"),
        ({"name": "x", "origins": ["ftp://x"]}, "origins"),
        ({"name": "x", "origins": ["https://x.com/path"]}, "origins"),
        ({"name": "x", "origins": "https://x.com"}, "origins"),
        ({"name": "x", "origins": [ORIGIN], "country": "ZZ"}, "country"),
        ({"name": "x", "origins": [ORIGIN], "timezone": "Mars/Olympus"}, "timezone"),
        (
            {"name": "x", "origins": [ORIGIN], "send_window": {"start": "9", "end": "20:00"}},
            "send_window",
        ),
        ({"name": "x", "origins": [ORIGIN], "daily_cap": -1}, "daily_cap"),
        ({"name": "x", "origins": [ORIGIN], "daily_cap": True}, "daily_cap"),
        ({"name": "x", "origins": [ORIGIN], "pricing_paths": ["pricing"]}, "pricing_paths"),
        ({"name": "x", "origins": [ORIGIN], "double_opt_in": "yes"}, "double_opt_in"),
        (
            {"name": "x", "origins": [ORIGIN], "sender": "ACME", "double_opt_in": True},
            "double_opt_in",
        ),
        ({"name": "x", "origins": [ORIGIN], "key": "mine"}, "key"),
        ({"name": "x", "origins": [ORIGIN], "colour": "red"}, "colour"),
    ],
)
def test_bad_site_fields_are_400_naming_the_field(
    client: TestClient, admin: dict, body: dict, field: str
) -> None:
    response = client.post("/api/v1/sites", json=body, headers=admin)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["field"] == field


def test_alphanumeric_sender_works_without_double_opt_in(client: TestClient, admin: dict) -> None:
    body = {"name": "x", "origins": [ORIGIN], "sender": "ACME", "double_opt_in": False}
    assert client.post("/api/v1/sites", json=body, headers=admin).status_code == 201


@pytest.mark.parametrize("body", [b"{", b"[]", b"\xff\xfe"])
def test_malformed_json_is_400(client: TestClient, admin: dict, body: bytes) -> None:
    response = client.post("/api/v1/sites", content=body, headers=admin)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed"


def test_pagination(client: TestClient, admin: dict) -> None:
    for n in range(5):
        client.post("/api/v1/sites", json={"name": f"S{n}", "origins": [ORIGIN]}, headers=admin)
    page = client.get("/api/v1/sites?page=2&per_page=2", headers=admin).json()
    assert [s["name"] for s in page["items"]] == ["S2", "S3"]
    assert page["page"] == 2 and page["total"] == 5
    for query in ("page=0", "per_page=501", "page=x", "per_page=-1"):
        response = client.get(f"/api/v1/sites?{query}", headers=admin)
        assert response.status_code == 400, query


def test_read_update_delete_unknown_ids(client: TestClient, admin: dict, site: dict) -> None:
    assert client.get("/api/v1/sites/999", headers=admin).status_code == 404
    assert client.patch("/api/v1/sites/999", json={}, headers=admin).status_code == 404
    assert client.get("/api/v1/sites/abc", headers=admin).status_code == 400
    assert client.delete(f"/api/v1/sites/{site['id']}", headers=admin).status_code == 204
    assert client.delete(f"/api/v1/sites/{site['id']}", headers=admin).status_code == 404


def test_unknown_route_and_method_are_json_errors(client: TestClient, admin: dict) -> None:
    assert client.get("/api/v1/nothing", headers=admin).json()["error"]["code"] == "not_found"
    response = client.put("/api/v1/sites", headers=admin)
    assert response.status_code == 405


def test_events_are_readable_with_filters(client: TestClient, admin: dict, site: dict) -> None:
    from support import beacon, event, post

    post(client, beacon(site, event("page_view"), event("checkout_start")))
    post(client, beacon(site, event("page_view"), vid="visitor-0002"))
    listing = client.get(f"/api/v1/events?site_id={site['id']}", headers=admin).json()
    assert listing["total"] == 3
    first = listing["items"][0]
    assert set(first) >= {"id", "site_id", "name", "visitor_id", "contact_id", "url", "props", "at"}
    assert first["at"].endswith("Z")
    by_name = client.get("/api/v1/events?name=checkout_start", headers=admin).json()
    assert [e["name"] for e in by_name["items"]] == ["checkout_start"]
    by_visitor = client.get("/api/v1/events?visitor_id=visitor-0002", headers=admin).json()
    assert by_visitor["total"] == 1
    one = client.get(f"/api/v1/events/{first['id']}", headers=admin)
    assert one.json() == first
    assert client.get("/api/v1/events/424242", headers=admin).status_code == 404
    assert client.get("/api/v1/events?site_id=x", headers=admin).status_code == 400


def test_openapi_describes_the_resources(client: TestClient) -> None:
    spec = client.get("/api/v1/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    assert {"/sites", "/sites/{id}", "/events", "/events/{id}"} <= set(spec["paths"])
