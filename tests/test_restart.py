"""A restart never forgets a pending text and never sends one twice (issue 4, "The scheduler").

The service runs as a user runs it (`LiveServer`), sending through the fake Vonage with the real
SDK; it is killed (SIGKILL: no shutdown code runs) or stopped (SIGTERM), and started again on
the same database file.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import fields
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx2
import pytest

from collector.settings import Settings

from fakes.vonage_server import FakeVonage, deliver
from support import ADMIN_TOKEN, DESKTOP_UA, ORIGIN, LiveServer, beacon, event, free_port

PHONE = "+14155552671"
SENDER = "+16502530000"


@pytest.fixture
def server(fake_vonage: FakeVonage, tmp_path: Path) -> Iterator[LiveServer]:
    """`live_server`, sending through the fake Vonage: the process inherits its CA bundle."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SMSR_", "VONAGE_"))}
    env.update(SMSR_ADMIN_TOKEN=ADMIN_TOKEN, SMSR_PUBLIC_URL=f"http://127.0.0.1:{port}")
    overrides = fake_vonage.settings_overrides()
    env.update(
        {f.metadata["env"]: str(overrides[f.name]) for f in fields(Settings) if f.name in overrides}
    )
    assert "REQUESTS_CA_BUNDLE" in env
    live = LiveServer(f"http://127.0.0.1:{port}", tmp_path / "live.db", port, env)
    live.start()
    yield live
    live.stop()


def api(server: LiveServer, method: str, path: str, **kwargs: Any) -> Any:
    response = httpx2.request(
        method,
        server.url + path,
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=5,
        **kwargs,
    )
    assert response.status_code < 300, response.text
    return response.json()


def cart_automation(server: LiveServer, delay_seconds: int) -> dict[str, Any]:
    """A site texting at any hour without double opt-in, with a cart automation; the site."""
    site = api(
        server,
        "POST",
        "/api/v1/sites",
        json={
            "name": "Shop",
            "origins": [ORIGIN],
            "sender": SENDER,
            "double_opt_in": False,
            "send_window": {"start": "00:00", "end": "24:00"},
        },
    )
    body = "Hi {{ contact.first_name }}, your cart is waiting: {{ link }}"
    template = api(
        server, "POST", "/api/v1/templates", json={"site_id": site["id"], "name": "C", "body": body}
    )
    api(
        server,
        "POST",
        "/api/v1/automations",
        json={
            "site_id": site["id"],
            "name": "Abandoned cart",
            "trigger": "cart_abandoned",
            "delay_seconds": delay_seconds,
            "template_id": template["id"],
        },
    )
    return dict(site)


def abandon_cart(server: LiveServer, site: dict[str, Any]) -> None:
    """A visitor opts in and fills a cart, as the snippet would post it."""
    optin = event("optin", p={"phone": PHONE, "first_name": "Ann", "consent_text": "Text me"})
    props = {
        "items": [{"id": "tee", "name": "Tee", "qty": 1, "price": 24}],
        "value": 24,
        "currency": "USD",
        "url": f"{ORIGIN}/cart",
    }
    for one in (optin, event("cart_update", p=props)):
        response = httpx2.post(
            f"{server.url}/e",
            content=json.dumps(beacon(site, one)),
            headers={"Origin": ORIGIN, "Content-Type": "text/plain", "User-Agent": DESKTOP_UA},
        )
        assert response.status_code == 202, response.text


def automated(server: LiveServer, site: dict[str, Any]) -> list[dict[str, Any]]:
    query = {"site_id": site["id"], "kind": "automation"}
    return list(api(server, "GET", "/api/v1/messages", params=query)["items"])


def wait_until(check: Any, what: str, timeout: float = 8.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := check()):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)
    return result


def due_time(message: dict[str, Any]) -> float:
    return datetime.fromisoformat(message["due_at"].replace("Z", "+00:00")).timestamp()


@pytest.mark.parametrize(
    ("how", "down_past_due"),
    [("kill", True), ("stop", False)],
    ids=["sigkill-down-past-due", "sigterm-due-after-restart"],
)
def test_a_text_pending_across_a_restart_is_sent_exactly_once(
    server: LiveServer, fake_vonage: FakeVonage, how: str, down_past_due: bool
) -> None:
    site = cart_automation(server, delay_seconds=3)
    abandon_cart(server, site)
    [pending] = wait_until(lambda: automated(server, site), "the text to be planned")
    assert pending["status"] == "scheduled"

    getattr(server, how)()  # kill: SIGKILL; stop: SIGTERM
    if down_past_due:  # the text falls due while nothing runs
        time.sleep(max(0.0, due_time(pending) + 0.2 - time.time()))
    assert fake_vonage.sms_requests == []
    server.start()

    [sent] = wait_until(lambda: fake_vonage.sms_requests, "the text after the restart")
    time.sleep(1.5)  # a second send would have come by now
    assert len(fake_vonage.sms_requests) == 1
    assert sent.form["to"] == PHONE[1:]
    assert sent.form["text"].startswith("Hi Ann, your cart is waiting: " + server.url + "/r/")
    [message] = wait_until(
        lambda: [m for m in automated(server, site) if m["status"] == "sent"], "status sent"
    )
    assert message["id"] == pending["id"] and message["body"] == sent.form["text"]


def test_a_text_in_flight_when_the_process_dies_is_never_resent(
    server: LiveServer, fake_vonage: FakeVonage
) -> None:
    site = cart_automation(server, delay_seconds=1)
    gate = fake_vonage.hold()  # Vonage has the request, the answer never reaches us
    abandon_cart(server, site)
    [request] = wait_until(lambda: fake_vonage.sms_requests, "the text at the fake Vonage")
    [in_flight] = automated(server, site)
    assert in_flight["status"] == "sending"

    server.kill()
    gate.set()
    server.start()
    time.sleep(2)  # the scheduler and the outbox (which sweeps at start) have had their passes
    assert fake_vonage.sms_requests == [request]
    [after] = automated(server, site)
    # Not resent, and not failed yet either: `unknown_outcome` only after an hour (the sweep).
    assert (after["status"], after["reason"], after["sent_at"]) == ("sending", None, None)

    # Reconciled by the receipt, matched by client-ref since our copy of the answer was lost.
    [receipt] = fake_vonage.receipts(request)
    assert receipt["client-ref"] == request.form["client-ref"]
    assert deliver(server.url + "/webhooks/vonage/status", receipt).status_code == 200
    [settled] = automated(server, site)
    assert settled["status"] == "delivered"
    assert fake_vonage.sms_requests == [request]
