"""`/api/v1/templates`: message templates, checked on save, and a preview that saves nothing."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from collector import message_templates as t
from collector.api.http import int_param, json_body, page_of, path_id, require_admin
from collector.errors import BadRequest
from collector.services import Services
from collector.site_fields import check_int


async def _answer(svc: Services, template: t.Template, status: int = 200) -> Response:
    name = await t.site_name(svc.db, template.site_id)
    return JSONResponse(template.to_api(name, svc.settings.public_url), status_code=status)


async def list_templates(request: Request) -> Response:
    svc = require_admin(request)
    page = page_of(request)
    site_id = int_param(request, "site_id", None)
    items, total = await t.list_templates(svc.db, site_id, page.per_page, page.offset)
    names: dict[int, str | None] = {}
    for item in items:
        if item.site_id not in names:
            names[item.site_id] = await t.site_name(svc.db, item.site_id)
    answers = [i.to_api(names[i.site_id], svc.settings.public_url) for i in items]
    return JSONResponse(page.answer(answers, total))


async def create_template(request: Request) -> Response:
    svc = require_admin(request)
    return await _answer(svc, await t.create_template(svc.db, await json_body(request)), 201)


async def read_template(request: Request) -> Response:
    svc = require_admin(request)
    return await _answer(svc, await t.get_template(svc.db, path_id(request)))


async def update_template(request: Request) -> Response:
    svc = require_admin(request)
    template_id = path_id(request)
    return await _answer(
        svc, await t.update_template(svc.db, template_id, await json_body(request))
    )


async def delete_template(request: Request) -> Response:
    svc = require_admin(request)
    await t.delete_template(svc.db, path_id(request))
    return Response(status_code=204)


async def preview_template(request: Request) -> Response:
    """`{"body", "site_id"}` → the sample text as a first text from that site, and its cost."""
    svc = require_admin(request)
    data = await json_body(request)
    unknown = sorted(set(data) - {"body", "site_id"})
    if unknown:
        raise BadRequest(f"unknown field {unknown[0]!r}; send body and site_id", field=unknown[0])
    if "body" not in data:
        raise BadRequest("body is required", field="body")
    name = None
    site_id = data.get("site_id")
    if site_id is not None:
        site_id = check_int(site_id, "site_id", minimum=1, maximum=2**62)
        name = await t.site_name(svc.db, site_id)
        if name is None:
            raise BadRequest(f"no site with id {site_id}", field="site_id")
    preview = t.preview(data["body"], name, svc.settings.public_url)
    return JSONResponse(preview.to_api())


routes = [
    Route("/templates", list_templates, methods=["GET"]),
    Route("/templates", create_template, methods=["POST"]),
    Route("/templates/preview", preview_template, methods=["POST"]),
    Route("/templates/{id}", read_template, methods=["GET"]),
    Route("/templates/{id}", update_template, methods=["PATCH"]),
    Route("/templates/{id}", delete_template, methods=["DELETE"]),
]
