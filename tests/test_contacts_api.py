"""`/api/v1/contacts`: server-side opt-in, lookup by phone, read with all we hold, erase."""

from __future__ import annotations

import sqlite3

import pytest
from starlette.testclient import TestClient

from collector.settings import Settings

from optin_support import PHONE, contact_by_phone, send_optin, settled, text_in
from support import beacon, event, post


def create(client: TestClient, admin: dict, **body: object):
    return client.post("/api/v1/contacts", json=body, headers=admin)


def proof(site: dict, **extra: object) -> dict:
    return {
        "site_id": site["id"],
        "phone": "(415) 555-2671",
        "first_name": "Grace",
        "consent_text": "I agree to receive texts (checkout checkbox)",
        "source": "checkout",
        "ip": "198.51.100.7",
        **extra,
    }


def test_create_is_a_server_side_opt_in_that_starts_active(
    client: TestClient, admin: dict, site: dict
) -> None:
    response = create(client, admin, **proof(site, consented_at="2026-01-02T03:04:05Z"))
    assert response.status_code == 201, response.text
    contact = response.json()
    assert contact["phone"] == PHONE and contact["status"] == "active"
    assert contact["site_id"] == site["id"] and contact["first_name"] == "Grace"
    detail = client.get(f"/api/v1/contacts/{contact['id']}", headers=admin).json()
    [record] = detail["consents"]
    assert record["source"] == "api" and record["source_detail"] == "checkout"
    assert record["consent_text"] == "I agree to receive texts (checkout checkbox)"
    assert record["ip"] == "198.51.100.7"
    assert record["at"] == "2026-01-02T03:04:05.000Z"
    assert settled(client, admin) == []  # no confirmation text for proof given server-side


def test_a_second_create_adds_proof_to_the_same_contact(
    client: TestClient, admin: dict, site: dict
) -> None:
    first = create(client, admin, **proof(site)).json()
    again = create(client, admin, **proof(site, consent_text="Renewed at the till"))
    assert again.status_code == 200 and again.json()["id"] == first["id"]
    detail = contact_by_phone(client, admin)
    assert detail is not None and len(detail["consents"]) == 2
    assert detail["consent_chain"]["valid"]


def test_a_pending_web_opt_in_becomes_active_with_server_proof(
    client: TestClient, admin: dict, site: dict
) -> None:
    send_optin(client, site)
    assert create(client, admin, **proof(site)).json()["status"] == "active"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"consent_text": None}, "consent_text"),
        ({"consent_text": "  "}, "consent_text"),
        ({"phone": "12"}, "phone"),
        ({"phone": "+44 7400 123456"}, "phone"),
        ({"phone": None}, "phone"),
        ({"site_id": 999}, "site_id"),
        ({"site_id": "1"}, "site_id"),
        ({"site_id": 2**70}, "site_id"),
        ({"site_id": -1}, "site_id"),
        ({"ip": "not-an-ip"}, "ip"),
        ({"consented_at": "yesterday"}, "consented_at"),
        ({"consented_at": "2999-01-01T00:00:00Z"}, "consented_at"),
        ({"first_name": 7}, "first_name"),
        ({"source": "x" * 101}, "source"),
        ({"status": "active"}, "status"),
    ],
)
def test_bad_input_is_a_clear_400_and_stores_nothing(
    client: TestClient, admin: dict, site: dict, settings: Settings, change: dict, field: str
) -> None:
    response = create(client, admin, **{**proof(site), **change})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["field"] == field
    with sqlite3.connect(settings.db) as conn:
        assert conn.execute("select count(*) from contacts").fetchone() == (0,)


def test_body_and_auth_errors(client: TestClient, admin: dict, site: dict) -> None:
    assert client.post("/api/v1/contacts", content=b"[", headers=admin).status_code == 400
    assert client.post("/api/v1/contacts", json=[], headers=admin).status_code == 400
    assert client.post("/api/v1/contacts", json=proof(site)).status_code == 401
    assert client.get("/api/v1/contacts").status_code == 401
    assert client.get("/api/v1/contacts/1").status_code == 401
    assert client.delete("/api/v1/contacts/1").status_code == 401
    assert client.get("/api/v1/contacts/abc", headers=admin).status_code == 400
    assert client.get("/api/v1/contacts/42", headers=admin).status_code == 404
    assert client.delete("/api/v1/contacts/42", headers=admin).status_code == 404


@pytest.mark.parametrize(
    "query", ["+14155552671", "14155552671", "+1 415 555 2671", "1 (415) 555-2671"]
)
def test_lookup_by_phone_with_or_without_plus_and_spaces(
    client: TestClient, admin: dict, site: dict, query: str
) -> None:
    create(client, admin, **proof(site))
    create(client, admin, **proof(site, phone="+14155552672"))
    found = client.get("/api/v1/contacts", params={"phone": query}, headers=admin).json()
    assert found["total"] == 1 and found["items"][0]["phone"] == PHONE
    assert found["page"] == 1


