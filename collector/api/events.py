"""`/api/v1/events`: read what the tag recorded, so a site owner can see that it works."""

from __future__ import annotations

import sqlite3
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from collector.api.http import int_param, page_of, path_id, require_admin
from collector.db import ms_to_iso
from collector.errors import BadRequest, NotFound

COLUMNS = "id, site_id, name, visitor_id, session_id, contact_id, url, title, props, at"


def event_to_api(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "site_id": row["site_id"],
        "name": row["name"],
        "visitor_id": row["visitor_id"],
        "session_id": row["session_id"],
        "contact_id": row["contact_id"],
        "url": row["url"],
        "title": row["title"],
        "props": orjson.loads(row["props"]),
        "at": ms_to_iso(row["at"]),
    }


async def list_events(request: Request) -> Response:
    svc = require_admin(request)
    page = page_of(request)
    filters: dict[str, object] = {
        name: int_param(request, name, None) for name in ("site_id", "contact_id")
    }
    for name in ("name", "visitor_id"):
        value = request.query_params.get(name) or None
        if value is not None and len(value) > 64:
            raise BadRequest(f"?{name} is too long", field=name)
        filters[name] = value
    rows, total = await svc.db.page(
        "events", filters, "at desc, id desc", page.per_page, page.offset, COLUMNS
    )
    return JSONResponse(page.answer([event_to_api(r) for r in rows], total))


async def read_event(request: Request) -> Response:
    svc = require_admin(request)
    event_id = path_id(request)
    row = await svc.db.fetchone(f"select {COLUMNS} from events where id = ?", (event_id,))
    if row is None:
        raise NotFound(f"no event with id {event_id}")
    return JSONResponse(event_to_api(row))


routes = [
    Route("/events", list_events, methods=["GET"]),
    Route("/events/{id}", read_event, methods=["GET"]),
]
