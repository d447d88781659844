"""`POST /e` through the real app and a real SQLite file: what is stored, what is refused."""

from __future__ import annotations

import os
import sqlite3
import time
from typing import Any

import pytest
from starlette.testclient import TestClient

from collector.app import create_app
from collector.settings import Settings

from support import DESKTOP_UA, ORIGIN, beacon, event, post, stored


def test_page_view_is_stored_before_202(client: TestClient, site: dict, settings: Settings) -> None:
    response = post(client, beacon(site, event(r="https://www.google.com/")))
    assert response.status_code == 202
    assert response.content == b""
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert "Retry-After" in response.headers["access-control-expose-headers"]
    [row] = stored(settings)
    assert row["name"] == "page_view"
    assert row["visitor_id"] == "visitor-0001"
    assert row["session_id"] == "session-0001"
    assert row["path"] == "/products/tee"
    assert row["title"] == "Tee"
    assert row["props"] == {"referrer": "https://www.google.com/"}


def test_json_content_type_is_accepted_too(
    client: TestClient, site: dict, settings: Settings
) -> None:
    response = post(client, beacon(site), **{"Content-Type": "application/json"})
    assert response.status_code == 202
    assert len(stored(settings)) == 1


def test_utm_parameters_are_parsed_on_the_server(
    client: TestClient, site: dict, settings: Settings
) -> None:
    url = f"{ORIGIN}/?utm_source=newsletter&utm_medium=email&utm_campaign=spring&other=x"
    assert post(client, beacon(site, event(u=url))).status_code == 202
    [row] = stored(settings)
    assert row["props"] == {
        "utm_source": "newsletter",
        "utm_medium": "email",
        "utm_campaign": "spring",
    }


def test_every_snippet_event_keeps_its_fields(
    client: TestClient, site: dict, settings: Settings
) -> None:
    cart = {
        "items": [{"id": "tee", "name": "Tee", "qty": 2, "price": 24.0}],
        "value": 48.0,
        "currency": "usd",
        "url": f"{ORIGIN}/cart",
    }
    events = [
        event("page_view", p={"c": "tok123"}),
        event("pricing_view"),
        event("form_start", p={"f": "contact"}),
        event("form_submit", p={"f": "contact"}),
        event("cart_update", p=cart),
        event("checkout_start"),
        event("purchase", p={"order_id": 1001, "value": 48, "currency": "USD"}),
        event(
            "optin",
            p={"phone": "+14155552671", "first_name": "Ann", "consent_text": "Yes, text me"},
        ),
        event("wishlist_add", p={"sku": "tee", "price": 24.0, "gift": True}),
    ]
    assert post(client, beacon(site, *events)).status_code == 202
    rows = {r["name"]: r["props"] for r in stored(settings)}
    assert rows["page_view"] == {"c": "tok123"}
    assert rows["pricing_view"] == {}
    assert rows["form_start"] == {"f": "contact"}
    assert rows["cart_update"] == {**cart, "currency": "USD"}
    assert rows["checkout_start"] == {}
    assert rows["purchase"] == {"order_id": "1001", "value": 48, "currency": "USD"}
    assert rows["optin"]["consent_text"] == "Yes, text me"
    assert rows["wishlist_add"] == {"sku": "tee", "price": 24.0, "gift": True}


