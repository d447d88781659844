"""The snippet (collector/static/s.js) in a real Chromium against the real collector.

Every test checks what arrived in the collector's database (admin API) and, where privacy is the
point, what went over the wire at all. `wire.events()` reads the compact wire format as the
collector does (names for event codes, the opt-in form's list as an object); `wire.bodies` and
`wire.raw` are as sent.
"""

from __future__ import annotations

import json
import time

import pytest
from harness import Collector, Site, SiteServer, Wire
from playwright.sync_api import BrowserContext, Page

pytestmark = pytest.mark.browser

PHONE = "+1 650-253-0000"
CONSENT_LABEL = (
    "Yes, text me cart reminders from Test shop.\n      Up to 1 msg/day.   Reply STOP to cancel."
)
CONSENT_TEXT = "Yes, text me cart reminders from Test shop. Up to 1 msg/day. Reply STOP to cancel."


def optin_form(required: bool = True) -> str:
    req = " required" if required else ""
    return (
        '<form id="join" data-smsr-optin data-smsr-form="sms-optin" onsubmit="event.preventDefault()">'
        '<input name="first_name" value="Ada">'
        f'<input type="tel" name="phone" value="{PHONE}">'
        f'<input type="checkbox" id="ok" data-smsr-consent{req}>'
        f'<label for="ok">{CONSENT_LABEL}</label>'
        '<button id="send">Sign up</button></form>'
    )


def sent(wire: Wire) -> list[dict]:
    """The events as they went over the wire, compact."""
    return [e for body in wire.bodies for e in body["e"]]


def backlog(page: Page) -> list[dict]:
    """The events kept in localStorage for the next page load."""
    return json.loads(storage(page).get("smsr_q", "[]"))


def storage(page: Page) -> dict[str, str]:
    """Our keys in localStorage and sessionStorage, non-empty ones only."""
    return page.evaluate(
        """() => Object.fromEntries([localStorage, sessionStorage].flatMap(s =>
            Object.keys(s).filter(k => k.startsWith('smsr_') && s.getItem(k))
              .map(k => [k, s.getItem(k)])))"""
    )


def test_landing_page_view_carries_url_title_referrer_and_ids(
    page: Page, site: Site, site_server: SiteServer, wire: Wire
) -> None:
    url = site_server.page(site.key, "<h1>Hello</h1>", title="Landing")
    before = int(time.time() * 1000)
    page.goto(url + "?utm_source=news", referer="https://ref.example/article")

    (view,) = wire.wait_for("page_view")
    body = wire.bodies[0]
    assert body["v"] == 1 and body["k"] == site.key
    assert body["e"][0]["n"] == 0, "built-in events go by their code"
    assert view["u"] == url + "?utm_source=news" and view["ti"] == "Landing"
    assert view["r"] == "https://ref.example/article"
    assert body["e"][0]["p"]["r"] == view["r"], "sent in p, read as the event's r"
    assert before <= view["t"] <= int(time.time() * 1000)
    ids = storage(page)
    assert body["vid"] == ids["smsr_vid"] and body["sid"] == ids["smsr_sid"]

    (stored,) = site.wait_for("page_view")
    assert stored["url"] == view["u"] and stored["visitor_id"] == body["vid"]
    assert stored["props"]["referrer"] == "https://ref.example/article"
    assert stored["props"]["utm_source"] == "news"

    # The same visitor next time, in a new session of the same browser.
    page.goto(url)
    wire.wait_for("page_view", 2)
    assert wire.bodies[-1]["vid"] == body["vid"]
    assert "r" not in wire.events("page_view")[1]


def test_pricing_marker_makes_the_collector_add_a_pricing_view(
    page: Page, site: Site, site_server: SiteServer, wire: Wire
) -> None:
    page.goto(site_server.page(site.key, '<section data-smsr-intent="pricing">Pro $29</section>'))
    (view,) = wire.wait_for("page_view")
    assert view["x"] == 1, "the page view says the marker is there"
    site.wait_for("page_view", "pricing_view")
    # A page without the marker: a page view only.
    page.goto(site_server.page(site.key, "<section>About us</section>"))
    (_, plain) = wire.wait_for("page_view", 2)
    assert not plain["x"]
    site.wait_for("page_view", count=2)
    assert [e["name"] for e in site.events()].count("pricing_view") == 1
    assert not wire.events("pricing_view"), "the snippet never sends pricing_view itself"


