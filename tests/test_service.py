"""The service around ingest: the snippet file, health, metrics, retention and the demo shop."""

from __future__ import annotations

import sqlite3
import time
from html.parser import HTMLParser

import pytest
from starlette.testclient import TestClient

from collector.app import create_app
from collector.db import Database
from collector.retention import purge_old_events
from collector.settings import Settings
from collector.snippet import SNIPPET_PATH

from support import beacon, event, post


def test_snippet_is_served_with_caching_headers(client: TestClient) -> None:
    response = client.get("/s.js", headers={"Accept-Encoding": "identity"})
    assert response.status_code == 200
    assert response.content == SNIPPET_PATH.read_bytes()
    assert response.headers["content-type"].startswith("application/javascript")
    assert "max-age" in response.headers["cache-control"]
    etag = response.headers["etag"]
    again = client.get("/s.js", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    changed = client.get("/s.js", headers={"If-None-Match": '"stale"'})
    assert changed.status_code == 200


def test_snippet_is_gzipped_for_browsers_that_take_it(client: TestClient) -> None:
    response = client.get("/s.js", headers={"Accept-Encoding": "gzip, br"})
    assert response.headers["content-encoding"] == "gzip"
    assert response.headers["vary"] == "Accept-Encoding"
    assert response.content == SNIPPET_PATH.read_bytes()  # the client decoded it


def test_healthz_and_metrics(client: TestClient, site: dict) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    post(client, beacon(site, event("page_view"), event("checkout_start")))
    post(client, b"{", origin=None)
    text = client.get("/metrics").text
    assert 'smsr_events_accepted_total{name="page_view"} 1' in text
    assert 'smsr_events_accepted_total{name="checkout_start"} 1' in text
    assert 'smsr_http_requests_total{method="POST",route="/e",status="202"} 1' in text
    assert 'smsr_http_requests_total{method="POST",route="/e",status="400"} 1' in text
    assert 'smsr_http_request_duration_seconds_count{route="/e"} 2' in text
    assert "smsr_write_queue_events 0" in text


def test_secret_key_is_generated_once_and_kept(settings: Settings) -> None:
    for _ in range(2):
        with TestClient(create_app(settings)) as client:
            assert client.get("/healthz").status_code == 200
    conn = sqlite3.connect(settings.db)
    rows = conn.execute("select value from instance_keys where name = 'secret_key'").fetchall()
    assert len(rows) == 1 and len(rows[0][0]) >= 32


@pytest.mark.asyncio
async def test_retention_deletes_only_old_anonymous_events(settings: Settings) -> None:
    db = await Database.open(settings.db)
    try:
        async with db.transaction() as conn:
            await conn.execute(
                "insert into sites (key, secret, name, origins, timezone, allowed_countries,"
                " created_at) values ('k', 's', 'S', '[]', 'UTC', ?, '')",
                ('["US"]',),
            )
            now = int(time.time() * 1000)
            day = 86400 * 1000
            rows = [
                ("old-anon", None, now - 200 * day),
                ("old-known", 7, now - 200 * day),
                ("new-anon", None, now - 10 * day),
            ]
            for uid, contact, at in rows:
                await conn.execute(
                    "insert into events (site_id, uid, name, contact_id, at, received_at)"
                    " values (1, ?, 'page_view', ?, ?, ?)",
                    (uid, contact, at, at),
                )
        assert await purge_old_events(db, 180, now) == 1
        left = {r["uid"] for r in await db.fetchall("select uid from events")}
        assert left == {"old-known", "new-anon"}
    finally:
        await db.close()


class Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []
        self.forms: list[dict[str, str | None]] = []
        self.intents: list[str | None] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "script" and "src" in attributes:
            self.scripts.append(attributes)
        if tag == "form":
            self.forms.append(attributes)
        if "data-smsr-intent" in attributes:
            self.intents.append(attributes["data-smsr-intent"])


def test_demo_shop_pages_carry_the_script_tag(settings: Settings) -> None:
    with TestClient(create_app(settings, demo_site_key="demo-key")) as client:
        for page in ("/demo/", "/demo/pricing", "/demo/join", "/demo/checkout"):
            response = client.get(page)
            assert response.status_code == 200, page
            parsed = Links()
            parsed.feed(response.text)
            [script] = parsed.scripts
            assert script["src"] == "http://testserver/s.js"
            assert script["data-site"] == "demo-key"
        join = Links()
        join.feed(client.get("/demo/join").text)
        assert "data-smsr-optin" in join.forms[0]
        pricing = Links()
        pricing.feed(client.get("/demo/pricing").text)
        assert pricing.intents == ["pricing"]
        assert client.get("/demo/nothing").status_code == 404
        assert client.get("/demo", follow_redirects=False).status_code in (307, 308)


def test_demo_is_not_served_by_plain_serve(client: TestClient) -> None:
    assert client.get("/demo/").status_code == 404