def test_the_snippets_compact_forms_are_stored_in_the_contracts_shape(
    client: TestClient, site: dict, settings: Settings
) -> None:
    label = "  Yes, text me\n      offers.   Reply STOP to cancel. "
    events = [
        event(0, u=f"{ORIGIN}/?smsr=1", p={"c": "tok123", "x": None, "r": "https://ref.example/"}),
        event(0, u=f"{ORIGIN}/plans", p={"x": 1, "r": False}),
        event(2, p={"f": "contact"}),
        event(4, u=f"{ORIGIN}/shop/join", p={"f": ["../subscribe/now?x=1"]}),
        event(4, u=f"{ORIGIN}/shop/join?a=1", p={"f": [None]}),
        event(3),
        event(5, p={"items": [], "value": 0, "currency": "USD"}),
        event(6, p={"order_id": "A-1", "value": 5, "currency": "USD"}),
        event(7, p=["+14155552671", None, label, ["/join"]]),
        event("video_play", p={"s": 3}),
    ]
    assert post(client, beacon(site, *events)).status_code == 202
    rows = stored(settings)
    assert [r["name"] for r in rows] == [
        "page_view",
        "page_view",
        "pricing_view",
        "form_start",
        "form_submit",
        "form_submit",
        "checkout_start",
        "cart_update",
        "purchase",
        "optin",
        "video_play",
    ]
    assert rows[0]["props"] == {"c": "tok123", "referrer": "https://ref.example/"}
    assert rows[1]["props"] == {} and rows[2]["uid"] == rows[1]["uid"] + "p"
    assert [r["props"]["f"] for r in rows[3:6]] == ["contact", "/subscribe/now", "/shop/join"]
    assert rows[9]["props"] == {
        "phone": "+14155552671",
        "first_name": None,
        "consent_text": "Yes, text me offers. Reply STOP to cancel.",
        "f": "/join",
    }
    assert rows[10]["props"] == {"s": 3}


def test_over_long_url_title_referrer_and_form_name_are_cut(
    client: TestClient, site: dict, settings: Settings
) -> None:
    long_url = ORIGIN + "/" + "a" * 5000
    view = event(0, u=long_url, ti="T" * 400, p={"r": "https://ref.example/" + "r" * 3000})
    form = event(4, p={"f": "F" * 150})
    assert post(client, beacon(site, view, form)).status_code == 202
    row, form_row = stored(settings)
    assert row["url"] == long_url[:2048] and row["title"] == "T" * 300
    assert len(row["props"]["referrer"]) == 2048
    assert form_row["props"]["f"] == "F" * 100


def test_fields_outside_the_schema_are_dropped(
    client: TestClient, site: dict, settings: Settings
) -> None:
    sneaky = event("form_submit", p={"f": "signup", "email": "a@example.com"}, extra="x")
    assert post(client, beacon(site, sneaky, junk=1)).status_code == 202
    [row] = stored(settings)
    assert row["props"] == {"f": "signup"}


def test_duplicate_event_ids_are_dropped(
    client: TestClient, site: dict, settings: Settings
) -> None:
    same = event()
    assert post(client, beacon(site, same)).status_code == 202
    assert post(client, beacon(site, same, dict(same))).status_code == 202
    assert len(stored(settings)) == 1
    metrics = client.get("/metrics").text
    assert 'smsr_events_dropped_total{reason="duplicate"} 1' in metrics


def test_pricing_paths_make_a_pricing_view_that_never_doubles(
    client: TestClient, site: dict, settings: Settings, admin: dict
) -> None:
    client.patch(
        f"/api/v1/sites/{site['id']}", json={"pricing_paths": ["/pricing*"]}, headers=admin
    )
    view = event(u=f"{ORIGIN}/pricing/teams")
    snippet_pricing = event("pricing_view", i=view["i"] + "p")
    assert post(client, beacon(site, view, snippet_pricing)).status_code == 202
    assert post(client, beacon(site, event(u=f"{ORIGIN}/about"))).status_code == 202
    names = [r["name"] for r in stored(settings)]
    assert sorted(names) == ["page_view", "page_view", "pricing_view"]