def test_js_api_calls_arrive_with_their_props(
    page: Page, site: Site, site_server: SiteServer, wire: Wire
) -> None:
    page.goto(site_server.page(site.key))
    wire.wait_for("page_view")
    page.evaluate(
        """() => {
        smsr('track', 'video_play', {title: 'Intro', seconds: 30, muted: true});
        smsr('cart', {items: [{id: 'sku1', name: 'Mug', qty: 2, price: 9.5}], value: 19,
                      currency: 'USD', url: location.href});
        smsr('checkout');
        smsr('purchase', {order_id: 'A-1', value: 19, currency: 'USD'});
        smsr('optin', {phone: '+1 650-253-0000', first_name: 'Ada', consent_text: 'Yes, text me'});
    }"""
    )
    events = site.wait_for("video_play", "cart_update", "checkout_start", "purchase", "optin")
    by_name = {e["name"]: e for e in events}
    assert by_name["video_play"]["props"] == {"title": "Intro", "seconds": 30, "muted": True}
    cart = by_name["cart_update"]["props"]
    assert cart["items"] == [{"id": "sku1", "name": "Mug", "qty": 2, "price": 9.5}]
    assert (cart["value"], cart["currency"], cart["url"]) == (19, "USD", page.url)
    assert by_name["purchase"]["props"] == {"order_id": "A-1", "value": 19, "currency": "USD"}
    assert by_name["optin"]["props"]["phone"] == PHONE
    assert by_name["optin"]["props"]["consent_text"] == "Yes, text me"
    assert all(e["visitor_id"] == wire.bodies[0]["vid"] for e in events)
    for e in wire.events():
        assert e["u"] == page.url and e["ti"] == "Test page" and 8 <= len(e["i"]) <= 64


def test_misuse_of_the_api_throws_and_sends_nothing(
    page: Page, site: Site, site_server: SiteServer, wire: Wire
) -> None:
    page.goto(site_server.page(site.key))
    wire.wait_for("page_view")
    errors = page.evaluate(
        """() => [['track', 'Bad Name'], ['track', 'x'.repeat(41)], ['nonsense']].map(args => {
            try { smsr(...args); return null } catch (e) { return String(e) } })"""
    )
    assert all(e and e.startswith("Error: smsr") for e in errors)
    page.evaluate("() => smsr('purchase', {order_id: 'B', value: 1, currency: 'USD'})")
    wire.wait_for("purchase")
    assert {e["n"] for e in wire.events()} == {"page_view", "purchase"}


def test_spa_navigations_are_page_views_and_hash_changes_are_not(
    page: Page, site: Site, site_server: SiteServer, wire: Wire
) -> None:
    url = site_server.page(site.key, path="/spa/a")
    page.goto(url)
    wire.wait_for("page_view")
    page.evaluate("() => { history.pushState({}, '', '/spa/b'); document.title = 'B' }")
    wire.wait_for("page_view", 2)
    page.evaluate("() => { location.hash = 'top' }")
    page.evaluate("() => history.replaceState(null, '', '/spa/c')")
    wire.wait_for("page_view", 3)
    page.go_back()  # to /spa/b#top's entry... which replaceState made /spa/c; so /spa/b
    wire.wait_for("page_view", 4)
    page.evaluate("() => smsr('purchase', {order_id: 'S', value: 1, currency: 'USD'})")
    wire.wait_for("purchase")

    views = wire.events("page_view")
    origin = site_server.url
    assert [v["u"] for v in views] == [
        origin + "/spa/a",
        origin + "/spa/b",
        origin + "/spa/c",
        origin + "/spa/b",
    ]
    assert views[1]["ti"] == "B", "the title set right after pushState is recorded"
    assert "r" not in views[1]
    site.wait_for("page_view", count=4)


