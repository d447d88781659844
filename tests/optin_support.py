"""What the consent tests share: opt-in beacons, inbound texts, and waiting for the outbox."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from starlette.testclient import TestClient

from fakes.vonage_server import deliver, inbound_message
from support import ORIGIN, beacon, event, post

PHONE = "+14155552671"
LABEL = "Yes, text me cart reminders and offers. Msg & data rates may apply. Reply STOP to opt out."


def optin_event(phone: str = PHONE, **props: Any) -> dict[str, Any]:
    body = {"phone": phone, "first_name": "Ada", "consent_text": LABEL, "f": "signup"}
    body.update(props)
    return event("optin", u=f"{ORIGIN}/signup", p=body)


def send_optin(
    client: TestClient,
    site: dict[str, Any],
    phone: str = PHONE,
    visitor: str = "visitor-0001",
    headers: dict[str, str] | None = None,
    **props: Any,
) -> Any:
    return post(client, beacon(site, optin_event(phone, **props), vid=visitor), **(headers or {}))


def text_in(
    client: TestClient, text: str, msisdn: str = PHONE, to: str = "14155550100", **kw: Any
) -> Any:
    """An inbound text through the real webhook, as Vonage posts it (form)."""
    params = inbound_message(msisdn=msisdn, to=to, text=text, **kw)
    return deliver("/webhooks/vonage/inbound", params, client=client)


def wait_until(condition: Callable[[], Any], seconds: float = 10) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            assert value, "condition not met in time"
            return value
        time.sleep(0.02)


def messages(client: TestClient, admin: dict[str, str], **filters: Any) -> list[dict[str, Any]]:
    response = client.get("/api/v1/messages", params={"per_page": 500, **filters}, headers=admin)
    assert response.status_code == 200, response.text
    return list(reversed(response.json()["items"]))  # oldest first


def settled(client: TestClient, admin: dict[str, str]) -> list[dict[str, Any]]:
    """All messages once none is still waiting to go out or in flight."""

    def done() -> list[dict[str, Any]] | None:
        items = messages(client, admin)
        busy = [m for m in items if m["status"] in ("scheduled", "sending")]
        return None if busy else (items or [{}])

    result = wait_until(done)
    return [m for m in result if m]


def contact_by_phone(
    client: TestClient, admin: dict[str, str], phone: str = PHONE
) -> dict[str, Any] | None:
    response = client.get("/api/v1/contacts", params={"phone": phone}, headers=admin)
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    if not items:
        return None
    detail = client.get(f"/api/v1/contacts/{items[0]['id']}", headers=admin)
    assert detail.status_code == 200, detail.text
    return detail.json()
