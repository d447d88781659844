"""Web opt-ins through the real `POST /e`: contact, ledger record, visitor tie, double opt-in."""

from __future__ import annotations

import sqlite3

import pytest
from starlette.testclient import TestClient

from collector.settings import Settings

from optin_support import (
    LABEL,
    PHONE,
    contact_by_phone,
    messages,
    optin_event,
    send_optin,
    settled,
    text_in,
)
from support import DESKTOP_UA, ORIGIN, beacon, event, post


def test_web_optin_is_pending_with_a_ledger_record_and_one_confirmation_text(
    client: TestClient, admin: dict, site: dict
) -> None:
    assert send_optin(client, site).status_code == 202
    contact = contact_by_phone(client, admin)
    assert contact is not None
    assert contact["status"] == "pending" and contact["first_name"] == "Ada"
    [record] = contact["consents"]
    assert record["kind"] == "opt_in" and record["source"] == "web_form"
    assert record["consent_text"] == LABEL
    assert record["page_url"] == f"{ORIGIN}/signup"
    assert record["ip"] == "testclient" and record["user_agent"] == DESKTOP_UA
    assert record["visitor_id"] == "visitor-0001" and record["phone"] == PHONE
    assert contact["consent_chain"]["valid"] is True
    [text] = settled(client, admin)
    assert text["kind"] == "confirmation" and text["automation_id"] is None
    assert text["status"] == "sent" and text["to"] == PHONE
    assert text["body"].startswith("Shop: Reply YES to confirm")


def test_yes_confirms_and_only_then_is_the_contact_active(
    client: TestClient, admin: dict, site: dict
) -> None:
    send_optin(client, site)
    assert text_in(client, "Yes!").status_code == 200
    contact = contact_by_phone(client, admin)
    assert contact is not None and contact["status"] == "active"
    assert [r["kind"] for r in contact["consents"]] == ["opt_in", "confirmation"]
    assert contact["consents"][1]["keyword"] == "Yes!"
    assert contact["consents"][1]["source"] == "keyword"
    assert contact["consent_chain"]["valid"] and contact["consent_chain"]["records"] == 2
    # YES produces no text of its own: only the confirmation request went out
    assert [m["kind"] for m in settled(client, admin)] == ["confirmation"]


def test_without_double_opt_in_a_web_optin_is_active_at_once(
    client: TestClient, admin: dict, site: dict
) -> None:
    client.patch(f"/api/v1/sites/{site['id']}", json={"double_opt_in": False}, headers=admin)
    send_optin(client, site)
    contact = contact_by_phone(client, admin)
    assert contact is not None and contact["status"] == "active"
    assert settled(client, admin) == []


def test_earlier_and_later_events_of_the_browser_belong_to_the_contact(
    client: TestClient, admin: dict, site: dict
) -> None:
    post(client, beacon(site, event(), vid="visitor-0001"))
    post(client, beacon(site, event(), vid="someone-else"))
    send_optin(client, site)
    post(client, beacon(site, event("cart_update", p={"items": []}), vid="visitor-0001"))
    contact = contact_by_phone(client, admin)
    assert contact is not None
    names = sorted(e["name"] for e in contact["events"])
    assert names == ["cart_update", "optin", "page_view"]
    listed = client.get(
        "/api/v1/events", params={"contact_id": contact["id"]}, headers=admin
    ).json()
    assert listed["total"] == 3
    assert all(e["visitor_id"] == "visitor-0001" for e in listed["items"])


def test_one_contact_many_browsers(client: TestClient, admin: dict, site: dict) -> None:
    send_optin(client, site, visitor="phone-browser")
    send_optin(client, site, visitor="laptop-browser", phone="(415) 555-2671")
    post(client, beacon(site, event(), vid="laptop-browser"))
    contact = contact_by_phone(client, admin)
    assert contact is not None
    assert {v["visitor_id"] for v in contact["visitors"]} == {"phone-browser", "laptop-browser"}
    assert len(contact["consents"]) == 2
    assert len([e for e in contact["events"] if e["name"] == "page_view"]) == 1
    # a second opt-in within 24 hours sends no second confirmation text
    assert len(settled(client, admin)) == 1