def test_forms_start_once_per_page_view_and_submit_without_values(
    page: Page, site: Site, site_server: SiteServer, wire: Wire
) -> None:
    stop = ' onsubmit="event.preventDefault()"'
    body = (
        f'<form data-smsr-form="quote" id="f1"{stop}><input id="a"><button id="s1">Go</button></form>'
        f'<form id="contact"{stop}><select id="b"><option>x</option><option>y</option></select></form>'
        f'<form name="newsletter"{stop}><input id="c"></form>'
        f'<form action="/subscribe/now?x=1"{stop}><textarea id="d"></textarea>'
        '<button id="s4">Go</button></form>'
        f'<form data-smsr-ignore id="secret"{stop}><input id="e"><button id="s5">Go</button></form>'
        f'<form id="prefs"{stop}><input type="checkbox" id="g"></form>'
    )
    page.goto(site_server.page(site.key, body))
    wire.wait_for("page_view")
    page.fill("#a", "top-secret-1")
    page.type("#a", "more")
    page.select_option("#b", "y")
    page.fill("#c", "top-secret-2")
    page.fill("#d", "top-secret-3")
    page.fill("#e", "top-secret-4")
    page.check("#g")
    page.click("#s1")
    page.click("#s4")
    page.click("#s5")
    wire.wait_for("form_submit", 2)
    wire.wait_for("form_start", 5)

    starts = [e["p"]["f"] for e in wire.events("form_start")]
    assert sorted(starts) == sorted(["quote", "contact", "newsletter", "/subscribe/now", "prefs"])
    assert [e["p"]["f"] for e in wire.events("form_submit")] == ["quote", "/subscribe/now"]
    # A form named by its action: the snippet sends the attribute, the collector makes the path.
    assert {"f": ["/subscribe/now?x=1"]} in [e["p"] for e in sent(wire) if e["n"] == 4]
    stored = site.wait_for("form_submit", count=2)
    assert {e["props"]["f"] for e in stored if e["name"] == "form_submit"} == {
        "quote",
        "/subscribe/now",
    }

    # A new page view (SPA) starts forms afresh.
    page.evaluate("() => history.pushState({}, '', '/next')")
    wire.wait_for("page_view", 2)
    page.fill("#a", "top-secret-5")
    wire.wait_for("form_start", 6)
    page.evaluate("() => smsr('purchase', {order_id: 'F', value: 1, currency: 'USD'})")
    wire.wait_for("purchase")
    assert len(wire.events("form_start")) == 6
    assert not any("top-secret" in raw or "more" in raw for raw in wire.raw)
    site.wait_for("form_start", count=6)


def test_optin_form_with_the_box_ticked_sends_the_optin(
    page: Page, site: Site, site_server: SiteServer, wire: Wire
) -> None:
    page.goto(site_server.page(site.key, optin_form()))
    wire.wait_for("page_view")
    page.check("#ok")
    page.click("#send")
    (optin,) = wire.wait_for("optin")
    assert optin["p"] == {
        "phone": PHONE,
        "first_name": "Ada",
        "consent_text": CONSENT_TEXT,
        "f": "sms-optin",
    }
    # As sent: [phone, first name, the label's text as in the page, form]; the collector
    # collapses the whitespace.
    (compact,) = [e for e in sent(wire) if e["n"] == 7]
    assert compact["p"] == [PHONE, "Ada", CONSENT_LABEL, "sms-optin"]
    events = site.wait_for("optin", "form_submit")
    stored = next(e for e in events if e["name"] == "optin")
    assert stored["props"]["consent_text"] == CONSENT_TEXT


def test_optin_form_with_a_wrapping_label(
    page: Page, site: Site, site_server: SiteServer, wire: Wire
) -> None:
    form = (
        '<form data-smsr-optin onsubmit="event.preventDefault()">'
        '<input autocomplete="given-name" value="Bo"><input name="mobile_phone" value="6502530000">'
        "<label><input type=checkbox data-smsr-consent>  Text   me\n offers </label>"
        '<button id="send">Go</button></form>'
    )
    page.goto(site_server.page(site.key, form, path="/join/now"))
    page.check("input[type=checkbox]")
    page.click("#send")
    (optin,) = wire.wait_for("optin")
    assert optin["p"] == {
        "phone": "6502530000",
        "first_name": "Bo",
        "consent_text": "Text me offers",
        "f": "/join/now",
    }


def test_optin_form_without_the_box_ticked_sends_no_phone(
    page: Page, site: Site, site_server: SiteServer, wire: Wire
) -> None:
    page.goto(site_server.page(site.key, optin_form(required=False)))
    wire.wait_for("page_view")
    page.click("#send")
    (submit,) = wire.wait_for("form_submit")
    assert submit["p"] == {"f": "sms-optin"}
    site.wait_for("form_submit")
    digits = "6502530000"
    assert not wire.events("optin")
    assert not any(
        PHONE in raw or digits in raw.replace("-", "").replace(" ", "") for raw in wire.raw
    )
    assert not site.events("optin")


