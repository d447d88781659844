"""An opt-in from the real snippet in Chromium ends as a consent ledger record holding the exact
label text the visitor saw, with the browser tied to the new contact."""

from __future__ import annotations

import pytest
from harness import DESKTOP_UA, Collector, Site, SiteServer, Wire, wait_until
from playwright.sync_api import Page

pytestmark = pytest.mark.browser

PHONE = "(415) 555-2671"
E164 = "+14155552671"
# As written in the page: entities, a line break and runs of spaces, which the snippet collapses.
LABEL_HTML = (
    "Yes, text me cart reminders from Test shop &amp; its offers \u2014 up to 1 msg/day.\n"
    "        Msg &amp; data rates may apply.   Reply STOP to cancel."
)
LABEL_TEXT = (
    "Yes, text me cart reminders from Test shop & its offers \u2014 up to 1 msg/day. "
    "Msg & data rates may apply. Reply STOP to cancel."
)
FORM = (
    '<form data-smsr-optin data-smsr-form="sms" onsubmit="event.preventDefault()">'
    '<input name="first_name" value="Lin">'
    f'<input type="tel" name="phone" value="{PHONE}">'
    f'<input type="checkbox" id="agree" data-smsr-consent><label for="agree">{LABEL_HTML}</label>'
    '<button id="join">Join</button></form>'
)


def test_a_snippet_optin_becomes_a_ledger_record_with_the_exact_label(
    page: Page, site: Site, site_server: SiteServer, wire: Wire, collector: Collector
) -> None:
    url = site_server.page(site.key, FORM, path="/sms-signup")
    page.goto(url)
    wire.wait_for("page_view")
    page.check("#agree")
    page.click("#join")
    wire.wait_for("optin")

    def contact() -> dict | None:
        found = collector.api("GET", f"/api/v1/contacts?site_id={site.id}&phone={E164[1:]}")
        if not found["items"]:
            return None
        return collector.api("GET", f"/api/v1/contacts/{found['items'][0]['id']}")

    detail = wait_until(contact, "the contact", pause=wire.pause)
    assert detail["phone"] == E164 and detail["first_name"] == "Lin"
    assert detail["status"] == "pending"  # double opt-in is on by default
    [record] = detail["consents"]
    assert record["consent_text"] == LABEL_TEXT
    assert (record["kind"], record["source"]) == ("opt_in", "web_form")
    assert record["page_url"] == url
    assert record["user_agent"] == DESKTOP_UA and record["ip"] == "127.0.0.1"
    assert record["visitor_id"] == wire.bodies[0]["vid"]
    assert detail["consent_chain"]["valid"] is True
    # the page view before the opt-in belongs to the contact now
    names = {e["name"] for e in detail["events"]}
    assert {"page_view", "optin"} <= names
    assert [v["visitor_id"] for v in detail["visitors"]] == [record["visitor_id"]]

    def confirmation() -> list:
        items = collector.api("GET", f"/api/v1/messages?contact_id={detail['id']}")["items"]
        return [m for m in items if m["status"] == "sent"]

    [text] = wait_until(confirmation, "the confirmation text", pause=wire.pause)
    assert text["kind"] == "confirmation" and "Reply YES to confirm" in text["body"]
