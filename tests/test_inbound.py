"""Inbound texts through the real webhook: every keyword variant, replies, dedupe, signatures."""

from __future__ import annotations

import dataclasses
import sqlite3
import time
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from collector.app import create_app
from collector.settings import Secret, Settings

from fakes.vonage_server import deliver, delivery_receipt, inbound_message, signed
from optin_support import PHONE, contact_by_phone, messages, settled, text_in
from support import DESKTOP_UA, ORIGIN

OUR_NUMBER = "14155550100"
STRANGER = "+14155550199"

STOP_VARIANTS = [
    "STOP",
    "stop",
    "Stop",
    "  stop  ",
    "Stop.",
    "STOP!",
    "stop 🙏",
    "¡STOP!",
    "STOPALL",
    "stopall",
    "UNSUBSCRIBE",
    "Unsubscribe.",
    "CANCEL",
    "cancel",
    "END",
    "end!",
    "QUIT",
    "quit",
    "REVOKE",
    "revoke",
    "OPTOUT",
    "optout",
    "OPT OUT",
    "opt out",
    "Opt  Out",
    "opt-out",
    '"STOP"',
    "\nSTOP\n",
]


def make_contact(client: TestClient, admin: dict, site: dict, phone: str = PHONE) -> dict:
    response = client.post(
        "/api/v1/contacts",
        json={"site_id": site["id"], "phone": phone, "consent_text": "Checkbox at checkout"},
        headers=admin,
    )
    assert response.status_code == 201, response.text
    return response.json()


def rows(settings: Settings, sql: str, *params: object) -> list[tuple]:
    with sqlite3.connect(settings.db) as conn:
        return conn.execute(sql, params).fetchall()


@pytest.mark.parametrize("text", STOP_VARIANTS)
def test_every_stop_variant_opts_out_at_once_with_one_confirmation(
    client: TestClient, admin: dict, site: dict, text: str
) -> None:
    make_contact(client, admin, site)
    assert text_in(client, text).status_code == 200
    contact = contact_by_phone(client, admin)
    assert contact is not None and contact["status"] == "opted_out"
    record = contact["consents"][-1]
    assert (record["kind"], record["source"], record["keyword"]) == ("opt_out", "keyword", text)
    [reply] = settled(client, admin)
    assert reply["kind"] == "keyword_reply" and reply["status"] == "sent"
    assert "unsubscribed" in reply["body"] and "START" in reply["body"]


@pytest.mark.parametrize(
    "text", ["stop it please", "STOPPED", "don't stop", "STOP ALL", "stop stop", "Yes please"]
)
def test_texts_that_only_contain_a_keyword_are_replies(
    client: TestClient, admin: dict, site: dict, text: str
) -> None:
    make_contact(client, admin, site)
    text_in(client, text)
    contact = contact_by_phone(client, admin)
    assert contact is not None and contact["status"] == "active"
    assert [(i["body"], i["keyword"]) for i in contact["inbound"]] == [(text, None)]
    assert settled(client, admin) == []


def test_stop_cancels_texts_not_yet_sent(
    client: TestClient, admin: dict, site: dict, settings: Settings
) -> None:
    contact = make_contact(client, admin, site)
    with sqlite3.connect(settings.db) as conn:
        conn.execute(
            "insert into messages (site_id, contact_id, kind, to_number, body, status, due_at, "
            "client_ref, created_at, updated_at) values (?, ?, 'automation', ?, 'Your cart', "
            "'scheduled', ?, 'ref-1', 0, 0)",
            (site["id"], contact["id"], PHONE, int(time.time() * 1000) + 3_600_000),
        )
    text_in(client, "STOP")
    [automated] = messages(client, admin, kind="automation")
    assert (automated["status"], automated["reason"]) == ("cancelled", "opted_out")


