"""`/api/v1/automations`: what to text, when, and what cancels it."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from collector import automations as a
from collector.api.http import int_param, json_body, page_of, path_id, require_admin


async def list_automations(request: Request) -> Response:
    svc = require_admin(request)
    page = page_of(request)
    site_id = int_param(request, "site_id", None)
    items, total = await a.list_automations(svc.db, site_id, page.per_page, page.offset)
    return JSONResponse(page.answer([i.to_api() for i in items], total))


async def create_automation(request: Request) -> Response:
    svc = require_admin(request)
    automation = await a.create_automation(svc.db, await json_body(request))
    return JSONResponse(automation.to_api(), status_code=201)


async def read_automation(request: Request) -> Response:
    svc = require_admin(request)
    return JSONResponse((await a.get_automation(svc.db, path_id(request))).to_api())


async def update_automation(request: Request) -> Response:
    svc = require_admin(request)
    automation_id = path_id(request)
    automation = await a.update_automation(svc.db, automation_id, await json_body(request))
    return JSONResponse(automation.to_api())


async def delete_automation(request: Request) -> Response:
    svc = require_admin(request)
    await a.delete_automation(svc.db, path_id(request))
    return Response(status_code=204)


routes = [
    Route("/automations", list_automations, methods=["GET"]),
    Route("/automations", create_automation, methods=["POST"]),
    Route("/automations/{id}", read_automation, methods=["GET"]),
    Route("/automations/{id}", update_automation, methods=["PATCH"]),
    Route("/automations/{id}", delete_automation, methods=["DELETE"]),
]
