"""Tracked links: creating them, `GET /r/{code}`, and the landing page view that ties a browser."""

from __future__ import annotations

import asyncio
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from starlette.testclient import TestClient

from collector import links
from collector.db import Database
from collector.settings import Settings
from collector.sites import Site

from automation_support import add_contact, add_message, sql
from support import DESKTOP_UA, ORIGIN, beacon, event, post, stored

CART = f"{ORIGIN}/cart?coupon=SPRING%2010&x=1#items"


def make_link(settings: Settings, **fields: Any) -> str:
    async def run() -> str:
        db = await Database.open(settings.db)
        try:
            return await links.create_link(db, **fields)
        finally:
            await db.close()

    return asyncio.run(run())


@pytest.fixture
def texted(site: dict, settings: Settings) -> dict[str, Any]:
    """A contact with a sent text whose link leads to the cart."""
    contact = add_contact(settings, site["id"])
    message = add_message(settings, site_id=site["id"], contact_id=contact, status="sent")
    code = make_link(settings, site_id=site["id"], contact_id=contact, message_id=message, url=CART)
    return {"contact": contact, "message": message, "code": code}


def clicks(settings: Settings) -> list[dict[str, Any]]:
    with sql(settings) as conn:
        return [dict(r) for r in conn.execute("select * from link_clicks order by id")]


def follow(client: TestClient, code: str, **headers: str) -> Any:
    return client.get(f"/r/{code}", headers=headers, follow_redirects=False)


def test_codes_are_short_url_safe_and_unguessable(site: dict, settings: Settings) -> None:
    contact = add_contact(settings, site["id"])
    codes = {
        make_link(settings, site_id=site["id"], contact_id=contact, message_id=None, url=CART)
        for _ in range(20)
    }
    assert len(codes) == 20
    for code in codes:
        assert re.fullmatch(r"[A-Za-z0-9_-]{11}", code)  # 8 random bytes: 64 bits


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example.net/cart",
        "javascript:alert(1)",
        "https://user@shop.example.com/cart",
        "//shop.example.com/cart",
        "http://shop.example.com/cart",
        "",
    ],
)
def test_links_only_lead_to_the_sites_origins(site: dict, settings: Settings, url: str) -> None:
    contact = add_contact(settings, site["id"])
    with pytest.raises(links.LinkRefused):
        make_link(settings, site_id=site["id"], contact_id=contact, message_id=None, url=url)


def test_link_url_and_choose_target(
    client: TestClient, admin: dict, site: dict, settings: Settings
) -> None:
    assert links.link_url("https://t.example.org/", "abc") == "https://t.example.org/r/abc"
    origins = {"origins": ["http://localhost:3000", ORIGIN]}
    assert client.patch(f"/api/v1/sites/{site['id']}", json=origins, headers=admin).is_success
    with sql(settings) as conn:
        shop = Site.from_row(conn.execute("select * from sites").fetchone())
    page = f"{ORIGIN}/pricing"
    assert links.choose_target(shop, CART, page) == CART
    assert links.choose_target(shop, "https://evil.example.net/", page) == page
    assert links.choose_target(shop, None, "http://localhost:3000/p") == "http://localhost:3000/p"
    assert links.choose_target(shop, None, "ftp://x") == f"{ORIGIN}/"


def test_with_token_keeps_the_query_and_fragment() -> None:
    assert links.with_token(CART, "T") == (f"{ORIGIN}/cart?coupon=SPRING%2010&x=1&smsr_c=T#items")
    assert links.with_token(f"{ORIGIN}/", "T") == f"{ORIGIN}/?smsr_c=T"
    assert links.with_token(f"{ORIGIN}/?smsr_c=old&a=1", "T") == f"{ORIGIN}/?a=1&smsr_c=T"


def test_a_click_is_recorded_and_redirected_with_a_token(
    client: TestClient, site: dict, settings: Settings, texted: dict
) -> None:
    response = follow(client, texted["code"])
    assert response.status_code == 302
    assert response.headers["cache-control"] == "no-store"
    location = response.headers["location"]
    assert location.startswith(f"{ORIGIN}/cart?coupon=SPRING%2010&x=1&smsr_c=")
    assert location.endswith("#items")
    token = parse_qs(urlsplit(location).query)["smsr_c"][0]
    assert len(token) >= 24
    [row] = clicks(settings)
    assert (row["code"], row["token"], row["ip"], row["user_agent"]) == (
        texted["code"],
        token,
        "testclient",
        DESKTOP_UA,
    )
    assert row["visitor_id"] is None
    [click] = [e for e in stored(settings) if e["name"] == "sms_click"]
    assert click["uid"] == f"click-{token}"
    assert click["contact_id"] == texted["contact"]
    assert click["site_id"] == site["id"]
    assert click["props"] == {"message_id": texted["message"], "code": texted["code"]}
    # Every click gets its own token.
    second = follow(client, texted["code"]).headers["location"]
    assert second != location
    assert len(clicks(settings)) == 2