def test_stop_from_a_number_we_never_knew_suppresses_it(
    client: TestClient, admin: dict, site: dict
) -> None:
    text_in(client, "STOP", msisdn=STRANGER)
    [reply] = settled(client, admin)
    assert reply["to"] == STRANGER and reply["contact_id"] is None
    refused = client.post(
        "/api/v1/contacts",
        json={"site_id": site["id"], "phone": STRANGER, "consent_text": "Signed up in store"},
        headers=admin,
    )
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "suppressed"


def test_start_resubscribes_with_a_confirmation(
    client: TestClient, admin: dict, site: dict
) -> None:
    make_contact(client, admin, site)
    text_in(client, "STOP")
    text_in(client, " Unstop ")
    contact = contact_by_phone(client, admin)
    assert contact is not None and contact["status"] == "active"
    assert [r["kind"] for r in contact["consents"]] == ["opt_in", "opt_out", "resubscribe"]
    assert contact["consent_chain"]["valid"]
    bodies = [m["body"] for m in settled(client, admin)]
    assert len(bodies) == 2 and "resubscribed" in bodies[1]
    # the suppression went with it: a server-side opt-in is accepted again
    again = client.post(
        "/api/v1/contacts",
        json={"site_id": site["id"], "phone": PHONE, "consent_text": "Again"},
        headers=admin,
    )
    assert again.status_code == 200


def test_start_from_a_number_that_never_stopped_changes_nothing(
    client: TestClient, admin: dict, site: dict
) -> None:
    make_contact(client, admin, site)
    text_in(client, "START")
    text_in(client, "start", msisdn=STRANGER)
    assert settled(client, admin) == []
    contact = contact_by_phone(client, admin)
    assert contact is not None and len(contact["consents"]) == 1


@pytest.mark.parametrize("text", ["HELP", "help", "Help?", "INFO", "info."])
def test_help_answers_anyone_with_the_sites_help_text(
    client: TestClient, admin: dict, site: dict, text: str
) -> None:
    text_in(client, text, msisdn=STRANGER)
    [reply] = settled(client, admin)
    assert reply["body"] == site["help_text"]
    assert "Shop" in reply["body"] and "Msg & data rates may apply" in reply["body"]
    assert "STOP" in reply["body"] and "msg/day" in reply["body"]


@pytest.mark.parametrize("text", ["YES", "yes", "Y", "y", " Yes! "])
def test_yes_variants_confirm_a_pending_opt_in(
    client: TestClient, admin: dict, site: dict, text: str
) -> None:
    from optin_support import send_optin

    send_optin(client, site)
    text_in(client, text)
    contact = contact_by_phone(client, admin)
    assert contact is not None and contact["status"] == "active"


def test_yes_without_a_pending_opt_in_is_a_reply(
    client: TestClient, admin: dict, site: dict
) -> None:
    make_contact(client, admin, site)
    text_in(client, "YES")
    contact = contact_by_phone(client, admin)
    assert contact is not None and len(contact["consents"]) == 1
    assert contact["inbound"][0]["keyword"] == "yes"
    assert settled(client, admin) == []


def test_the_same_message_id_twice_has_one_effect(
    client: TestClient, admin: dict, site: dict, settings: Settings
) -> None:
    make_contact(client, admin, site)
    params = inbound_message(msisdn=PHONE, to=OUR_NUMBER, text="STOP", message_id="1B0000DUP")
    for how in ("form", "json", "get"):
        assert (
            deliver("/webhooks/vonage/inbound", params, how=how, client=client).status_code == 200
        )
    contact = contact_by_phone(client, admin)
    assert contact is not None and len(contact["consents"]) == 2
    assert len(settled(client, admin)) == 1
    assert rows(settings, "select count(*) from inbound_messages") == [(1,)]


