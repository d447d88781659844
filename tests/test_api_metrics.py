"""`GET /api/v1/metrics`: the funnel of automated texts, over real rows in a real SQLite file."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from collector.settings import Settings

from automation_support import (
    add_automation,
    add_contact,
    add_event,
    add_message,
    add_template,
    now_ms,
    sql,
)

ZERO = {
    "triggered": 0,
    "sent": 0,
    "delivered": 0,
    "clicked": 0,
    "replied": 0,
    "converted": 0,
    "revenue": {},
    "skipped": {},
    "cancelled": {},
}


def metrics(client: TestClient, admin: dict, **params: Any) -> Any:
    return client.get("/api/v1/metrics", params=params, headers=admin)


def click(settings: Settings, site_id: int, contact_id: int, message_id: int, times: int) -> None:
    code = f"code{message_id}"
    with sql(settings) as conn:
        conn.execute(
            "insert into links (code, site_id, contact_id, message_id, url, created_at) "
            "values (?, ?, ?, ?, 'https://shop.example.com/cart', ?)",
            (code, site_id, contact_id, message_id, now_ms()),
        )
        for n in range(times):
            conn.execute(
                "insert into link_clicks (code, token, at) values (?, ?, ?)",
                (code, f"tok-{message_id}-{n}", now_ms()),
            )


def inbound(
    settings: Settings, site_id: int, contact_id: int, at: int, keyword: str | None
) -> None:
    with sql(settings) as conn:
        conn.execute(
            "insert into inbound_messages (message_id, site_id, contact_id, msisdn, to_number, "
            "body, keyword, received_at) values (?, ?, ?, '+14155550001', '14155550100', ?, ?, ?)",
            (f"in-{at}-{keyword}", site_id, contact_id, keyword or "yes please", keyword, at),
        )


def credit(
    settings: Settings, site_id: int, message_id: int, value: float, currency: str | None
) -> None:
    event_id = add_event(settings, site_id, "purchase")
    with sql(settings) as conn:
        conn.execute(
            "insert into attributions (event_id, message_id, via, value, currency, at) "
            "values (?, ?, 'click', ?, ?, ?)",
            (event_id, message_id, value, currency, now_ms()),
        )


@pytest.fixture
def funnel(client: TestClient, admin: dict, site: dict, settings: Settings) -> dict[str, Any]:
    """Two automations of one site with texts in every state, and what followed them."""
    template = add_template(client, admin, site)
    a = add_automation(client, admin, site, template, name="A")
    b = add_automation(client, admin, site, template, name="B", trigger="pricing_viewed")
    ada = add_contact(settings, site["id"])
    bob = add_contact(settings, site["id"], first_name="Bob")
    now = now_ms()
    old = now - 10 * 86400 * 1000
    sent = {"status": "sent", "sent_at": now - 60_000}
    delivered = {"status": "delivered", "sent_at": now - 60_000, "delivered_at": now - 50_000}

    def text(automation: dict, contact: int, **columns: Any) -> int:
        return add_message(
            settings,
            site_id=site["id"],
            contact_id=contact,
            automation_id=automation["id"],
            **columns,
        )

    m1 = text(a, ada, **delivered)
    m2 = text(a, bob, **sent)
    text(a, ada, status="failed", reason="invalid_number", sent_at=now - 70_000)
    text(a, ada, status="skipped", reason="capped")
    text(a, bob, status="skipped", reason="capped")
    text(a, bob, status="skipped", reason="no_consent")
    text(a, ada, status="cancelled", reason="converted")
    text(a, ada)  # still scheduled
    text(a, ada, status="cancelled", reason="opted_out", created_at=old)
    m7 = text(b, bob, **delivered)
    add_message(settings, site_id=site["id"], contact_id=ada, kind="confirmation", status="sent")

    click(settings, site["id"], ada, m1, times=2)  # two clicks, one clicked text
    click(settings, site["id"], bob, m7, times=1)
    inbound(settings, site["id"], ada, now - 40_000, None)  # a reply to m1
    inbound(settings, site["id"], ada, now - 30_000, "stop")  # a keyword is no reply
    inbound(settings, site["id"], bob, now - 120_000, None)  # before any text to Bob
    credit(settings, site["id"], m1, 48.0, "USD")
    credit(settings, site["id"], m2, 10.5, "EUR")
    credit(settings, site["id"], m2, 4.25, None)
    credit(settings, site["id"], m7, 20.0, "USD")
    return {"a": a, "b": b, "old": old}


def test_site_funnel(client: TestClient, admin: dict, site: dict, funnel: dict) -> None:
    response = metrics(client, admin, site_id=site["id"])
    assert response.status_code == 200
    assert response.json() == {
        "triggered": 10,
        "sent": 4,
        "delivered": 2,
        "clicked": 2,
        "replied": 1,
        "converted": 4,
        "revenue": {"EUR": 10.5, "USD": 68.0, "XXX": 4.25},
        "skipped": {"capped": 2, "no_consent": 1},
        "cancelled": {"converted": 1, "opted_out": 1},
    }


def test_one_automation_and_since(
    client: TestClient, admin: dict, site: dict, funnel: dict
) -> None:
    answer = metrics(client, admin, automation_id=funnel["a"]["id"]).json()
    assert (answer["triggered"], answer["clicked"], answer["converted"]) == (9, 1, 3)
    assert answer["revenue"] == {"EUR": 10.5, "USD": 48.0, "XXX": 4.25}
    recent = metrics(
        client, admin, automation_id=funnel["a"]["id"], since="2000-01-01T00:00:00+00:00"
    ).json()
    assert recent == answer
    from collector.db import ms_to_iso

    since = ms_to_iso(funnel["old"] + 1000)
    answer = metrics(client, admin, automation_id=funnel["a"]["id"], since=since).json()
    assert answer["triggered"] == 8
    assert answer["cancelled"] == {"converted": 1}
    b = metrics(client, admin, site_id=site["id"], automation_id=funnel["b"]["id"]).json()
    assert (b["triggered"], b["delivered"], b["clicked"], b["replied"]) == (1, 1, 1, 0)
    assert b["revenue"] == {"USD": 20.0}


def test_a_reply_counts_for_the_last_text_before_it(
    client: TestClient, admin: dict, site: dict, settings: Settings
) -> None:
    template = add_template(client, admin, site)
    a = add_automation(client, admin, site, template)
    ada = add_contact(settings, site["id"])
    now = now_ms()
    for sent_at in (now - 90_000, now - 60_000):
        add_message(
            settings,
            site_id=site["id"],
            contact_id=ada,
            automation_id=a["id"],
            status="sent",
            sent_at=sent_at,
        )
    inbound(settings, site["id"], ada, now - 30_000, None)
    inbound(settings, site["id"], ada, now - 20_000, None)
    assert metrics(client, admin, site_id=site["id"]).json()["replied"] == 1


def test_nothing_yet_is_all_zero(client: TestClient, admin: dict, site: dict) -> None:
    assert metrics(client, admin, site_id=site["id"]).json() == ZERO
    assert metrics(client, admin).json() == ZERO
    assert metrics(client, admin, automation_id=12345).json() == ZERO


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"site_id": "x"}, "site_id"),
        ({"site_id": "0"}, "site_id"),
        ({"automation_id": "-1"}, "automation_id"),
        ({"since": "yesterday"}, "since"),
        ({"since": "2025-05-01T00:00:00"}, "since"),
        ({"since": "2025-05-01"}, "since"),
        ({"since": "2025-13-01T00:00:00Z"}, "since"),
        ({"since": "2025-05-01T00:00:00 00:00"}, "since"),
        ({"since": "9" * 100}, "since"),
    ],
)
def test_bad_values_are_400(client: TestClient, admin: dict, params: dict, field: str) -> None:
    response = metrics(client, admin, **params)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["field"] == field


def test_unknown_site_is_404_and_the_token_is_needed(client: TestClient, admin: dict) -> None:
    assert metrics(client, admin, site_id=99).status_code == 404
    assert client.get("/api/v1/metrics").status_code == 401
