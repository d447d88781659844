"""Automations end to end: a visitor opts in and fills a cart in Chromium, closes the page, and
gets one text, sent by the real Vonage SDK to the fake Vonage over TLS; the link in that text
lands on the cart and counts the click. A purchase or a STOP before the due time means no text.

The collector runs in its own process, one per module, configured to send through the fake.
Each test has its own site, sender number and phone number, so nothing one test does (a STOP
above all) reaches another test's contact.
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import pytest
from harness import (
    DESKTOP_UA,
    Collector,
    SiteServer,
    Wire,
    start_collector,
    vonage_env,
    wait_until,
)
from playwright.sync_api import Browser, BrowserContext, Page

from fakes.vonage_server import FakeVonage, FakeVonageServer, deliver, inbound_message

pytestmark = pytest.mark.browser

DELAY_SECONDS = 2
TEMPLATE = "Hi {{ contact.first_name }}, your cart is waiting: {{ link }}"
OPTIN_FORM = (
    '<form data-smsr-optin data-smsr-form="sms" onsubmit="event.preventDefault()">'
    '<input name="first_name" autocomplete="given-name">'
    '<input type="tel" name="phone">'
    '<input type="checkbox" id="agree" data-smsr-consent>'
    '<label for="agree">Yes, text me cart reminders. Reply STOP to cancel.</label>'
    '<button id="join">Join</button></form>'
)
# One past the due time is the scheduler's longest idle wait; the rest is slack for a busy machine.
PAST_DUE_SECONDS = 1.5
_numbers = itertools.count(1)


@dataclass
class Shop:
    """A site on the test site server with a cart automation, and the visitor's phone number."""

    site_id: int
    key: str
    automation_id: int
    sender: str  # E.164: the site texts from this number, and STOP is sent to it
    phone: str  # E.164: the visitor's
    home: str  # the page with the opt-in form
    cart_url: str
    collector: Collector

    def api(self, path: str, **query: Any) -> Any:
        return self.collector.api("GET", f"{path}?{urlencode(query)}")

    def contact(self) -> dict[str, Any] | None:
        found = self.api("/api/v1/contacts", site_id=self.site_id, phone=self.phone[1:])["items"]
        return found[0] if found else None

    def automated(self, contact_id: int) -> list[dict[str, Any]]:
        return self.api("/api/v1/messages", contact_id=contact_id, kind="automation")["items"]

    def metrics(self) -> dict[str, Any]:
        return self.api("/api/v1/metrics", site_id=self.site_id)


@pytest.fixture(scope="module")
def vonage_collector(
    tmp_path_factory: pytest.TempPathFactory, fake_vonage_server: FakeVonageServer
) -> Iterator[Collector]:
    """The collector in its own process, sending through the fake Vonage and trusting it."""
    server = start_collector(
        tmp_path_factory.mktemp("vonage-collector"),
        **vonage_env(fake_vonage_server.fake, fake_vonage_server.ca_bundle),
    )
    yield server
    server.stop()


@pytest.fixture
def wire(context: BrowserContext, vonage_collector: Collector) -> Wire:
    """What this test's browser posted to the collector of this module (not the session's)."""
    observed = Wire(vonage_collector, context)
    context.on("request", observed.observe)
    return observed


