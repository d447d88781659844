"""The whole consent loop on a real `smsretarget serve` process: a web opt-in, the confirmation
text through the real Vonage SDK to the TLS fake, signed inbound texts and receipts over HTTP."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from fakes.vonage_server import FakeVonage, deliver, inbound_message, signed
from optin_support import PHONE, optin_event, wait_until
from support import ADMIN_TOKEN, DESKTOP_UA, ORIGIN, LiveServer, beacon, free_port

OUR_NUMBER = "14155550100"
SECRET = "signing-secret-42"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def server(tmp_path: Path, fake_vonage: FakeVonage) -> Iterator[LiveServer]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SMSR_", "VONAGE_"))}
    fake = fake_vonage.settings_overrides()
    env.update(
        SMSR_ADMIN_TOKEN=ADMIN_TOKEN,
        SMSR_PUBLIC_URL=f"http://127.0.0.1:{port}",
        VONAGE_API_KEY=fake["vonage_api_key"],
        VONAGE_API_SECRET=str(fake["vonage_api_secret"]),
        VONAGE_REST_HOST=fake["vonage_rest_host"],
        VONAGE_FROM=fake["vonage_from"],
        VONAGE_SIGNATURE_SECRET=SECRET,
        VONAGE_SIGNATURE_METHOD="sha256",
    )
    live = LiveServer(f"http://127.0.0.1:{port}", tmp_path / "e2e.db", port, env)
    live.start()
    yield live
    live.stop()


def test_opt_in_confirm_deliver_stop_over_real_http(
    server: LiveServer, fake_vonage: FakeVonage
) -> None:
    with httpx2.Client(base_url=server.url, headers=ADMIN, timeout=10) as http:
        site = http.post(
            "/api/v1/sites",
            json={"name": "Shop", "origins": [ORIGIN], "sender": OUR_NUMBER},
        ).json()
        assert site["double_opt_in"] is True
        optin = http.post(
            "/e",
            content=json.dumps(beacon(site, optin_event())),
            headers={"Origin": ORIGIN, "User-Agent": DESKTOP_UA, "Content-Type": "text/plain"},
        )
        assert optin.status_code == 202
        [request] = wait_until(lambda: fake_vonage.sms_requests)
        assert request.form["to"] == PHONE[1:] and request.form["from"] == OUR_NUMBER
        assert request.form["callback"] == f"{server.url}/webhooks/vonage/status"
        assert request.basic_auth == (
            fake_vonage.settings_overrides()["vonage_api_key"],
            str(fake_vonage.settings_overrides()["vonage_api_secret"]),
        )

        def contact() -> dict:
            found = http.get("/api/v1/contacts", params={"phone": PHONE}).json()["items"]
            return http.get(f"/api/v1/contacts/{found[0]['id']}").json()

        assert contact()["status"] == "pending"
        webhook = f"{server.url}/webhooks/vonage/inbound"
        yes = inbound_message(msisdn=PHONE, to=OUR_NUMBER, text="YES")
        assert deliver(webhook, yes).status_code == 401  # unsigned
        assert contact()["status"] == "pending"
        assert deliver(webhook, signed(yes, SECRET, "sha256"), how="get").status_code == 200
        assert contact()["status"] == "active"

        wait_until(lambda: contact()["messages"][0]["status"] == "sent")
        status_url = f"{server.url}/webhooks/vonage/status"
        for receipt in fake_vonage.receipts():
            assert deliver(status_url, signed(receipt, SECRET, "sha256")).status_code == 200
        [confirmation] = contact()["messages"]
        assert confirmation["status"] == "delivered" and confirmation["price"] == 0.0333

        stop = inbound_message(msisdn=PHONE, to=OUR_NUMBER, text="Stop")
        assert deliver(webhook, signed(stop, SECRET, "sha256"), how="json").status_code == 200
        assert contact()["status"] == "opted_out"
        wait_until(lambda: len(fake_vonage.sms_requests) == 2)
        assert "unsubscribed" in fake_vonage.sms_requests[1].form["text"]

        # Vonage refuses the credentials: sending pauses, and health and metrics say so
        fake_vonage.fail(4)
        help_text = inbound_message(msisdn="+14155550199", to=OUR_NUMBER, text="HELP")
        assert deliver(webhook, signed(help_text, SECRET, "sha256")).status_code == 200
        wait_until(lambda: http.get("/healthz").json().get("sending") == "paused")
        assert "smsr_sending_paused 1" in http.get("/metrics").text
        assert contact()["consent_chain"]["valid"]
