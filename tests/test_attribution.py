"""Attribution of purchases to texts, on real rows in a real SQLite file."""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from collector import attribution, sites
from collector.attribution import attribute_new_purchases, attribute_pending
from collector.db import Database

NOW = 1_800_000_000_000
MINUTE = 60_000
HOUR = 60 * MINUTE
DAY = 24 * HOUR
_ids = itertools.count(1)


@pytest_asyncio.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await Database.open(str(tmp_path / "attribution.db"))
    yield database
    await database.close()


async def insert(db: Database, table: str, **row: Any) -> int:
    names = ", ".join(row)  # test code: names are literals here
    marks = ", ".join(f":{name}" for name in row)
    async with db.transaction() as conn:
        cursor = await conn.execute(f"insert into {table} ({names}) values ({marks})", row)
        assert cursor.lastrowid is not None
        return cursor.lastrowid


@pytest_asyncio.fixture
async def shop(db: Database) -> dict[str, int]:
    site = await sites.create_site(
        db, {"name": "Shop", "origins": ["https://shop.example.com"]}, None
    )
    contact = await insert(
        db,
        "contacts",
        site_id=site.id,
        phone="+14155552671",
        first_name="Ada",
        status="active",
        created_at=NOW - 30 * DAY,
        updated_at=NOW - 30 * DAY,
    )
    return {"site": site.id, "contact": contact}


async def text(db: Database, shop: dict[str, int], kind: str = "automation", **row: Any) -> int:
    values = {
        "site_id": shop["site"],
        "contact_id": shop["contact"],
        "kind": kind,
        "to_number": "+14155552671",
        "body": "Hi",
        "status": "sent",
        "due_at": NOW - 10 * DAY,
        "client_ref": f"ref-{next(_ids)}",
        "created_at": NOW - 10 * DAY,
        "updated_at": NOW - 10 * DAY,
        **row,
    }
    return await insert(db, "messages", **values)


async def click(db: Database, shop: dict[str, int], message_id: int, at: int) -> None:
    code = f"code-{next(_ids)}"
    await insert(
        db,
        "links",
        code=code,
        site_id=shop["site"],
        contact_id=shop["contact"],
        message_id=message_id,
        url="https://shop.example.com/cart",
        created_at=at,
    )
    await insert(db, "link_clicks", code=code, token=f"tok-{code}", at=at)


async def purchase(
    db: Database, shop: dict[str, int], at: int, contact: bool = True, **props: Any
) -> int:
    return await insert(
        db,
        "events",
        site_id=shop["site"],
        uid=f"buy-{next(_ids)}",
        name="purchase",
        visitor_id="visitor-1",
        contact_id=shop["contact"] if contact else None,
        props=json.dumps({"order_id": None, "value": 48, "currency": "USD", **props}),
        at=at,
        received_at=at,
    )


async def credits(db: Database) -> list[tuple[Any, ...]]:
    rows = await db.fetchall(
        "select event_id, message_id, via, value, currency from attributions order by event_id"
    )
    return [tuple(r) for r in rows]


@pytest.mark.asyncio
async def test_a_purchase_after_a_click_is_credited_with_its_revenue(
    db: Database, shop: dict[str, int]
) -> None:
    message = await text(db, shop)
    await click(db, shop, message, NOW - 4 * DAY)
    bought = await purchase(db, shop, NOW, order_id="A1", value=48.5, currency="EUR")
    cursor = await attribute_new_purchases(db, 0, now=NOW)
    assert cursor == bought
    assert await credits(db) == [(bought, message, "click", 48.5, "EUR")]
    # Once per purchase: a second pass, or one from the start, credits nothing more.
    assert await attribute_new_purchases(db, cursor, now=NOW) == cursor
    assert await attribute_new_purchases(db, 0, now=NOW) == cursor
    assert len(await credits(db)) == 1


@pytest.mark.asyncio
async def test_a_click_beats_a_later_delivery_and_the_latest_click_wins(
    db: Database, shop: dict[str, int]
) -> None:
    first = await text(db, shop)
    second = await text(db, shop)
    delivered = await text(db, shop, status="delivered", delivered_at=NOW - HOUR)
    await click(db, shop, first, NOW - 2 * DAY)
    await click(db, shop, second, NOW - DAY)
    bought = await purchase(db, shop, NOW)
    await attribute_new_purchases(db, 0, now=NOW)
    assert await credits(db) == [(bought, second, "click", 48.0, "USD")]
    assert delivered != second


@pytest.mark.asyncio
async def test_a_delivery_within_its_window_is_credited_without_a_click(
    db: Database, shop: dict[str, int]
) -> None:
    old = await text(db, shop)
    await click(db, shop, old, NOW - 6 * DAY)  # outside the 5-day click window
    await text(db, shop, status="delivered", delivered_at=NOW - 13 * HOUR)  # outside 12 h
    delivered = await text(db, shop, status="delivered", delivered_at=NOW - 11 * HOUR)
    await text(db, shop, status="sent", sent_at=NOW - HOUR)  # sent, no receipt: no credit
    bought = await purchase(db, shop, NOW, value=0)
    await attribute_new_purchases(db, 0, now=NOW)
    assert await credits(db) == [(bought, delivered, "delivery", 0.0, "USD")]