@pytest.fixture
def shop(fake_vonage: FakeVonage, vonage_collector: Collector, site_server: SiteServer) -> Shop:
    n = next(_numbers)
    sender, phone = f"+1650253{n:04d}", f"+1415555{2670 + n}"
    site = vonage_collector.api(
        "POST",
        "/api/v1/sites",
        {
            "name": f"Shop {n}",
            "origins": [site_server.url],
            "sender": sender,
            "double_opt_in": False,
            "send_window": {"start": "00:00", "end": "24:00"},
        },
    )
    template = vonage_collector.api(
        "POST",
        "/api/v1/templates",
        {"site_id": site["id"], "name": "Cart reminder", "body": TEMPLATE},
    )
    automation = vonage_collector.api(
        "POST",
        "/api/v1/automations",
        {
            "site_id": site["id"],
            "name": "Abandoned cart",
            "trigger": "cart_abandoned",
            "delay_seconds": DELAY_SECONDS,
            "template_id": template["id"],
        },
    )
    script = vonage_collector.url + "/s.js"
    home = site_server.page(site["key"], OPTIN_FORM, path=f"/shop{n}/", script=script)
    cart_url = site_server.page(
        site["key"], "<h1>Your cart</h1>", title="Cart", path=f"/shop{n}/cart", script=script
    )
    return Shop(
        site["id"], site["key"], automation["id"], sender, phone, home, cart_url, vonage_collector
    )


def opt_in_and_fill_cart(page: Page, shop: Shop, wire: Wire, first_name: str) -> int:
    """Opt in with the page's form, then put a mug in the cart; returns the contact's id."""
    page.goto(shop.home)
    wire.wait_for("page_view")
    page.fill("input[name=first_name]", first_name)
    page.fill("input[type=tel]", shop.phone)
    page.check("#agree")
    page.click("#join")
    wire.wait_for("optin")
    contact = wait_until(shop.contact, "the contact", pause=wire.pause)
    assert contact["status"] == "active"  # the site has no double opt-in
    page.evaluate(
        """url => smsr('cart', {items: [{id: 'mug', name: 'Mug', qty: 2, price: 9.5}],
                               value: 19, currency: 'USD', url})""",
        shop.cart_url,
    )
    wire.wait_for("cart_update")
    return int(contact["id"])


def planned(shop: Shop, contact_id: int, wire: Wire) -> dict[str, Any]:
    """The one automated text planned for the contact, once the planner has made it."""
    [message] = wait_until(
        lambda: shop.automated(contact_id), "the text to be planned", pause=wire.pause
    )
    assert message["status"] == "scheduled" and message["automation_id"] == shop.automation_id
    return message


def wait_past_due(message: dict[str, Any]) -> None:
    """Sleep until the scheduler has certainly looked at the message's due time."""
    due = datetime.fromisoformat(message["due_at"].replace("Z", "+00:00")).timestamp()
    left = due + PAST_DUE_SECONDS - time.time()
    assert left < DELAY_SECONDS + PAST_DUE_SECONDS  # a bounded wait, whatever the row says
    time.sleep(max(0.0, left))


def test_an_abandoned_cart_gets_one_text_whose_link_lands_on_the_cart_and_counts(
    page: Page,
    browser: Browser,
    shop: Shop,
    wire: Wire,
    fake_vonage: FakeVonage,
    vonage_collector: Collector,
) -> None:
    contact_id = opt_in_and_fill_cart(page, shop, wire, "Grace")
    visitor = wire.bodies[0]["vid"]
    page.close()

    [sent] = wait_until(lambda: fake_vonage.sms_requests, "the text at the fake Vonage", timeout=8)
    time.sleep(2)  # a second text would have come by now
    assert len(fake_vonage.sms_requests) == 1
    assert (sent.form["to"], sent.form["from"]) == (shop.phone[1:], shop.sender[1:])
    found = re.search(re.escape(vonage_collector.url) + r"/r/[A-Za-z0-9_-]{11,}", sent.form["text"])
    assert found is not None, sent.form["text"]
    link = found.group()
    assert sent.form["text"] == f"Hi Grace, your cart is waiting: {link} Reply STOP to opt out"
    [message] = wait_until(
        lambda: [m for m in shop.automated(contact_id) if m["status"] == "sent"], "status sent"
    )
    assert message["body"] == sent.form["text"] and message["automation_id"] == shop.automation_id

    # The text is opened on the phone: a browser that has never seen the shop.
    phone = browser.new_context(user_agent=DESKTOP_UA)
    try:
        landing = Wire(vonage_collector, phone)
        phone.on("request", landing.observe)
        tab = phone.new_page()
        response = tab.goto(link)
        assert response is not None and response.status == 200
        hop = response.request.redirected_from
        assert hop is not None and hop.url == link
        redirect = hop.response()
        assert redirect is not None and redirect.status == 302
        location = redirect.headers["location"]
        assert location.startswith(shop.cart_url + "?smsr_c=") and response.url == location
        token = location.partition("?smsr_c=")[2]
        [view] = landing.wait_for("page_view")
        assert view["p"] == {"c": token}
        assert tab.evaluate("() => location.href") == shop.cart_url  # the token is removed
        clicker = landing.bodies[0]["vid"]
        assert clicker != visitor

        def tied() -> dict[str, Any] | None:
            detail = vonage_collector.api("GET", f"/api/v1/contacts/{contact_id}")
            ties = {v["visitor_id"]: v["source"] for v in detail["visitors"]}
            return ties if clicker in ties else None

        ties = wait_until(tied, "the phone's browser tied to the contact", pause=landing.pause)
        assert ties == {visitor: "optin", clicker: "link"}
    finally:
        phone.close()

    [click] = shop.api("/api/v1/events", site_id=shop.site_id, name="sms_click")["items"]
    assert click["contact_id"] == contact_id and click["visitor_id"] == clicker
    assert click["props"]["message_id"] == message["id"] and click["url"] == shop.cart_url
    metrics = shop.metrics()
    assert (metrics["triggered"], metrics["sent"], metrics["clicked"]) == (1, 1, 1)