@pytest.mark.parametrize("how", ["form", "json", "get"])
def test_get_form_and_json_all_work(client: TestClient, admin: dict, site: dict, how: str) -> None:
    make_contact(client, admin, site)
    params = inbound_message(msisdn=PHONE, to=OUR_NUMBER, text="quit")
    assert deliver("/webhooks/vonage/inbound", params, how=how, client=client).status_code == 200
    contact = contact_by_phone(client, admin)
    assert contact is not None and contact["status"] == "opted_out"


def test_keywords_apply_to_the_sites_that_send_from_the_number(
    client: TestClient, admin: dict, site: dict
) -> None:
    other = client.post(
        "/api/v1/sites",
        json={"name": "Other", "origins": ["https://other.example.com"], "sender": "14155550111"},
        headers=admin,
    ).json()
    client.patch(f"/api/v1/sites/{site['id']}", json={"sender": OUR_NUMBER}, headers=admin)
    mine = make_contact(client, admin, site)
    theirs = make_contact(client, admin, other)
    text_in(client, "STOP", to=OUR_NUMBER)
    statuses = {
        c["id"]: c["status"] for c in client.get("/api/v1/contacts", headers=admin).json()["items"]
    }
    assert statuses == {mine["id"]: "opted_out", theirs["id"]: "active"}
    [reply] = settled(client, admin)
    assert reply["body"].startswith("Shop: ")


def test_a_stop_to_a_number_no_site_sends_from_applies_everywhere(
    client: TestClient, admin: dict, site: dict
) -> None:
    client.patch(f"/api/v1/sites/{site['id']}", json={"sender": OUR_NUMBER}, headers=admin)
    make_contact(client, admin, site)
    text_in(client, "STOP", to="14155550999")
    contact = contact_by_phone(client, admin)
    assert contact is not None and contact["status"] == "opted_out"


def test_replies_are_kept_in_the_conversation(client: TestClient, admin: dict, site: dict) -> None:
    make_contact(client, admin, site)
    text_in(client, "Is the blue one back in stock?")
    params = inbound_message(msisdn=PHONE, to=OUR_NUMBER, text="STOP")
    params.update({"concat": "true", "concat-ref": "7", "concat-part": "1", "concat-total": "2"})
    deliver("/webhooks/vonage/inbound", params, client=client)
    contact = contact_by_phone(client, admin)
    assert contact is not None and contact["status"] == "active"  # a part is never a keyword
    assert sorted(i["body"] for i in contact["inbound"]) == [
        "Is the blue one back in stock?",
        "STOP",
    ]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"to": OUR_NUMBER, "messageId": "1", "text": "hi"}, "msisdn"),
        ({"msisdn": "abc", "to": OUR_NUMBER, "messageId": "1", "text": "hi"}, "msisdn"),
        ({"msisdn": "14155552671", "messageId": "1", "text": "hi"}, "to"),
        ({"msisdn": "14155552671", "to": OUR_NUMBER, "text": "hi"}, "messageId"),
    ],
)
def test_incomplete_inbound_texts_get_400(client: TestClient, params: dict, field: str) -> None:
    response = deliver("/webhooks/vonage/inbound", params, client=client)
    assert response.status_code == 400
    assert response.json()["error"]["field"] == field


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b'{"msisdn": {"a": 1}}', b"\xff\xfe"])
def test_malformed_bodies_get_400(client: TestClient, body: bytes) -> None:
    for path in ("/webhooks/vonage/inbound", "/webhooks/vonage/status"):
        response = client.post(path, content=body, headers={"Content-Type": "application/json"})
        assert response.status_code == 400, response.text


SECRET = "sig-secret-0123"


@pytest.fixture(params=["md5hash", "md5", "sha1", "sha256", "sha512"])
def signed_client(request: pytest.FixtureRequest, settings: Settings) -> Iterator[TestClient]:
    signing = dataclasses.replace(
        settings, vonage_signature_secret=Secret(SECRET), vonage_signature_method=request.param
    )
    with TestClient(create_app(signing), headers={"User-Agent": DESKTOP_UA}) as client:
        client.headers["X-Method"] = request.param
        yield client