def test_a_cart_change_right_before_the_page_closes_is_delivered(
    context: BrowserContext, site: Site, site_server: SiteServer
) -> None:
    page = context.new_page()
    page.goto(site_server.page(site.key))
    page.evaluate(
        """() => {
        smsr('track', 'leaving');  // batched: goes out with the page's beacon
        smsr('cart', {items: [{id: 'sku9', name: 'Lamp', qty: 1, price: 40}], value: 40,
                      currency: 'USD', url: location.href});
    }"""
    )
    page.close()
    events = site.wait_for("cart_update", "leaving")
    (cart,) = [e for e in events if e["name"] == "cart_update"]
    assert cart["props"]["items"][0]["id"] == "sku9"


@pytest.mark.parametrize(
    "signal",
    [
        "Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', {get: () => true})",
        "Object.defineProperty(Navigator.prototype, 'doNotTrack', {get: () => '1'})",
    ],
    ids=["gpc", "dnt"],
)
def test_privacy_signal_records_nothing_but_a_submitted_optin(
    context: BrowserContext, site: Site, site_server: SiteServer, wire: Wire, signal: str
) -> None:
    context.add_init_script(signal)
    page = context.new_page()
    body = '<section data-smsr-intent="pricing"></section>' + optin_form()
    page.goto(site_server.page(site.key, body))
    page.evaluate(
        """() => { smsr('track', 'seen'); smsr('cart', {items: [], value: 0, currency: 'USD'});
                   history.pushState({}, '', '/elsewhere') }"""
    )
    page.check("#ok")
    page.click("#send")
    wire.wait_for("optin")
    site.wait_for("optin")
    page.evaluate("() => history.pushState({}, '', '/more')")
    page.wait_for_timeout(1500)  # past the batch delay: anything recorded would be on its way
    assert [e["n"] for e in wire.events()] == ["optin"]
    assert [e["name"] for e in site.events()] == ["optin"]
    assert storage(page) == {}


def test_calls_made_before_the_script_loads_are_replayed_in_order(
    page: Page, site: Site, site_server: SiteServer, collector: Collector, wire: Wire
) -> None:
    early = (
        "<script>smsr('track', 'early', {step: 1});"
        "smsr('cart', {items: [{id: 'e1', qty: 1, price: 5}], value: 5, currency: 'USD'});"
        "smsr('track', 'later', {step: 2});</script>"
    )
    url = site_server.page(
        site.key,
        head=early,
        script=site_server.url + "/slow/s.js?ms=700",
        attrs=f'data-api="{collector.url}/"',
    )
    page.goto(url, wait_until="domcontentloaded")  # "load" would wait for the script
    assert page.evaluate("() => smsr.q.length") == 3, "the stub queued the calls"
    site.wait_for("early", "cart_update", "later")
    names = [e["n"] for e in wire.events() if e["n"] != "page_view"]
    assert names == ["early", "cart_update", "later"]
    assert page.evaluate("() => !('q' in smsr)"), "the stub was replaced"


def test_require_consent_holds_everything_until_consent(
    page: Page, site: Site, site_server: SiteServer, wire: Wire
) -> None:
    url = site_server.page(site.key, optin_form(), attrs='data-require-consent="true"')
    page.goto(url)
    page.evaluate("() => smsr('track', 'before_consent')")
    # An opt-in the visitor submits is still sent: submitting it is consent to that.
    page.check("#ok")
    page.click("#send")
    wire.wait_for("optin")
    page.wait_for_timeout(1200)  # past the batch delay
    assert [e["n"] for e in wire.events()] == ["optin"]
    assert storage(page) == {}, "nothing stored before consent"

    page.evaluate("() => smsr('consent', true)")
    site.wait_for("page_view", "before_consent", "optin")
    stored = storage(page)
    assert stored["smsr_vid"] == wire.bodies[-1]["vid"] == wire.bodies[0]["vid"]

    # Remembered on the next page load.
    page.reload()
    wire.wait_for("page_view", 2)

    page.evaluate("() => { smsr('consent', false); smsr('track', 'after_refusal') }")
    page.evaluate("() => smsr('optin', {phone: '+1 650-253-0000', consent_text: 'Yes'})")
    wire.wait_for("optin", 2)
    page.wait_for_timeout(1200)
    assert not wire.events("after_refusal")
    assert "smsr_vid" not in storage(page)
    page.reload()
    page.evaluate("() => smsr('purchase', {order_id: 'C', value: 1, currency: 'USD'})")
    page.wait_for_timeout(1200)
    assert len(wire.events("page_view")) == 2 and not wire.events("purchase")