def test_a_purchase_before_the_due_time_cancels_the_text(
    page: Page, shop: Shop, wire: Wire, fake_vonage: FakeVonage
) -> None:
    contact_id = opt_in_and_fill_cart(page, shop, wire, "Ada")
    scheduled = planned(shop, contact_id, wire)
    page.evaluate("() => smsr('purchase', {order_id: 'A-1', value: 19, currency: 'USD'})")
    wire.wait_for("purchase")
    page.close()

    [cancelled] = wait_until(
        lambda: [m for m in shop.automated(contact_id) if m["status"] != "scheduled"],
        "the text to be cancelled",
    )
    assert (cancelled["status"], cancelled["reason"]) == ("cancelled", "converted")
    wait_past_due(scheduled)
    assert fake_vonage.sms_requests == []
    [after] = shop.automated(contact_id)
    assert (after["status"], after["reason"], after["sent_at"]) == ("cancelled", "converted", None)
    metrics = shop.metrics()
    assert (metrics["sent"], metrics["cancelled"]) == (0, {"converted": 1})


def test_stop_before_the_due_time_cancels_the_text_and_only_the_confirmation_goes(
    page: Page, shop: Shop, wire: Wire, fake_vonage: FakeVonage, vonage_collector: Collector
) -> None:
    contact_id = opt_in_and_fill_cart(page, shop, wire, "Lin")
    page.close()
    scheduled = planned(shop, contact_id, wire)

    stop = inbound_message(msisdn=shop.phone, to=shop.sender, text="STOP")
    assert deliver(vonage_collector.url + "/webhooks/vonage/inbound", stop).status_code == 200

    [reply] = wait_until(lambda: fake_vonage.sms_requests, "the STOP confirmation")
    assert (reply.form["to"], reply.form["from"]) == (shop.phone[1:], shop.sender[1:])
    assert "unsubscribed" in reply.form["text"]
    wait_past_due(scheduled)
    assert len(fake_vonage.sms_requests) == 1
    [after] = shop.automated(contact_id)
    assert (after["status"], after["reason"], after["sent_at"]) == ("cancelled", "opted_out", None)
    contact = vonage_collector.api("GET", f"/api/v1/contacts/{contact_id}")
    assert contact["status"] == "opted_out"
    assert [(m["kind"], m["status"]) for m in contact["messages"]] == [
        ("keyword_reply", "sent"),
        ("automation", "cancelled"),
    ]
