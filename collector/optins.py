"""Opt-ins, from the three places they come from: the web form, the admin API and a CSV import.

Web opt-ins (`optin` events on `POST /e`) are screened before the beacon is stored, so a bad
number or an abusive rate is refused with nothing stored, and recorded after it is committed:
contact, ledger record, the browser tied to the contact, and under double opt-in a confirmation
text. API and CSV opt-ins carry their own consent proof and start `active`, but never override a
STOP: a number that opted out or is suppressed is refused (API 409, import skips the row).

A web opt-in for a number that opted out or was erased needs a YES whatever the site's setting,
so that someone else typing the number in cannot turn texts back on.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiosqlite

from collector import consent
from collector.contacts import Contact, find_contact
from collector.errors import BadRequest, Conflict, NotFound
from collector.events import Beacon
from collector.identity import tie_visitor
from collector.optin_guard import confirmation_refused
from collector.phones import parse_phone
from collector.sending import queue_message
from collector.services import Services
from collector.site_fields import is_alphanumeric_sender
from collector.sites import Site, get_site

MAX_CONSENT_TEXT = 1000
MAX_FUTURE_MS = 5 * 60 * 1000
API_FIELDS = (
    "site_id",
    "phone",
    "first_name",
    "consent_text",
    "source",
    "ip",
    "user_agent",
    "page_url",
    "visitor_id",
    "consented_at",
)


def confirmation_text(site: Site) -> str:
    return (
        f"{site.name}: Reply YES to confirm texts about your cart & offers, up to "
        f"{site.daily_cap} msg/day. Msg & data rates may apply. Reply STOP to opt out."
    )


@dataclass(frozen=True)
class WebOptin:
    phone: str
    first_name: str | None
    consent_text: str | None
    page_url: str
    visitor_id: str
    event_uid: str


def screen_optins(services: Services, beacon: Beacon, site: Site, ip: str) -> list[WebOptin]:
    """The beacon's opt-ins with their numbers checked, and the rate limits taken; [] fast when
    the beacon has none. Raises 400 for a bad or foreign number, 429 over the limits."""
    count = sum(1 for e in beacon.events if isinstance(e, dict) and e.get("n") == "optin")
    if not count:
        return []
    services.optin_guard.admit(site.key, ip, count)  # before the parsing: floods stay cheap
    optins: list[WebOptin] = []
    for index, event in enumerate(beacon.events):
        if event.get("n") != "optin":
            continue
        props = event.get("p") or {}
        phone = parse_phone(
            props.get("phone"), site.country, site.allowed_countries, f"e[{index}].p.phone"
        )
        optins.append(
            WebOptin(
                phone=phone,
                first_name=(props.get("first_name") or "").strip() or None,
                consent_text=props.get("consent_text"),
                page_url=event["u"],
                visitor_id=beacon.visitor_id,
                event_uid=event["i"],
            )
        )
    return optins


async def record_web_optins(
    services: Services, site: Site, optins: list[WebOptin], ip: str, user_agent: str | None
) -> None:
    """Record screened web opt-ins (after their events are committed) in one transaction."""
    now = consent.now_ms()
    key = services.suppression_key
    can_confirm = not is_alphanumeric_sender(site.sender or services.settings.vonage_from)
    queued = False
    async with services.db.transaction() as conn:
        for optin in optins:
            cursor = await conn.execute(
                "select 1 from consents where site_id = ? and event_uid = ?",
                (site.id, optin.event_uid),
            )
            if await cursor.fetchone() is not None:
                continue  # a retried beacon
            contact = await find_contact(conn, site.id, optin.phone)
            stopped = bool(await consent.is_suppressed(conn, key, optin.phone, site.id)) or (
                contact is not None and contact.status == "opted_out"
            )
            if stopped and not can_confirm:
                continue  # no YES can reach us, so nothing may turn texts back on
            if contact is not None and contact.status == "active" and not stopped:
                status = "active"
            else:
                status = "pending" if site.double_opt_in or stopped else "active"
            contact_id = await upsert_contact(conn, site.id, optin.phone, optin.first_name, now)
            proof = consent.Proof(
                "web_form",
                consent_text=optin.consent_text,
                page_url=optin.page_url,
                ip=ip,
                user_agent=user_agent,
                visitor_id=optin.visitor_id,
                event_uid=optin.event_uid,
            )
            await consent.append_record(
                conn,
                contact_id=contact_id,
                site_id=site.id,
                phone=optin.phone,
                kind="opt_in",
                status=status,
                proof=proof,
                now=now,
            )
            await tie_visitor(conn, site.id, optin.visitor_id, contact_id, "optin", now)
            if status == "pending" and not await confirmation_refused(
                conn, optin.phone, now, services.settings.confirmations_per_hour
            ):
                await queue_message(
                    conn,
                    kind="confirmation",
                    to=optin.phone,
                    body=confirmation_text(site),
                    now=now,
                    site_id=site.id,
                    contact_id=contact_id,
                    sender=site.sender,
                )
                queued = True
    if queued:
        services.outbox.kick()


async def upsert_contact(
    conn: aiosqlite.Connection, site_id: int, phone: str, first_name: str | None, now: int
) -> int:
    """The contact's id, created (status set by the ledger record that follows) if new."""
    cursor = await conn.execute(
        "insert into contacts (site_id, phone, first_name, status, created_at, updated_at) "
        "values (?, ?, ?, 'pending', ?, ?) on conflict (site_id, phone) do update set "
        "first_name = coalesce(excluded.first_name, first_name), updated_at = excluded.updated_at "
        "returning id",
        (site_id, phone, first_name, now, now),
    )
    row = await cursor.fetchone()
    assert row is not None
    return int(row["id"])


