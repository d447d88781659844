"""`/api/v1/contacts`: list, server-side opt-in (create), read with all we hold, update, erase."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from collector import consent, contacts
from collector.api.http import int_param, json_body, page_of, path_id, require_admin
from collector.errors import BadRequest, NotFound
from collector.optins import check_text, server_optin
from collector.phones import lookup_form
from collector.sending import cancel_scheduled
from collector.sites import get_site

EDITABLE = ("first_name", "status")


async def list_contacts(request: Request) -> Response:
    svc = require_admin(request)
    page = page_of(request)
    site_id = int_param(request, "site_id", None)
    status = request.query_params.get("status") or None
    if status is not None and status not in consent.STATUSES:
        raise BadRequest(
            f"?status={status!r} is not one of {', '.join(consent.STATUSES)}", field="status"
        )
    phone = None
    raw_phone = request.query_params.get("phone")
    if raw_phone:
        country = None
        if site_id is not None:
            try:
                country = (await get_site(svc.db, site_id)).country
            except NotFound:
                country = None
        phone = lookup_form(raw_phone, country)
        if phone is None:
            raise BadRequest(
                f"?phone={raw_phone!r} is not a phone number; give it like +14155552671",
                field="phone",
            )
    items, total = await contacts.list_contacts(
        svc.db,
        site_id=site_id,
        status=status,
        phone=phone,
        limit=page.per_page,
        offset=page.offset,
    )
    return JSONResponse(page.answer([c.to_api() for c in items], total))


async def create_contact(request: Request) -> Response:
    svc = require_admin(request)
    contact, created = await server_optin(svc, await json_body(request))
    return JSONResponse(contact.to_api(), status_code=201 if created else 200)


async def read_contact(request: Request) -> Response:
    svc = require_admin(request)
    contact = await contacts.get_contact(svc.db, path_id(request))
    return JSONResponse(await contacts.contact_detail(svc.db, contact))


async def update_contact(request: Request) -> Response:
    """`first_name`, and `status: "opted_out"` for an opt-out the person asked for elsewhere."""
    svc = require_admin(request)
    contact = await contacts.get_contact(svc.db, path_id(request))
    data = await json_body(request)
    unknown = sorted(set(data) - set(EDITABLE))
    if unknown:
        raise BadRequest(
            f"{unknown[0]!r} cannot be changed; editable: {', '.join(EDITABLE)}", field=unknown[0]
        )
    status = data.get("status", contact.status)
    if status != contact.status and status != "opted_out":
        raise BadRequest(
            "status can only be set to opted_out here; opt-ins need consent proof "
            "(POST /api/v1/contacts) and confirmations come from the person",
            field="status",
        )
    first_name = check_text(data.get("first_name"), "first_name", 100)
    now = consent.now_ms()
    async with svc.db.transaction() as conn:
        if "first_name" in data:
            await conn.execute(
                "update contacts set first_name = ?, updated_at = ? where id = ?",
                (first_name, now, contact.id),
            )
        if status != contact.status:
            await consent.append_record(
                conn,
                contact_id=contact.id,
                site_id=contact.site_id,
                phone=contact.phone,
                kind="opt_out",
                status="opted_out",
                proof=consent.Proof("api"),
                now=now,
            )
            await consent.suppress(
                conn, svc.suppression_key, contact.phone, contact.site_id, "opted_out", now
            )
            await cancel_scheduled(conn, contact.id, "opted_out", now)
    return JSONResponse((await contacts.get_contact(svc.db, contact.id)).to_api())


async def delete_contact(request: Request) -> Response:
    svc = require_admin(request)
    contact = await contacts.get_contact(svc.db, path_id(request))
    await contacts.erase_phone(
        svc.db, svc.suppression_key, contact.phone, [contact.site_id], consent.now_ms()
    )
    return Response(status_code=204)


routes = [
    Route("/contacts", list_contacts, methods=["GET"]),
    Route("/contacts", create_contact, methods=["POST"]),
    Route("/contacts/{id}", read_contact, methods=["GET"]),
    Route("/contacts/{id}", update_contact, methods=["PATCH"]),
    Route("/contacts/{id}", delete_contact, methods=["DELETE"]),
]