def test_bots_get_202_but_nothing_is_stored(
    client: TestClient, site: dict, settings: Settings
) -> None:
    headless = DESKTOP_UA.replace("Chrome/", "HeadlessChrome/")
    for user_agent in (headless, "Mozilla/5.0 (compatible; Googlebot/2.1)", ""):
        response = post(client, beacon(site), **{"User-Agent": user_agent})
        assert response.status_code == 202
        assert response.headers["x-smsr-dropped"] == "bot"
    assert stored(settings) == []
    assert 'smsr_events_dropped_total{reason="bot"} 3' in client.get("/metrics").text


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"{not json", 400, "malformed"),
        (b"\x00\xff\xfe\x89PNG\r\n\x1a\n" + os.urandom(512), 400, "malformed"),
        (b"[1, 2, 3]", 400, "malformed"),
        ({"v": 2}, 400, "bad_request"),
        ({"v": 1, "k": 7}, 400, "bad_request"),
        ({"vid": "short"}, 400, "bad_request"),
        ({"e": []}, 400, "bad_request"),
        ({"e": "page_view"}, 400, "bad_request"),
        ({"e": [event(n="Page View")]}, 400, "bad_request"),
        ({"e": [event(n="sms_click")]}, 400, "bad_request"),
        ({"e": [event(t="yesterday")]}, 400, "bad_request"),
        ({"e": [event(t=int(time.time() * 1000) - 8 * 86400 * 1000)]}, 400, "stale"),
        ({"e": [event(t=int(time.time() * 1000) + 10 * 60 * 1000)]}, 400, "stale"),
        ({"e": [event(u="javascript:alert(1)")]}, 400, "bad_request"),
        ({"e": [event(u=12)]}, 400, "bad_request"),
        ({"e": [event(n=99)]}, 400, "bad_request"),
        ({"e": [event(n=True)]}, 400, "bad_request"),
        ({"e": [event(n=[0])]}, 400, "bad_request"),
        ({"e": [event(n={"page_view": 1})]}, 400, "bad_request"),
        ({"e": [event(n=0, p={"x": "yes"})]}, 400, "bad_request"),
        ({"e": [event(n=0, p={"r": 5})]}, 400, "bad_request"),
        ({"e": [event(n=7, p=["+14155552671", "Ann"])]}, 400, "bad_request"),
        ({"e": [event(n=4, p={"f": ["/a", "/b"]})]}, 400, "bad_request"),
        ({"e": [event("wishlist", p={"f": ["/a"]})]}, 400, "bad_request"),
        ({"e": [event("wishlist", p={"note": "x" * 501})]}, 413, "too_large"),
        ({"e": [event("wishlist", p={"nested": {"a": 1}})]}, 400, "bad_request"),
        ({"e": [event("cart_update", p={"items": "tee"})]}, 400, "bad_request"),
        ({"e": [event("cart_update", p={"items": [{"qty": -1}]})]}, 400, "bad_request"),
        ({"e": [event("purchase", p={"value": "lots"})]}, 400, "bad_request"),
        ({"e": [event("optin", p={"first_name": "Ann"})]}, 400, "bad_request"),
        ({"e": [event(), event(i="bad id!")]}, 400, "bad_request"),
        ({"e": [event() for _ in range(51)]}, 413, "too_large"),
        ({"k": "no-such-site"}, 403, "unknown_site"),
    ],
)
def test_bad_input_gets_a_4xx_and_stores_nothing(
    client: TestClient, site: dict, settings: Settings, body: Any, status: int, code: str
) -> None:
    if isinstance(body, dict):
        body = {**beacon(site), **body}
    response = post(client, body)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["message"]
    assert stored(settings) == []
    assert client.get("/healthz").status_code == 200


def test_ten_thousand_events_in_one_body_are_refused(
    client: TestClient, site: dict, settings: Settings
) -> None:
    body = beacon(site, *[event() for _ in range(10_000)])
    response = post(client, body)
    assert response.status_code == 413
    assert stored(settings) == []
    small = beacon(site, *[event() for _ in range(10_000)])
    small["e"] = small["e"][:60]
    assert post(client, small).status_code == 413
    assert post(client, beacon(site)).status_code == 202