async def server_optin(services: Services, data: dict[str, Any]) -> tuple[Contact, bool]:
    """`POST /api/v1/contacts`: an opt-in with the site's own proof; (contact, created)."""
    unknown = sorted(set(data) - set(API_FIELDS))
    if unknown:
        raise BadRequest(
            f"unknown field {unknown[0]!r}; accepted: {', '.join(API_FIELDS)}", field=unknown[0]
        )
    site_id = data.get("site_id")
    if isinstance(site_id, bool) or not isinstance(site_id, int) or not 0 < site_id < 2**62:
        raise BadRequest(
            "site_id is required: the id of the site consent was given to", field="site_id"
        )
    try:
        site = await get_site(services.db, site_id)
    except NotFound:
        raise BadRequest(f"no site with id {site_id}", field="site_id") from None
    now = consent.now_ms()
    phone = parse_phone(data.get("phone"), site.country, site.allowed_countries)
    first_name = check_text(data.get("first_name"), "first_name", 100)
    proof = consent.Proof(
        "api",
        at=parse_time(data.get("consented_at"), "consented_at", now),
        source_detail=check_text(data.get("source"), "source", 100),
        consent_text=check_text(
            data.get("consent_text"), "consent_text", MAX_CONSENT_TEXT, required=True
        ),
        page_url=check_text(data.get("page_url"), "page_url", 2048),
        ip=check_ip(data.get("ip"), "ip"),
        user_agent=check_text(data.get("user_agent"), "user_agent", 500),
        visitor_id=check_text(data.get("visitor_id"), "visitor_id", 64),
    )
    async with services.db.transaction() as conn:
        contact = await find_contact(conn, site.id, phone)
        await refuse_if_stopped(conn, services.suppression_key, contact, phone, site.id)
        contact_id = await upsert_contact(conn, site.id, phone, first_name, now)
        await consent.append_record(
            conn,
            contact_id=contact_id,
            site_id=site.id,
            phone=phone,
            kind="opt_in",
            status="active",
            proof=proof,
            now=now,
        )
        if proof.visitor_id:
            await tie_visitor(conn, site.id, proof.visitor_id, contact_id, "api", now)
        created = await find_contact(conn, site.id, phone)
    assert created is not None
    return created, contact is None


async def refuse_if_stopped(
    conn: aiosqlite.Connection, key: str, contact: Contact | None, phone: str, site_id: int
) -> None:
    if contact is not None and contact.status == "opted_out":
        raise Conflict(
            f"{phone} opted out (STOP); only its owner can resubscribe, by texting START",
            code="opted_out",
            field="phone",
        )
    if await consent.is_suppressed(conn, key, phone, site_id):
        raise Conflict(
            f"{phone} is on the suppression list (it opted out or was erased); only its owner "
            "can resubscribe, by texting START or confirming a web opt-in with YES",
            code="suppressed",
            field="phone",
        )


@dataclass(frozen=True)
class ImportRow:
    phone: str
    first_name: str | None
    consent_text: str
    consented_at: int
    source: str | None
    ip: str | None


async def import_optin(
    conn: aiosqlite.Connection, site: Site, key: str, row: ImportRow, now: int
) -> str:
    """One CSV row: 'imported', or 'unchanged' (already active), 'opted_out' or 'suppressed'."""
    contact = await find_contact(conn, site.id, row.phone)
    if contact is not None and contact.status == "active":
        return "unchanged"
    if contact is not None and contact.status == "opted_out":
        return "opted_out"
    if await consent.is_suppressed(conn, key, row.phone, site.id):
        return "suppressed"
    contact_id = await upsert_contact(conn, site.id, row.phone, row.first_name, now)
    proof = consent.Proof(
        "csv_import",
        at=row.consented_at,
        source_detail=row.source,
        consent_text=row.consent_text,
        ip=row.ip,
    )
    await consent.append_record(
        conn,
        contact_id=contact_id,
        site_id=site.id,
        phone=row.phone,
        kind="opt_in",
        status="active",
        proof=proof,
        now=now,
    )
    return "imported"


def check_text(value: Any, field: str, max_len: int, required: bool = False) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip() and not required):
        if required:
            raise BadRequest(f"{field} is required", field=field)
        return None
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(f"{field} must be a non-empty string", field=field)
    if len(value) > max_len:
        raise BadRequest(f"{field} is longer than {max_len} characters", field=field)
    return value


def check_ip(value: Any, field: str) -> str | None:
    if value is None or value == "":
        return None
    try:
        return str(ipaddress.ip_address(str(value).strip()))
    except ValueError:
        raise BadRequest(f"{field} {value!r} is not an IP address", field=field) from None


def parse_time(value: Any, field: str, now: int) -> int | None:
    """RFC 3339 (or a date, read as midnight UTC) in milliseconds; not in the future."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise BadRequest(f"{field} must be an RFC 3339 time like 2024-05-01T12:00:00Z", field=field)
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(
            f"{field} {value!r} is not an RFC 3339 time like 2024-05-01T12:00:00Z", field=field
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    ms = int(parsed.timestamp() * 1000)
    if ms > now + MAX_FUTURE_MS:
        raise BadRequest(f"{field} {value!r} is in the future", field=field)
    return ms