def test_link_token_is_sent_once_and_removed_from_the_address_bar(
    page: Page, site: Site, site_server: SiteServer, wire: Wire
) -> None:
    url = site_server.page(site.key, path="/offer")
    page.goto(url + "?x=1&smsr_c=tok_ABC-123&y=2#deal")
    (view,) = wire.wait_for("page_view")
    assert view["p"] == {"c": "tok_ABC-123"}
    assert view["u"] == url + "?x=1&y=2#deal"
    assert page.evaluate("() => location.href") == url + "?x=1&y=2#deal"
    page.evaluate("() => smsr('purchase', {order_id: 'T', value: 1, currency: 'USD'})")
    wire.wait_for("purchase")
    page.wait_for_timeout(500)  # past the SPA page view delay
    assert len(wire.events("page_view")) == 1
    site.wait_for("page_view")

    page.goto(url + "?smsr_c=only")
    (_, second) = wire.wait_for("page_view", 2)
    assert second["u"] == url and second["p"] == {"c": "only"}


def test_a_batch_that_failed_is_sent_on_the_next_page_load(
    context: BrowserContext, site: Site, site_server: SiteServer, collector: Collector, wire: Wire
) -> None:
    context.route(collector.url + "/e", lambda route: route.abort())
    page = context.new_page()
    url = site_server.page(site.key)
    page.goto(url)
    page.evaluate("() => smsr('purchase', {order_id: 'R', value: 3, currency: 'USD'})")
    wire.wait_until(lambda: len(backlog(page)) == 2, "the failed batch to be kept")
    assert not site.events()
    context.unroute(collector.url + "/e")
    page.goto(url)
    events = site.wait_for("purchase", "page_view", count=1)
    assert [e["props"]["order_id"] for e in events if e["name"] == "purchase"] == ["R"]
    wire.wait_until(lambda: backlog(page) == [], "the backlog to be cleared")


def test_429_is_retried_after_retry_after_and_400_is_dropped(
    context: BrowserContext, site: Site, site_server: SiteServer, collector: Collector, wire: Wire
) -> None:
    answers = [429, 400]
    cors = {
        "Access-Control-Allow-Origin": site_server.url,
        "Access-Control-Expose-Headers": "Retry-After",
    }

    def answer(route) -> None:
        if answers:
            status = answers.pop(0)
            route.fulfill(status=status, headers={**cors, "Retry-After": "1"}, body="")
        else:
            route.continue_()

    context.route(collector.url + "/e", answer)
    page = context.new_page()
    page.goto(site_server.page(site.key))
    page.evaluate("() => smsr('purchase', {order_id: 'P1', value: 3, currency: 'USD'})")
    # 429: kept; after Retry-After the retry is answered 400 and dropped for good.
    wire.wait_until(lambda: len(wire.bodies) >= 2, "the retry after 429")
    assert wire.bodies[0] == wire.bodies[1] or wire.bodies[1]["e"][0] == wire.bodies[0]["e"][0]
    page.evaluate("() => smsr('purchase', {order_id: 'P2', value: 3, currency: 'USD'})")
    site.wait_for("purchase")
    assert [e["props"]["order_id"] for e in site.events("purchase")] == ["P2"]
    assert json.loads(wire.raw[-1])["e"][-1]["p"]["order_id"] == "P2"


def test_a_page_restored_from_the_back_forward_cache_is_a_page_view(
    page: Page, site: Site, site_server: SiteServer, wire: Wire
) -> None:
    page.goto(site_server.page(site.key))
    wire.wait_for("page_view")
    # Playwright's Chromium keeps no back/forward cache, so the restore is simulated by its event.
    page.evaluate(
        "() => { dispatchEvent(new PageTransitionEvent('pageshow', {persisted: true}));"
        "        dispatchEvent(new PageTransitionEvent('pageshow', {persisted: false})) }"
    )
    first, again = wire.wait_for("page_view", 2)
    assert again["u"] == first["u"] and again["i"] != first["i"] and "r" not in again
    site.wait_for("page_view", count=2)