def test_unknown_codes_get_a_small_html_404(client: TestClient) -> None:
    for code in ("nope1234567", "a" * 65, "bad%20code", "x.y"):
        response = follow(client, code)
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("text/html")
        assert "This link does not work" in response.text
        assert "Traceback" not in response.text


def test_bots_and_head_requests_are_redirected_but_not_counted(
    client: TestClient, settings: Settings, texted: dict
) -> None:
    for agent in ("facebookexternalhit/1.1", "Slackbot-LinkExpanding 1.0", ""):
        response = follow(client, texted["code"], **{"User-Agent": agent})
        assert response.status_code == 302
        assert response.headers["location"] == CART
    head = client.head(f"/r/{texted['code']}", follow_redirects=False)
    assert (head.status_code, head.headers["location"]) == (302, CART)
    assert clicks(settings) == []
    assert [e for e in stored(settings) if e["name"] == "sms_click"] == []
    assert follow(client, "nope1234567", **{"User-Agent": "Googlebot/2.1"}).status_code == 404


def landing(client: TestClient, site: dict, token: str, visitor: str) -> Any:
    view = event("page_view", u=f"{ORIGIN}/cart?x=1", p={"c": token})
    return post(client, beacon(site, view, vid=visitor))


def test_the_landing_page_view_ties_the_browser_to_the_contact(
    client: TestClient, site: dict, settings: Settings, texted: dict
) -> None:
    visitor = "visitor-from-text"
    assert post(client, beacon(site, event("page_view"), vid=visitor)).status_code == 202
    location = follow(client, texted["code"]).headers["location"]
    token = parse_qs(urlsplit(location).query)["smsr_c"][0]
    assert landing(client, site, token, visitor).status_code == 202
    with sql(settings) as conn:
        tie = conn.execute("select * from contact_visitors").fetchone()
    assert (tie["visitor_id"], tie["contact_id"], tie["source"]) == (
        visitor,
        texted["contact"],
        "link",
    )
    [row] = clicks(settings)
    assert row["visitor_id"] == visitor and row["tied_at"] is not None
    # Earlier and later events of that browser are the contact's, and so is the click.
    assert post(client, beacon(site, event("checkout_start"), vid=visitor)).status_code == 202
    events = stored(settings)
    assert [e["name"] for e in events] == ["page_view", "sms_click", "page_view", "checkout_start"]
    assert {e["contact_id"] for e in events} == {texted["contact"]}
    assert {e["visitor_id"] for e in events} == {visitor}


def test_unknown_and_foreign_tokens_are_ignored(
    client: TestClient, admin: dict, site: dict, settings: Settings, texted: dict
) -> None:
    assert landing(client, site, "not-a-real-token", "visitor-0001").status_code == 202
    other = client.post(
        "/api/v1/sites", json={"name": "Other", "origins": [ORIGIN]}, headers=admin
    ).json()
    token = parse_qs(urlsplit(follow(client, texted["code"]).headers["location"]).query)
    assert landing(client, other, token["smsr_c"][0], "visitor-0002").status_code == 202
    with sql(settings) as conn:
        assert conn.execute("select count(*) from contact_visitors").fetchone()[0] == 0
    assert all(e["contact_id"] is None for e in stored(settings) if e["name"] == "page_view")


def test_a_token_ties_one_browser_only(
    client: TestClient, site: dict, settings: Settings, texted: dict
) -> None:
    location = follow(client, texted["code"]).headers["location"]
    token = parse_qs(urlsplit(location).query)["smsr_c"][0]
    assert landing(client, site, token, "visitor-first").status_code == 202
    assert landing(client, site, token, "visitor-forwarded").status_code == 202
    assert landing(client, site, token, "visitor-first").status_code == 202  # a retry is fine
    with sql(settings) as conn:
        tied = [r[0] for r in conn.execute("select visitor_id from contact_visitors")]
    assert tied == ["visitor-first"]


def test_a_link_that_leads_off_the_site_lands_on_the_site_instead(
    client: TestClient, site: dict, settings: Settings
) -> None:
    contact = add_contact(settings, site["id"])
    with sql(settings) as conn:
        conn.execute(
            "insert into links (code, site_id, contact_id, url, created_at) "
            "values ('offsite0001', ?, ?, 'https://evil.example.net/login', 0)",
            (site["id"], contact),
        )
    location = follow(client, "offsite0001").headers["location"]
    assert location.startswith(f"{ORIGIN}/?smsr_c=")
    bot = follow(client, "offsite0001", **{"User-Agent": "Twitterbot/1.0"})
    assert bot.headers["location"] == f"{ORIGIN}/"
    [click] = [e for e in stored(settings) if e["name"] == "sms_click"]
    assert click["url"] == f"{ORIGIN}/"
