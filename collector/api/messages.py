"""`/api/v1/messages`: read-only list and read of outbound texts, with their status and price."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from collector.api.http import int_param, page_of, path_id, require_admin
from collector.errors import BadRequest, NotFound
from collector.sending import KINDS, STATUSES, message_to_api


async def list_messages(request: Request) -> Response:
    svc = require_admin(request)
    page = page_of(request)
    params: dict[str, object] = {
        name: int_param(request, name, None) for name in ("contact_id", "automation_id", "site_id")
    }
    for name, allowed in (("status", STATUSES), ("kind", KINDS)):
        value = request.query_params.get(name) or None
        if value is not None and value not in allowed:
            raise BadRequest(f"?{name}={value!r} is not one of {', '.join(allowed)}", field=name)
        params[name] = value
    rows, total = await svc.db.page(
        "messages", params, "created_at desc, id desc", page.per_page, page.offset
    )
    return JSONResponse(page.answer([message_to_api(r) for r in rows], total))


async def read_message(request: Request) -> Response:
    svc = require_admin(request)
    message_id = path_id(request)
    row = await svc.db.fetchone("select * from messages where id = ?", (message_id,))
    if row is None:
        raise NotFound(f"no message with id {message_id}")
    return JSONResponse(message_to_api(row))


routes = [
    Route("/messages", list_messages, methods=["GET"]),
    Route("/messages/{id}", read_message, methods=["GET"]),
]