@pytest.mark.asyncio
async def test_nothing_is_credited_outside_the_windows_or_to_other_kinds(
    db: Database, shop: dict[str, int]
) -> None:
    old = await text(db, shop)
    await click(db, shop, old, NOW - 5 * DAY - MINUTE)
    await text(db, shop, status="delivered", delivered_at=NOW - 12 * HOUR - MINUTE)
    await text(db, shop, kind="confirmation", status="delivered", delivered_at=NOW - HOUR)
    await text(db, shop, kind="keyword_reply", status="delivered", delivered_at=NOW - HOUR)
    later = await text(db, shop, status="delivered", delivered_at=NOW + HOUR)
    bought = await purchase(db, shop, NOW)
    assert await attribute_new_purchases(db, 0, now=NOW) == bought
    assert await credits(db) == []
    assert later


@pytest.mark.asyncio
async def test_windows_are_the_sites_own(db: Database, shop: dict[str, int]) -> None:
    await sites.update_site(
        db,
        shop["site"],
        {"attribution_click_seconds": 3600, "attribution_delivery_seconds": 60},
        None,
    )
    message = await text(db, shop, status="delivered", delivered_at=NOW - 2 * MINUTE)
    await click(db, shop, message, NOW - 2 * HOUR)
    await purchase(db, shop, NOW)
    await attribute_new_purchases(db, 0, now=NOW)
    assert await credits(db) == []


@pytest.mark.asyncio
async def test_a_browser_clock_a_little_behind_still_counts(
    db: Database, shop: dict[str, int]
) -> None:
    message = await text(db, shop)
    await click(db, shop, message, NOW)
    behind = await purchase(db, shop, NOW - 2 * MINUTE)
    await purchase(db, shop, NOW - 10 * MINUTE)  # before the click: not because of it
    await attribute_new_purchases(db, 0, now=NOW)
    assert [c[0] for c in await credits(db)] == [behind]


@pytest.mark.asyncio
async def test_an_order_reported_twice_is_credited_once(db: Database, shop: dict[str, int]) -> None:
    message = await text(db, shop)
    await click(db, shop, message, NOW - HOUR)
    browser = await purchase(db, shop, NOW, order_id="1001")
    await purchase(db, shop, NOW + MINUTE, order_id="1001")  # the shop's server, same order
    await purchase(db, shop, NOW + MINUTE, order_id="1002")
    await attribute_new_purchases(db, 0, now=NOW + MINUTE)
    assert [c[0] for c in await credits(db)][:1] == [browser]
    assert len(await credits(db)) == 2


@pytest.mark.asyncio
async def test_the_cursor_waits_for_a_young_purchase_without_a_contact(
    db: Database, shop: dict[str, int]
) -> None:
    message = await text(db, shop)
    await click(db, shop, message, NOW - HOUR)
    anonymous = await purchase(db, shop, NOW, contact=False)
    known = await purchase(db, shop, NOW)
    cursor = await attribute_new_purchases(db, 0, now=NOW)
    assert cursor == anonymous - 1
    assert [c[0] for c in await credits(db)] == [known]
    # The landing page view ties the browser a moment later; the next pass credits it.
    async with db.transaction() as conn:
        await conn.execute(
            "update events set contact_id = ? where id = ?", (shop["contact"], anonymous)
        )
    assert await attribute_new_purchases(db, cursor, now=NOW + MINUTE) == known
    assert [c[0] for c in await credits(db)] == [anonymous, known]


@pytest.mark.asyncio
async def test_a_purchase_never_tied_is_passed_after_the_grace(
    db: Database, shop: dict[str, int]
) -> None:
    anonymous = await purchase(db, shop, NOW, contact=False)
    assert await attribute_new_purchases(db, 0, now=NOW) == anonymous - 1
    later = NOW + attribution.TIE_GRACE_MS
    assert await attribute_new_purchases(db, 0, now=later) == anonymous


@pytest.mark.asyncio
async def test_the_cursor_passes_other_events_and_survives_in_the_database(
    db: Database, shop: dict[str, int]
) -> None:
    message = await text(db, shop)
    await click(db, shop, message, NOW - HOUR)
    await purchase(db, shop, NOW)
    view = await insert(
        db, "events", site_id=shop["site"], uid="pv-1", name="page_view", at=NOW, received_at=NOW
    )
    assert await attribute_pending(db, now=NOW) == 1
    row = await db.fetchone("select value from cursors where name = 'attribution'")
    assert row is not None and row["value"] == view
    assert await attribute_pending(db, now=NOW) == 0
    await purchase(db, shop, NOW + MINUTE)
    assert await attribute_pending(db, now=NOW + MINUTE) == 1
    assert await attribute_new_purchases(db, 0) >= view
