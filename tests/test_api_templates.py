"""`/api/v1/templates` and its preview through the real app and a real SQLite file."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from automation_support import add_automation, add_template
from support import ORIGIN

BODY = "Hi {{ contact.first_name }}, your {{ site.name }} cart is waiting: {{ link }}"


def test_create_answers_the_sample_render_and_its_cost(
    client: TestClient, admin: dict, site: dict
) -> None:
    response = client.post(
        "/api/v1/templates",
        json={"site_id": site["id"], "name": "Cart", "body": BODY},
        headers=admin,
    )
    assert response.status_code == 201
    template = response.json()
    assert template["site_id"] == site["id"]
    assert template["name"] == "Cart"
    assert template["body"] == BODY
    # The site's own name, a link as long as real ones, and the opt-out of a first text.
    assert template["sample"] == (
        "Hi Alex, your Shop cart is waiting: https://sms.example.com/r/Ab3dE9xQk2Z "
        "Reply STOP to opt out"
    )
    assert template["encoding"] == "GSM-7"
    assert template["characters"] == len(template["sample"])
    assert template["segments"] == 1
    assert any("Reply STOP" in w for w in template["warnings"])
    assert client.get(f"/api/v1/templates/{template['id']}", headers=admin).json() == template


def test_a_template_with_stop_wording_gets_nothing_appended(
    client: TestClient, admin: dict, site: dict
) -> None:
    template = add_template(client, admin, site, body="Back soon? {{ link }} Text STOP to end")
    assert template["sample"].endswith("Text STOP to end")
    assert template["warnings"] == []


def test_syntax_errors_name_their_line(client: TestClient, admin: dict, site: dict) -> None:
    response = client.post(
        "/api/v1/templates",
        json={"site_id": site["id"], "name": "Bad", "body": "Hi\nthere {{ contact.first_name"},
        headers=admin,
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["field"] == "body"
    assert "line 2" in error["message"]


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"name": "x", "body": "Hi"}, "site_id", "required"),
        ({"site_id": 1, "body": "Hi"}, "name", "required"),
        ({"site_id": 1, "name": "x"}, "body", "required"),
        ({"site_id": 1, "name": "x", "body": "{{ contcat.first_name }}"}, "body", "contcat"),
        ({"site_id": 1, "name": "x", "body": "{{ contact.phone }}"}, "body", "contact.phone"),
        ({"site_id": 1, "name": "x", "body": ""}, "body", "empty"),
        ({"site_id": 1, "name": "x", "body": 12}, "body", "string"),
        ({"site_id": 1, "name": "", "body": "Hi"}, "name", "non-empty"),
        ({"site_id": "1", "name": "x", "body": "Hi"}, "site_id", "whole number"),
        ({"site_id": 999, "name": "x", "body": "Hi"}, "site_id", "no site"),
        ({"site_id": 1, "name": "x", "body": "Hi", "colour": "red"}, "colour", "unknown"),
        ({"site_id": 1, "name": "x", "body": "Hi", "segments": 1}, "segments", "read-only"),
        ({"site_id": 1, "name": "x", "body": "{{ ''.__class__ }}"}, "body", "class"),
    ],
)
def test_bad_templates_are_refused_with_the_field(
    client: TestClient, admin: dict, site: dict, body: dict[str, Any], field: str, words: str
) -> None:
    response = client.post("/api/v1/templates", json=body, headers=admin)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["field"] == field
    assert words in error["message"]


def test_sandbox_refuses_unsafe_access_at_save(client: TestClient, admin: dict, site: dict) -> None:
    response = client.post(
        "/api/v1/templates",
        json={"site_id": site["id"], "name": "x", "body": "{{ cart.items.__class__.__mro__ }}"},
        headers=admin,
    )
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "body"


def test_patch_is_partial_and_rechecks_the_body(
    client: TestClient, admin: dict, site: dict
) -> None:
    template = add_template(client, admin, site, body=BODY)
    url = f"/api/v1/templates/{template['id']}"
    renamed = client.patch(url, json={"name": "Renamed"}, headers=admin).json()
    assert (renamed["name"], renamed["body"]) == ("Renamed", BODY)
    bad = client.patch(url, json={"body": "{% if %}"}, headers=admin)
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "body"
    assert client.get(url, headers=admin).json()["body"] == BODY
    moved = client.patch(url, json={"site_id": site["id"] + 1}, headers=admin)
    assert moved.status_code == 400 and moved.json()["error"]["field"] == "site_id"
    same = client.patch(url, json={"site_id": site["id"], "body": "Hi"}, headers=admin)
    assert same.status_code == 200 and same.json()["sample"] == "Hi Reply STOP to opt out"


def test_list_is_paginated_and_filters_by_site(client: TestClient, admin: dict, site: dict) -> None:
    other = client.post(
        "/api/v1/sites", json={"name": "Other", "origins": [ORIGIN]}, headers=admin
    ).json()
    for n in range(3):
        add_template(client, admin, site, name=f"t{n}")
    add_template(client, admin, other, name="theirs")
    page = client.get("/api/v1/templates?per_page=2&page=2", headers=admin).json()
    assert (page["page"], page["total"], len(page["items"])) == (2, 4, 2)
    mine = client.get(f"/api/v1/templates?site_id={site['id']}", headers=admin).json()
    assert [t["name"] for t in mine["items"]] == ["t0", "t1", "t2"]
    theirs = client.get(f"/api/v1/templates?site_id={other['id']}", headers=admin).json()
    assert theirs["items"][0]["sample"].startswith("Hi https://")


def test_delete_and_the_409_while_an_automation_uses_it(
    client: TestClient, admin: dict, site: dict
) -> None:
    template = add_template(client, admin, site)
    spare = add_template(client, admin, site, name="spare")
    automation = add_automation(client, admin, site, template)
    url = f"/api/v1/templates/{template['id']}"
    response = client.delete(url, headers=admin)
    assert response.status_code == 409
    assert f"automation(s) {automation['id']}" in response.json()["error"]["message"]
    client.patch(
        f"/api/v1/automations/{automation['id']}", json={"template_id": spare["id"]}, headers=admin
    )
    assert client.delete(url, headers=admin).status_code == 204
    assert client.get(url, headers=admin).status_code == 404
    assert client.delete(url, headers=admin).status_code == 404


def test_unknown_ids_and_bad_ids(client: TestClient, admin: dict) -> None:
    assert client.get("/api/v1/templates/42", headers=admin).status_code == 404
    assert client.patch("/api/v1/templates/42", json={}, headers=admin).status_code == 404
    assert client.get("/api/v1/templates/abc", headers=admin).status_code == 400
    assert client.get("/api/v1/templates?site_id=x", headers=admin).status_code == 400


def test_templates_need_the_admin_token(client: TestClient, site: dict) -> None:
    assert client.get("/api/v1/templates").status_code == 401
    assert client.post("/api/v1/templates/preview", json={"body": "Hi"}).status_code == 401


def test_preview_renders_with_the_sites_name(client: TestClient, admin: dict, site: dict) -> None:
    response = client.post(
        "/api/v1/templates/preview",
        json={
            "body": "{{ site.name }}: {{ cart.value | money(cart.currency) }}",
            "site_id": site["id"],
        },
        headers=admin,
    )
    assert response.status_code == 200
    assert response.json() == {
        "text": "Shop: $48.00 Reply STOP to opt out",
        "encoding": "GSM-7",
        "characters": 34,
        "segments": 1,
        "warnings": [
            "a contact's first text in 30 days gets 'Reply STOP to opt out' appended; "
            "write STOP wording into the template to choose it yourself"
        ],
        "opt_out_added": True,
    }


def test_preview_counts_ucs2_and_segments(client: TestClient, admin: dict) -> None:
    answer = client.post(
        "/api/v1/templates/preview", json={"body": "Hi 🙂 " + "x" * 120}, headers=admin
    ).json()
    assert answer["encoding"] == "UCS-2"
    assert answer["segments"] == 3
    assert any("3 segments" in w for w in answer["warnings"])
    assert any("UCS-2" in w for w in answer["warnings"])


def test_preview_uses_the_public_url_for_link_length(settings, admin: dict) -> None:
    from dataclasses import replace

    from collector.app import create_app

    app = create_app(replace(settings, public_url="https://t.example.org/"))
    with TestClient(app) as client:
        answer = client.post(
            "/api/v1/templates/preview", json={"body": "Go {{ link }} STOP=end"}, headers=admin
        ).json()
    assert answer["text"] == "Go https://t.example.org/r/Ab3dE9xQk2Z STOP=end"
    assert answer["opt_out_added"] is False


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "body"),
        ({"body": "{{ nope }}"}, "body"),
        ({"body": "Hi", "site_id": 999}, "site_id"),
        ({"body": "Hi", "site_id": True}, "site_id"),
        ({"body": "Hi", "site_id": 2**63}, "site_id"),
        ({"body": "Hi", "extra": 1}, "extra"),
    ],
)
def test_preview_refuses_bad_input(
    client: TestClient, admin: dict, body: dict[str, Any], field: str
) -> None:
    response = client.post("/api/v1/templates/preview", json=body, headers=admin)
    assert response.status_code == 400
    assert response.json()["error"]["field"] == field


def test_preview_refuses_non_json(client: TestClient, admin: dict) -> None:
    response = client.post("/api/v1/templates/preview", content=b"[1", headers=admin)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed"
