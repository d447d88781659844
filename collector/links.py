"""Tracked short links in texts: creating them, counting clicks, and tying the landing browser.

A click records a `link_clicks` row with a fresh token and an `sms_click` event, then redirects
(302) to the link's page with `smsr_c=TOKEN`. The snippet there sends the token with its page
view; ingest then calls `tie_click_tokens`, which ties that browser to the contact through
`identity.tie_by_click_token` (source `link`). Codes carry 64 random bits, tokens 144, so neither
can be guessed; an unknown token is ignored. The HTTP side of `GET /r/{code}` is
collector/redirect.py (it needs ingest's client IP rule, and ingest needs this module).

Link targets must be on one of the site's origins (`choose_target`): the cart URL comes from the
visitor's browser, and a text from the shop must never lead somewhere else. Bots (link previews,
crawlers) are redirected without a token and are not counted as clicks.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiosqlite
import orjson

from collector import identity
from collector.db import Database
from collector.errors import BadRequest
from collector.site_fields import normalize_origin
from collector.sites import Site

log = logging.getLogger(__name__)

CODE_BYTES = 8  # 64 bits, 11 URL-safe characters
TOKEN_PARAM = "smsr_c"


class LinkRefused(ValueError):
    """A link target that is not an http(s) URL on one of the site's origins."""


def now_ms() -> int:
    return int(time.time() * 1000)


def link_url(public_url: str, code: str) -> str:
    """The short link as it goes into a text: `SMSR_PUBLIC_URL` + `/r/{code}`."""
    return f"{public_url.rstrip('/')}/r/{code}"


def on_site(site: Site, url: str | None) -> bool:
    """True when `url` is an http(s) URL on one of the site's origins."""
    if not url or len(url) > 2048:
        return False
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return False
    try:
        return normalize_origin(f"{parts.scheme}://{parts.netloc}") in site.origins
    except BadRequest:
        return False


def choose_target(site: Site, cart_url: str | None, page_url: str | None) -> str:
    """Where a text's link leads: the cart's URL, else the trigger's page, else the site itself."""
    for url in (cart_url, page_url):
        if url and on_site(site, url):
            return url
    secure = [o for o in site.origins if o.startswith("https://")]
    return (secure or list(site.origins))[0] + "/"


async def create_link(
    db: Database,
    *,
    site_id: int,
    contact_id: int,
    message_id: int | None,
    url: str,
    now: int | None = None,
) -> str:
    """A new unguessable code for `/r/{code}` leading this contact to `url` (on the site)."""
    row = await db.fetchone("select * from sites where id = ?", (site_id,))
    if row is None:
        raise LinkRefused(f"no site with id {site_id}")
    async with db.transaction() as conn:
        return await insert_link(
            conn,
            site=Site.from_row(row),
            contact_id=contact_id,
            message_id=message_id,
            url=url,
            now=now if now is not None else now_ms(),
        )


INSERT_LINK = (
    "insert into links (code, site_id, contact_id, message_id, url, created_at) "
    "values (?, ?, ?, ?, ?, ?)"
)


def link_row(
    *, site: Site, contact_id: int, message_id: int | None, url: str, now: int
) -> tuple[str, tuple[Any, ...]]:
    """A fresh code and its `links` row (INSERT_LINK), for writing many in one statement;
    raises LinkRefused for an off-site URL. A collision in 2**64 codes is not expected."""
    if not on_site(site, url):
        raise LinkRefused(f"{url!r} is not on an origin of site {site.id}; see choose_target()")
    code = secrets.token_urlsafe(CODE_BYTES)
    return code, (code, site.id, contact_id, message_id, url, now)


async def insert_link(
    conn: aiosqlite.Connection,
    *,
    site: Site,
    contact_id: int,
    message_id: int | None,
    url: str,
    now: int,
) -> str:
    """`create_link` inside the caller's transaction; raises LinkRefused for an off-site URL."""
    for _ in range(3):  # a collision in 2**64 codes is not expected; do not fail if it comes
        code, row = link_row(
            site=site, contact_id=contact_id, message_id=message_id, url=url, now=now
        )
        cursor = await conn.execute(INSERT_LINK.replace("insert", "insert or ignore", 1), row)
        if cursor.rowcount:
            return code
    raise RuntimeError("could not find a free link code")


def with_token(url: str, token: str) -> str:
    """`url` with `smsr_c=token` in its query; other parameters and the fragment stay as they are."""
    parts = urlsplit(url)
    kept = [p for p in parts.query.split("&") if p and p.split("=", 1)[0] != TOKEN_PARAM]
    query = "&".join([*kept, f"{TOKEN_PARAM}={token}"])
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


LINK = "select site_id, message_id, url from links where code = ?"
SITE = "select * from sites where id = ?"


async def target_of(db: Database, code: str) -> str | None:
    """Where `/r/{code}` leads, without counting a click (bots); None for an unknown code."""
    link = await db.fetchone(LINK, (code,))
    site = link and await db.fetchone(SITE, (link["site_id"],))
    return choose_target(Site.from_row(site), link["url"], None) if link and site else None


async def record_click(
    db: Database, code: str, ip: str | None, user_agent: str | None, now: int | None = None
) -> str | None:
    """Record a click and its `sms_click` event; the URL to redirect to, or None if unknown."""
    now = now if now is not None else now_ms()
    async with db.transaction() as conn:
        link = await (await conn.execute(LINK, (code,))).fetchone()
        site = link and await (await conn.execute(SITE, (link["site_id"],))).fetchone()
        if link is None or site is None:
            return None
        # Checked again at each click: a link made elsewhere, or before the site dropped an
        # origin, must still never lead off the site.
        target = choose_target(Site.from_row(site), link["url"], None)
        click = await identity.record_click(conn, code, ip, user_agent, now)
        assert click is not None
        props = {"message_id": link["message_id"], "code": code}
        await conn.execute(
            "insert into events (site_id, uid, name, contact_id, url, path, props, at, "
            "received_at) values (?, ?, 'sms_click', ?, ?, ?, ?, ?, ?)",
            (
                link["site_id"],
                f"click-{click.token}",
                click.contact_id,
                target,
                urlsplit(target).path or "/",
                orjson.dumps(props).decode(),
                now,
                now,
            ),
        )
    return with_token(target, click.token)


def click_tokens(events: Iterable[dict[str, Any]]) -> list[str]:
    """Tokens carried by the page views of a (validated) beacon batch."""
    tokens = []
    for event in events:
        if event.get("n") == "page_view":
            props = event.get("p")
            if isinstance(props, dict) and isinstance(props.get("c"), str):
                tokens.append(props["c"])
    return tokens


async def tie_click_tokens(
    db: Database, site_id: int, visitor_id: str, tokens: list[str], now: int | None = None
) -> int:
    """Tie the browser to the contact of each known token; returns how many tokens tied it.

    Called by ingest after the batch is committed. A failure here is logged, not raised: the
    events are stored and the beacon must still be answered 202.
    """
    now = now if now is not None else now_ms()
    tied = 0
    try:
        async with db.transaction() as conn:
            for token in dict.fromkeys(tokens):
                if await identity.tie_by_click_token(conn, site_id, visitor_id, token, now):
                    tied += 1
                    # The click's own event gets the browser too, for the contact's timeline.
                    await conn.execute(
                        "update events set visitor_id = ? "
                        "where site_id = ? and uid = ? and visitor_id is null",
                        (visitor_id, site_id, f"click-{token}"),
                    )
    except Exception:
        log.exception("tying visitor %s to a clicked link failed", visitor_id)
        return 0
    return tied
