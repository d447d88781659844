"""Visitors tied to contacts: by opt-in, and by the token of a tracked-link click."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from collector import identity
from collector.db import Database
from collector.optins import upsert_contact
from collector.sites import Site, create_site

from support import ORIGIN


@pytest_asyncio.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await Database.open(str(tmp_path / "identity.db"))
    yield database
    await database.close()


async def setup(db: Database) -> tuple[Site, int]:
    site = await create_site(db, {"name": "Shop", "origins": [ORIGIN]}, None)
    async with db.transaction() as conn:
        contact_id = await upsert_contact(conn, site.id, "+14155552671", None, 0)
    return site, contact_id


async def add_event(db: Database, site: Site, uid: str, visitor: str) -> None:
    await db.execute(
        "insert into events (site_id, uid, name, visitor_id, at, received_at) "
        "values (?, ?, 'page_view', ?, 1, 1)",
        (site.id, uid, visitor),
    )


async def contact_ids(db: Database) -> dict[str, int | None]:
    rows = await db.fetchall("select uid, contact_id from events order by uid")
    return {r["uid"]: r["contact_id"] for r in rows}


@pytest.mark.asyncio
async def test_tying_claims_earlier_events_and_the_trigger_claims_later_ones(
    db: Database,
) -> None:
    site, contact_id = await setup(db)
    await add_event(db, site, "before01", "browser-a")
    await add_event(db, site, "other001", "browser-b")
    async with db.transaction() as conn:
        await identity.tie_visitor(conn, site.id, "browser-a", contact_id, "optin", 5)
    await add_event(db, site, "after001", "browser-a")
    assert await contact_ids(db) == {
        "after001": contact_id,
        "before01": contact_id,
        "other001": None,
    }
    assert [v["visitor_id"] for v in await identity.visitors_of(db.reader, contact_id)] == [
        "browser-a"
    ]


@pytest.mark.asyncio
async def test_a_link_click_token_ties_one_new_browser(db: Database) -> None:
    site, contact_id = await setup(db)
    async with db.transaction() as conn:
        code = await identity.create_link(
            conn, site_id=site.id, contact_id=contact_id, url=f"{ORIGIN}/cart", now=1
        )
        click = await identity.record_click(conn, code, "203.0.113.5", "Mozilla/5.0", 2)
        assert await identity.record_click(conn, "nope", None, None, 2) is None
    assert click is not None and click.url == f"{ORIGIN}/cart" and click.contact_id == contact_id
    await add_event(db, site, "landing1", "new-phone-browser")
    async with db.transaction() as conn:
        tied = await identity.tie_by_click_token(conn, site.id, "new-phone-browser", click.token, 3)
        again = await identity.tie_by_click_token(
            conn, site.id, "new-phone-browser", click.token, 4
        )
        forwarded = await identity.tie_by_click_token(conn, site.id, "someone-else", click.token, 5)
        unknown = await identity.tie_by_click_token(conn, site.id, "x", "bad-token", 5)
    assert (tied, again, forwarded, unknown) == (contact_id, contact_id, None, None)
    assert await contact_ids(db) == {"landing1": contact_id}
    links = await identity.visitors_of(db.reader, contact_id)
    assert [(v["visitor_id"], v["source"]) for v in links] == [("new-phone-browser", "link")]