def _site(client: TestClient, admin: dict) -> dict:
    return client.post(
        "/api/v1/sites", json={"name": "Shop", "origins": [ORIGIN]}, headers=admin
    ).json()


def test_signed_webhooks_are_verified_in_every_mode(
    signed_client: TestClient, admin: dict, settings: Settings
) -> None:
    method = signed_client.headers["X-Method"]
    make_contact(signed_client, admin, _site(signed_client, admin))
    text = inbound_message(msisdn=PHONE, to=OUR_NUMBER, text="STOP")
    for how in ("form", "json", "get"):
        good = signed(dict(text, messageId=f"good-{how}"), SECRET, method)
        response = deliver("/webhooks/vonage/inbound", good, how=how, client=signed_client)
        assert response.status_code == 200, response.text
    assert len(rows(settings, "select * from inbound_messages")) == 3
    receipt = delivery_receipt(message_id="0A00000000000001", msisdn=PHONE)
    response = deliver(
        "/webhooks/vonage/status", signed(receipt, SECRET, method), client=signed_client
    )
    assert response.status_code == 200


def test_missing_bad_and_stale_signatures_get_401_and_store_nothing(
    signed_client: TestClient, admin: dict, settings: Settings
) -> None:
    method = signed_client.headers["X-Method"]
    make_contact(signed_client, admin, _site(signed_client, admin))
    text = inbound_message(msisdn=PHONE, to=OUR_NUMBER, text="STOP")
    tampered = signed(text, SECRET, method)
    tampered["text"] = "START"
    attempts = {
        "missing": text,
        "wrong secret": signed(text, "not-the-secret", method),
        "tampered": tampered,
        "stale": signed(text, SECRET, method, now=time.time() - 25 * 3600),
        "garbage timestamp": dict(signed(text, SECRET, method), timestamp="soon"),
    }
    for name, params in attempts.items():
        for path in ("/webhooks/vonage/inbound", "/webhooks/vonage/status"):
            response = deliver(path, params, client=signed_client)
            assert response.status_code == 401, (name, path, response.text)
            assert response.json()["error"]["code"] == "bad_signature"
    assert rows(settings, "select count(*) from inbound_messages") == [(0,)]
    contact = contact_by_phone(signed_client, admin)
    assert contact is not None and contact["status"] == "active"


JUNK_BODIES = [
    b'{"msisdn": "14155552671", "to": "1", "messageId": "x", "text": "\\ud800"}',
    b'{"msisdn": 14155552671, "to": 1, "messageId": 7, "text": true}',
    b'{"msisdn": null, "to": null, "messageId": null}',
    b"msisdn=%ED%A0%80&to=%FF&messageId=%00&text=%F0%9F",
    b"msisdn=1&msisdn=2&to=3&messageId=" + b"9" * 200,
    b"concat=true&concat-part=abc&concat-total=99999999999&msisdn=14155552671&to=1&messageId=c1",
    b"messageId=0A1&status=delivered&price=NaN&err-code=%00&client-ref=" + b"r" * 500,
    b"messageId=0A1&status=" + b"s" * 5000,
    b"\x00\x01\x02",
    b"{}",
    b"x" * (70 * 1024),
]


@pytest.mark.parametrize("body", JUNK_BODIES, ids=range(len(JUNK_BODIES)))
@pytest.mark.parametrize("content_type", ["json", "x-www-form-urlencoded"])
def test_junk_never_gets_a_500(client: TestClient, body: bytes, content_type: str) -> None:
    for path in ("/webhooks/vonage/inbound", "/webhooks/vonage/status"):
        headers = {"Content-Type": f"application/{content_type}"}
        response = client.post(path, content=body, headers=headers)
        assert response.status_code < 500, (path, response.text)
        query = client.get(path + "?msisdn=%ED%A0%80&to=%FF%FE&messageId=%C0%80&status=x")
        assert query.status_code < 500