def test_huge_body_is_413_without_being_read_whole(client: TestClient, site: dict) -> None:
    response = post(client, b"x" * (2 * 1024 * 1024))
    assert response.status_code == 413


def test_wrong_or_missing_origin_is_403(client: TestClient, site: dict, settings: Settings) -> None:
    response = post(client, beacon(site), origin="https://evil.example.net")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "origin_not_allowed"
    assert "access-control-allow-origin" not in response.headers
    assert post(client, beacon(site), origin=None).status_code == 403
    referer = post(client, beacon(site), origin=None, Referer=f"{ORIGIN}/checkout?x=1")
    assert referer.status_code == 202
    assert len(stored(settings)) == 1


def test_unsupported_content_type_is_400(client: TestClient, site: dict) -> None:
    response = post(client, beacon(site), **{"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_content_type"


def test_cors_preflight_only_for_site_origins(client: TestClient, site: dict) -> None:
    allowed = client.options(
        "/e", headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"}
    )
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == ORIGIN
    assert "POST" in allowed.headers["access-control-allow-methods"]
    refused = client.options(
        "/e",
        headers={"Origin": "https://evil.example.net", "Access-Control-Request-Method": "POST"},
    )
    assert refused.status_code == 403
    assert "access-control-allow-origin" not in refused.headers


def rate_limited_client(settings: Settings, **overrides: Any) -> TestClient:
    from dataclasses import replace

    return TestClient(
        create_app(replace(settings, **overrides)), headers={"User-Agent": DESKTOP_UA}
    )


def test_per_ip_rate_limit_answers_429_with_retry_after(settings: Settings, admin: dict) -> None:
    with rate_limited_client(settings, rate_limit_ip=5) as client:
        site = client.post(
            "/api/v1/sites", json={"name": "S", "origins": [ORIGIN]}, headers=admin
        ).json()
        assert post(client, beacon(site, *[event() for _ in range(5)])).status_code == 202
        response = post(client, beacon(site))
        assert response.status_code == 429
        assert int(response.headers["retry-after"]) >= 1
        assert response.headers["access-control-allow-origin"] == ORIGIN
        assert len(stored(settings)) == 5
        assert 'smsr_events_dropped_total{reason="rate_limited"} 1' in client.get("/metrics").text


def test_per_site_rate_limit(settings: Settings, admin: dict) -> None:
    with rate_limited_client(settings, rate_limit_site=3, trust_proxy=True) as client:
        site = client.post(
            "/api/v1/sites", json={"name": "S", "origins": [ORIGIN]}, headers=admin
        ).json()
        for n in range(3):
            ok = post(client, beacon(site), **{"X-Forwarded-For": f"10.0.0.{n}"})
            assert ok.status_code == 202
        limited = post(client, beacon(site), **{"X-Forwarded-For": "10.0.0.9"})
        assert limited.status_code == 429


def test_full_write_queue_answers_503(settings: Settings, admin: dict) -> None:
    with rate_limited_client(settings, write_queue_limit=2) as client:
        site = client.post(
            "/api/v1/sites", json={"name": "S", "origins": [ORIGIN]}, headers=admin
        ).json()
        response = post(client, beacon(site, event(), event(), event()))
        assert response.status_code == 503
        assert response.headers["retry-after"] == "1"
        assert stored(settings) == []
        assert post(client, beacon(site, event(), event())).status_code == 202


def test_site_added_by_another_process_works_without_restart(
    client: TestClient, settings: Settings
) -> None:
    from collector.cli import main

    assert (
        main(["site", "add", "Later", "--origin", "https://later.example.org", "--db", settings.db])
        == 0
    )
    conn = sqlite3.connect(settings.db)
    [key] = conn.execute("select key from sites where name = 'Later'").fetchone()
    conn.close()
    time.sleep(1.1)  # the site cache reloads at most once a second
    body = beacon({"key": key}, event(u="https://later.example.org/"))
    assert post(client, body, origin="https://later.example.org").status_code == 202