def test_a_retried_beacon_records_the_optin_once(
    client: TestClient, admin: dict, site: dict
) -> None:
    body = beacon(site, optin_event())
    assert post(client, body).status_code == 202
    assert post(client, body).status_code == 202
    contact = contact_by_phone(client, admin)
    assert contact is not None and len(contact["consents"]) == 1


@pytest.mark.parametrize(
    ("phone", "code"),
    [
        ("12", "invalid_phone"),
        ("not a phone", "invalid_phone"),
        ("020 7946 0018", "invalid_phone"),  # a UK fixed line, read as US: not valid
        ("+44 20 7946 0018", "invalid_phone"),  # fixed line
        ("+44 7400 123456", "country_not_allowed"),
    ],
)
def test_a_bad_number_is_refused_and_nothing_is_stored(
    client: TestClient, site: dict, settings: Settings, phone: str, code: str
) -> None:
    body = beacon(site, event(), optin_event(phone))
    response = post(client, body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["field"] == "e[1].p.phone"
    with sqlite3.connect(settings.db) as conn:
        assert conn.execute("select count(*) from events").fetchone() == (0,)
        assert conn.execute("select count(*) from contacts").fetchone() == (0,)


def test_allowed_countries_widen_what_a_site_accepts(
    client: TestClient, admin: dict, site: dict
) -> None:
    client.patch(
        f"/api/v1/sites/{site['id']}", json={"allowed_countries": ["US", "GB"]}, headers=admin
    )
    assert send_optin(client, site, phone="+44 7400 123456").status_code == 202
    assert contact_by_phone(client, admin, "+447400123456") is not None


def test_a_number_that_said_stop_needs_yes_again_even_without_double_opt_in(
    client: TestClient, admin: dict, site: dict
) -> None:
    client.patch(f"/api/v1/sites/{site['id']}", json={"double_opt_in": False}, headers=admin)
    send_optin(client, site)
    text_in(client, "STOP")
    send_optin(client, site, visitor="visitor-0002")
    contact = contact_by_phone(client, admin)
    assert contact is not None and contact["status"] == "pending"
    kinds = [m["kind"] for m in settled(client, admin)]
    assert kinds == ["keyword_reply", "confirmation"]
    text_in(client, "y")
    contact = contact_by_phone(client, admin)
    assert contact is not None and contact["status"] == "active"
    assert [r["kind"] for r in contact["consents"]] == [
        "opt_in",
        "opt_out",
        "opt_in",
        "confirmation",
    ]


def test_messages_api_filters(client: TestClient, admin: dict, site: dict) -> None:
    send_optin(client, site)
    settled(client, admin)
    contact = contact_by_phone(client, admin)
    assert contact is not None
    assert len(messages(client, admin, contact_id=contact["id"], status="sent")) == 1
    assert messages(client, admin, status="delivered") == []
    assert messages(client, admin, kind="automation") == []
    bad = client.get("/api/v1/messages", params={"status": "lost"}, headers=admin)
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "status"
    one = client.get(f"/api/v1/messages/{contact['messages'][0]['id']}", headers=admin)
    assert one.status_code == 200 and one.json()["kind"] == "confirmation"
    assert client.get("/api/v1/messages/999", headers=admin).status_code == 404
    assert client.get("/api/v1/messages").status_code == 401


def test_yes_after_the_expiry_time_expires_instead_of_confirming(
    client: TestClient, admin: dict, site: dict, settings: Settings
) -> None:
    send_optin(client, site)
    with sqlite3.connect(settings.db) as conn:  # three days and a bit ago
        conn.execute("update contacts set pending_since = pending_since - 73 * 3600 * 1000")
    text_in(client, "YES")
    contact = contact_by_phone(client, admin)
    assert contact is not None and contact["status"] == "expired"
    assert [r["kind"] for r in contact["consents"]] == ["opt_in", "expiry"]
    assert contact["consent_chain"]["valid"]


def test_start_confirms_a_pending_opt_in_too(client: TestClient, admin: dict, site: dict) -> None:
    send_optin(client, site)
    text_in(client, "START")
    contact = contact_by_phone(client, admin)
    assert contact is not None and contact["status"] == "active"
    assert [m["kind"] for m in settled(client, admin)] == ["confirmation", "keyword_reply"]