def test_list_filters_and_pages(client: TestClient, admin: dict, site: dict) -> None:
    create(client, admin, **proof(site))
    send_optin(client, site, phone="+14155552672")
    listed = client.get("/api/v1/contacts", params={"per_page": 1}, headers=admin).json()
    assert listed["total"] == 2 and len(listed["items"]) == 1
    pending = client.get("/api/v1/contacts", params={"status": "pending"}, headers=admin).json()
    assert [c["phone"] for c in pending["items"]] == ["+14155552672"]
    national = client.get(
        "/api/v1/contacts", params={"phone": "415 555 2672", "site_id": site["id"]}, headers=admin
    ).json()
    assert national["total"] == 1
    for bad in ({"status": "gone"}, {"phone": "call me"}, {"site_id": "x"}, {"page": "0"}):
        response = client.get("/api/v1/contacts", params=bad, headers=admin)
        assert response.status_code == 400, bad


def test_patch_first_name_and_opt_out(client: TestClient, admin: dict, site: dict) -> None:
    contact = create(client, admin, **proof(site)).json()
    url = f"/api/v1/contacts/{contact['id']}"
    assert client.patch(url, json={"first_name": "G."}, headers=admin).json()["first_name"] == "G."
    refused = client.patch(url, json={"status": "active"}, headers=admin)
    assert refused.status_code == 200  # unchanged status is fine
    assert client.patch(url, json={"status": "pending"}, headers=admin).status_code == 400
    assert client.patch(url, json={"phone": "+1"}, headers=admin).status_code == 400
    opted = client.patch(url, json={"status": "opted_out"}, headers=admin)
    assert opted.json()["status"] == "opted_out"
    detail = client.get(url, headers=admin).json()
    assert (detail["consents"][-1]["kind"], detail["consents"][-1]["source"]) == ("opt_out", "api")
    again = create(client, admin, **proof(site))
    assert again.status_code == 409 and again.json()["error"]["code"] == "opted_out"


def test_read_holds_consents_events_messages_inbound_and_visitors(
    client: TestClient, admin: dict, site: dict
) -> None:
    post(client, beacon(site, event(), vid="visitor-0001"))
    send_optin(client, site)
    text_in(client, "Y")
    text_in(client, "When does the sale end?")
    settled(client, admin)
    detail = contact_by_phone(client, admin)
    assert detail is not None
    assert [r["kind"] for r in detail["consents"]] == ["opt_in", "confirmation"]
    assert {e["name"] for e in detail["events"]} == {"page_view", "optin"}
    assert [m["kind"] for m in detail["messages"]] == ["confirmation"]
    assert {i["body"] for i in detail["inbound"]} == {"Y", "When does the sale end?"}
    assert [v["visitor_id"] for v in detail["visitors"]] == ["visitor-0001"]
    assert detail["consent_chain"]["valid"] and "sha256" in detail["consent_chain"]["algorithm"]


def test_delete_erases_and_keeps_only_a_keyed_hash(
    client: TestClient, admin: dict, site: dict, settings: Settings
) -> None:
    post(client, beacon(site, event(), vid="visitor-0001"))
    send_optin(client, site)
    text_in(client, "hello?")
    settled(client, admin)
    contact = contact_by_phone(client, admin)
    assert contact is not None
    assert client.delete(f"/api/v1/contacts/{contact['id']}", headers=admin).status_code == 204
    assert client.get(f"/api/v1/contacts/{contact['id']}", headers=admin).status_code == 404
    with sqlite3.connect(settings.db) as conn:
        for table in ("contacts", "consents", "events", "messages", "inbound_messages"):
            assert conn.execute(f"select count(*) from {table}").fetchone() == (0,), table
        assert conn.execute("select count(*) from contact_visitors").fetchone() == (0,)
        [(digest, reason)] = conn.execute("select phone_hash, reason from suppressions")
        dump = "\n".join(conn.iterdump())
    assert reason == "erased" and len(digest) == 64
    assert "4155552671" not in dump  # the number is nowhere in the file's tables
    again = create(client, admin, **proof(site))
    assert again.status_code == 409 and again.json()["error"]["code"] == "suppressed"


def test_openapi_describes_contacts_and_messages(client: TestClient) -> None:
    paths = client.get("/api/v1/openapi.json").json()["paths"]
    assert {"/contacts", "/contacts/{id}", "/messages", "/messages/{id}"} <= set(paths)
    assert set(paths["/contacts"]) == {"get", "post"}
    assert set(paths["/contacts/{id}"]) >= {"get", "patch", "delete"}


def test_deleting_a_site_takes_its_contacts_and_their_ledger(
    client: TestClient, admin: dict, site: dict, settings: Settings
) -> None:
    send_optin(client, site)
    text_in(client, "yes")
    settled(client, admin)
    assert client.delete(f"/api/v1/sites/{site['id']}", headers=admin).status_code == 204
    with sqlite3.connect(settings.db) as conn:
        for table in ("contacts", "consents", "messages", "inbound_messages", "contact_visitors"):
            assert conn.execute(f"select count(*) from {table}").fetchone() == (0,), table
