"""Attribution: which text brought a purchase, and its revenue (issue 4, "Sending").

A `purchase` event of a contact is credited to one message of that contact's site:
- the message whose link the contact clicked last, when that click came at most the site's
  `attribution_click_seconds` before the purchase; else
- the message delivered last (status `delivered`), at most `attribution_delivery_seconds` before.
A click beats a delivery. Only `automation` and `manual` texts earn credit, never confirmations or
keyword replies. The purchase's time is its event time, which may be up to `CLOCK_SLACK_MS`
before the click or receipt: browser clocks err, and ingest allows events 5 minutes ahead.

Each purchase event is credited at most once (`attributions.event_id` is the key), and an order
reported twice (by the browser and by the shop's server, same `order_id`) is credited once.

Purchases are read by event id. A purchase from a browser not yet tied to a contact can become
the contact's moments later (a click's landing page ties the browser right after its events are
committed), so the cursor does not pass a contactless purchase younger than `TIE_GRACE_MS`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import orjson

from collector.db import Database

CLOCK_SLACK_MS = 5 * 60 * 1000
TIE_GRACE_MS = 10 * 60 * 1000
BATCH = 1000
CURSOR = "attribution"
CREDITED_KINDS = "('automation', 'manual')"  # a fixed literal, never input

PURCHASES = """
select e.id, e.site_id, e.contact_id, e.props, e.at, e.received_at,
       s.attribution_click_seconds, s.attribution_delivery_seconds
from events e join sites s on s.id = e.site_id
where e.name = 'purchase' and e.id > :since and e.id <= :upto
order by e.id
limit :limit
"""

LAST_CLICK = f"""
select l.message_id, c.at from link_clicks c
join links l on l.code = c.code
join messages m on m.id = l.message_id
where l.contact_id = :contact_id and l.site_id = :site_id and m.kind in {CREDITED_KINDS}
  and c.at <= :at + :slack and c.at >= :at - :window
order by c.at desc, c.id desc
limit 1
"""

LAST_DELIVERY = f"""
select id as message_id, delivered_at as at from messages
where contact_id = :contact_id and site_id = :site_id and kind in {CREDITED_KINDS}
  and status = 'delivered' and delivered_at <= :at + :slack and delivered_at >= :at - :window
order by delivered_at desc, id desc
limit 1
"""

# An order already credited through another event of the same site is not credited again.
CREDIT = """
insert or ignore into attributions (event_id, message_id, via, value, currency, at)
select :event_id, :message_id, :via, :value, :currency, :at
where :order_id is null or not exists (
    select 1 from attributions a join events e on e.id = a.event_id
    where e.site_id = :site_id and e.name = 'purchase'
      and json_extract(e.props, '$.order_id') = :order_id
)
"""


log = logging.getLogger(__name__)
ATTRIBUTION_INTERVAL = 5.0


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class Credit:
    event_id: int
    site_id: int
    message_id: int
    via: str  # 'click' or 'delivery'
    value: float
    currency: str | None
    order_id: str | None
    at: int


async def credit_for(db: Database, purchase: Any) -> Credit | None:
    """The message a purchase row (as PURCHASES reads it) is credited to, if any."""
    props = orjson.loads(purchase["props"])
    value = props.get("value")
    value = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0
    currency = props.get("currency") if isinstance(props.get("currency"), str) else None
    order_id = props.get("order_id")
    params = {
        "contact_id": purchase["contact_id"],
        "site_id": purchase["site_id"],
        "at": purchase["at"],
        "slack": CLOCK_SLACK_MS,
    }
    for via, sql, seconds in (
        ("click", LAST_CLICK, purchase["attribution_click_seconds"]),
        ("delivery", LAST_DELIVERY, purchase["attribution_delivery_seconds"]),
    ):
        found = await db.fetchone(sql, {**params, "window": seconds * 1000})
        if found is not None:
            return Credit(
                purchase["id"],
                purchase["site_id"],
                found["message_id"],
                via,
                value,
                currency,
                str(order_id) if order_id is not None else None,
                purchase["at"],
            )
    return None


async def _attribute(db: Database, since_event_id: int, now: int) -> tuple[int, int]:
    """One pass: (the cursor to pass next time, how many purchases were credited)."""
    top = await db.fetchone("select ifnull(max(id), 0) as id from events")
    upto = top["id"] if top else 0
    rows = await db.fetchall(PURCHASES, {"since": since_event_id, "upto": upto, "limit": BATCH})
    if len(rows) == BATCH:
        upto = rows[-1]["id"]
    cursor = upto
    credits = []
    for row in rows:
        if row["contact_id"] is None:
            if now - row["received_at"] < TIE_GRACE_MS:
                cursor = min(cursor, row["id"] - 1)
            continue
        credit = await credit_for(db, row)
        if credit is not None:
            credits.append(credit)
    credited = 0
    if credits:
        async with db.transaction() as conn:
            for c in credits:
                result = await conn.execute(
                    CREDIT,
                    {
                        "event_id": c.event_id,
                        "message_id": c.message_id,
                        "via": c.via,
                        "value": c.value,
                        "currency": c.currency,
                        "at": c.at,
                        "site_id": c.site_id,
                        "order_id": c.order_id,
                    },
                )
                credited += result.rowcount
    return max(cursor, since_event_id), credited


async def attribute_new_purchases(db: Database, since_event_id: int, now: int | None = None) -> int:
    """Credit purchases after event `since_event_id`; returns the event id to pass next time."""
    cursor, _ = await _attribute(db, since_event_id, now if now is not None else now_ms())
    return cursor


async def attribute_pending(db: Database, now: int | None = None) -> int:
    """`attribute_new_purchases` from the cursor kept in the `cursors` table; returns credits made."""
    row = await db.fetchone("select value from cursors where name = ?", (CURSOR,))
    since = row["value"] if row else 0
    cursor, credited = await _attribute(db, since, now if now is not None else now_ms())
    if cursor != since:
        await db.execute(
            "insert into cursors (name, value) values (?, ?) "
            "on conflict (name) do update set value = excluded.value",
            (CURSOR, cursor),
        )
    return credited
