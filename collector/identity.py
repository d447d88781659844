"""Which contact a browser belongs to: visitor ids tied to contacts, and tracked-link tokens.

An opt-in ties the submitting browser's visitor id to the contact; so does a click on a tracked
link in a text (`GET /r/{code}`, served by "Automations"), whose landing page view carries the
click's token. Tying sets `contact_id` on that visitor's earlier events here, and on its later
events through the `events_tied_visitor` trigger (migrations/0002_consent.sql), whichever path
inserts them. One contact may have many visitors; a visitor has one contact per site, the latest.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import aiosqlite

LINK_SOURCES = ("optin", "link", "api")


async def tie_visitor(
    conn: aiosqlite.Connection,
    site_id: int,
    visitor_id: str,
    contact_id: int,
    source: str,
    now: int,
) -> None:
    """Tie the browser to the contact and give it the visitor's events not yet tied to anyone."""
    assert source in LINK_SOURCES, source
    await conn.execute(
        "insert into contact_visitors (site_id, visitor_id, contact_id, source, linked_at) "
        "values (?, ?, ?, ?, ?) on conflict (site_id, visitor_id) do update set "
        "contact_id = excluded.contact_id, source = excluded.source, linked_at = excluded.linked_at",
        (site_id, visitor_id, contact_id, source, now),
    )
    await conn.execute(
        "update events set contact_id = ? "
        "where site_id = ? and visitor_id = ? and contact_id is null",
        (contact_id, site_id, visitor_id),
    )


async def contact_of_visitor(
    conn: aiosqlite.Connection, site_id: int, visitor_id: str
) -> int | None:
    cursor = await conn.execute(
        "select contact_id from contact_visitors where site_id = ? and visitor_id = ?",
        (site_id, visitor_id),
    )
    row = await cursor.fetchone()
    return int(row["contact_id"]) if row else None


async def visitors_of(reader: aiosqlite.Connection, contact_id: int) -> list[dict[str, Any]]:
    rows = await reader.execute_fetchall(
        "select visitor_id, source, linked_at from contact_visitors "
        "where contact_id = ? order by linked_at",
        (contact_id,),
    )
    return [dict(row) for row in rows]


# Tracked links. "Automations" creates a link per text and serves /r/{code}; these are the
# pieces that touch identity, so the tables and their rules live here.


@dataclass(frozen=True)
class Click:
    url: str
    token: str
    contact_id: int


async def create_link(
    conn: aiosqlite.Connection,
    *,
    site_id: int,
    contact_id: int,
    url: str,
    now: int,
    message_id: int | None = None,
) -> str:
    """A new short code for `/r/{code}` leading to `url` for this contact."""
    code = secrets.token_urlsafe(6)
    await conn.execute(
        "insert into links (code, site_id, contact_id, message_id, url, created_at) "
        "values (?, ?, ?, ?, ?, ?)",
        (code, site_id, contact_id, message_id, url, now),
    )
    return code


async def record_click(
    conn: aiosqlite.Connection, code: str, ip: str | None, user_agent: str | None, now: int
) -> Click | None:
    """A click on `/r/{code}`: a fresh token for the landing page (`smsr_c`), or None if unknown."""
    cursor = await conn.execute("select contact_id, url from links where code = ?", (code,))
    link = await cursor.fetchone()
    if link is None:
        return None
    token = secrets.token_urlsafe(18)
    await conn.execute(
        "insert into link_clicks (code, token, at, ip, user_agent) values (?, ?, ?, ?, ?)",
        (code, token, now, ip, user_agent),
    )
    return Click(link["url"], token, link["contact_id"])


async def tie_by_click_token(
    conn: aiosqlite.Connection, site_id: int, visitor_id: str, token: str, now: int
) -> int | None:
    """A page view carried `smsr_c=token`: tie its browser to the clicked link's contact.

    A token ties one browser only (the first page view that brings it), so a forwarded link
    cannot tie more browsers later. Returns the contact id, or None for an unknown token.
    """
    cursor = await conn.execute(
        "select c.id, l.contact_id from link_clicks c join links l on l.code = c.code "
        "where c.token = ? and l.site_id = ? and (c.visitor_id is null or c.visitor_id = ?)",
        (token, site_id, visitor_id),
    )
    row = await cursor.fetchone()
    if row is None:
        return None
    await conn.execute(
        "update link_clicks set visitor_id = ?, tied_at = ? where id = ?",
        (visitor_id, now, row["id"]),
    )
    await tie_visitor(conn, site_id, visitor_id, row["contact_id"], "link", now)
    return int(row["contact_id"])
