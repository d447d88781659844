"""`/api/v1/sites`: create, list, read, update and delete sites."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from collector import sites
from collector.api.http import json_body, page_of, path_id, require_admin


async def list_sites(request: Request) -> Response:
    svc = require_admin(request)
    page = page_of(request)
    items, total = await sites.list_sites(svc.db, page.per_page, page.offset)
    return JSONResponse(page.answer([s.to_api() for s in items], total))


async def create_site(request: Request) -> Response:
    svc = require_admin(request)
    site = await sites.create_site(svc.db, await json_body(request), svc.settings.vonage_from)
    svc.sites.invalidate()
    return JSONResponse(site.to_api(), status_code=201)


async def read_site(request: Request) -> Response:
    svc = require_admin(request)
    return JSONResponse((await sites.get_site(svc.db, path_id(request))).to_api())


async def update_site(request: Request) -> Response:
    svc = require_admin(request)
    site = await sites.update_site(
        svc.db, path_id(request), await json_body(request), svc.settings.vonage_from
    )
    svc.sites.invalidate()
    return JSONResponse(site.to_api())


async def delete_site(request: Request) -> Response:
    svc = require_admin(request)
    await sites.delete_site(svc.db, path_id(request))
    svc.sites.invalidate()
    return Response(status_code=204)


routes = [
    Route("/sites", list_sites, methods=["GET"]),
    Route("/sites", create_site, methods=["POST"]),
    Route("/sites/{id}", read_site, methods=["GET"]),
    Route("/sites/{id}", update_site, methods=["PATCH"]),
    Route("/sites/{id}", delete_site, methods=["DELETE"]),
]
