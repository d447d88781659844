"""`POST /api/v1/events`: a site's backend records an event, e.g. a purchase its payment provider
confirmed, authenticated with the site's secret (not the admin token).

The event is tied to a browser (`visitor_id`) or to a contact (`phone`), stored like a beacon's,
and seen by the automations: a server-side `purchase` ends abandonment texts like one from the
browser does. An `id` makes retries safe: the same id twice is stored once.
"""

from __future__ import annotations

import secrets
import time
from datetime import datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from collector.api.events import COLUMNS, event_to_api
from collector.api.http import json_body, services
from collector.contacts import find_contact
from collector.errors import BadRequest, NotFound, Unauthorized
from collector.events import CUSTOM_NAME, ID, MAX_AGE_MS, MAX_AHEAD_MS, SERVER_ONLY, check_props
from collector.phones import parse_phone
from collector.sites import Site

NOT_HERE = {"optin": "use POST /api/v1/contacts for a server-side opt-in with its consent proof"}
INSERT = """
insert or ignore into events
    (site_id, uid, name, visitor_id, contact_id, url, path, props, at, received_at)
values (:site_id, :uid, :name, :visitor_id, :contact_id, :url, :path, :props, :at, :received_at)
"""


async def site_of_secret(request: Request) -> Site:
    scheme, _, secret = request.headers.get("authorization", "").partition(" ")
    secret = secret.strip()
    row = None
    if scheme.lower() == "bearer" and secret.startswith("ss_"):
        row = await services(request).db.fetchone("select * from sites where secret = ?", (secret,))
    if row is None or not secrets.compare_digest(row["secret"], secret):
        raise Unauthorized("send Authorization: Bearer <the site's secret> (it starts with ss_)")
    return Site.from_row(row)


def event_time(value: Any, now: int) -> int:
    if value is None:
        return now
    try:
        at = int(datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        raise BadRequest(f"at {value!r} is not an RFC 3339 time", field="at") from None
    if not now - MAX_AGE_MS <= at <= now + MAX_AHEAD_MS:
        raise BadRequest("at is more than 7 days old or 5 minutes ahead", field="at")
    return at


async def create_event(request: Request) -> Response:
    site = await site_of_secret(request)
    data = await json_body(request)
    db = services(request).db
    name = data.get("name")
    if not isinstance(name, str) or not CUSTOM_NAME.match(name) or name in SERVER_ONLY:
        raise BadRequest(f"name {name!r} is not an event name ([a-z0-9_]{{1,40}})", field="name")
    if name in NOT_HERE:
        raise BadRequest(NOT_HERE[name], field="name")
    now = int(time.time() * 1000)
    uid = data.get("id") or "srv-" + secrets.token_urlsafe(12)
    if not isinstance(uid, str) or not ID.match(uid):
        raise BadRequest("id must be 8-64 characters of A-Z a-z 0-9 _ -", field="id")
    visitor_id, contact_id = data.get("visitor_id"), None
    if visitor_id is not None and (not isinstance(visitor_id, str) or not ID.match(visitor_id)):
        raise BadRequest(
            "visitor_id must be 8-64 characters of A-Z a-z 0-9 _ -", field="visitor_id"
        )
    if data.get("phone") is not None:
        phone = parse_phone(data["phone"], site.country, site.allowed_countries)
        contact = await find_contact(db.reader, site.id, phone)
        if contact is None:
            raise NotFound(f"no contact with phone {phone} on this site", field="phone")
        contact_id = contact.id
    if visitor_id is None and contact_id is None:
        raise BadRequest("give visitor_id or phone", field="visitor_id")
    url = data.get("url")
    if url is not None and (not isinstance(url, str) or len(url) > 2048):
        raise BadRequest("url must be a string of at most 2048 characters", field="url")
    row = {
        "site_id": site.id,
        "uid": uid,
        "name": name,
        "visitor_id": visitor_id,
        "contact_id": contact_id,
        "url": url,
        "path": None,
        "props": orjson.dumps(check_props(name, data.get("props"))).decode(),
        "at": event_time(data.get("at"), now),
        "received_at": now,
    }
    async with db.transaction() as conn:
        cursor = await conn.execute(INSERT, row)
        created = cursor.rowcount == 1
        found = await conn.execute_fetchall(
            f"select {COLUMNS} from events where site_id = ? and uid = ?", (site.id, uid)
        )
    return JSONResponse(event_to_api(found[0]), status_code=201 if created else 200)


routes = [Route("/events", create_event, methods=["POST"])]
