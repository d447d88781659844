"""Contacts: a site plus a phone number. Reading them with all we hold, and erasing them.

Status changes go through the consent ledger (`collector.consent`), opt-ins through
`collector.optins`. Erasure removes the contact with its consent records, events, messages,
inbound texts and visitor links, and keeps only the number's keyed hash on the suppression list.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

import aiosqlite
import orjson

from collector import consent
from collector.db import Database, ms_to_iso
from collector.errors import NotFound
from collector.identity import visitors_of
from collector.sending import message_to_api

DETAIL_LIMIT = 500
EVENT_COLUMNS = "id, site_id, name, visitor_id, session_id, contact_id, url, title, props, at"


@dataclass(frozen=True)
class Contact:
    id: int
    site_id: int
    phone: str
    first_name: str | None
    status: str
    pending_since: int | None
    created_at: int
    updated_at: int

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Contact:
        return cls(**{name: row[name] for name in cls.__dataclass_fields__})

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "site_id": self.site_id,
            "phone": self.phone,
            "first_name": self.first_name,
            "status": self.status,
            "created_at": ms_to_iso(self.created_at),
            "updated_at": ms_to_iso(self.updated_at),
        }


async def get_contact(db: Database, contact_id: int) -> Contact:
    row = await db.fetchone("select * from contacts where id = ?", (contact_id,))
    if row is None:
        raise NotFound(f"no contact with id {contact_id}")
    return Contact.from_row(row)


async def find_contact(conn: aiosqlite.Connection, site_id: int, phone: str) -> Contact | None:
    cursor = await conn.execute(
        "select * from contacts where site_id = ? and phone = ?", (site_id, phone)
    )
    row = await cursor.fetchone()
    return Contact.from_row(row) if row else None


async def contacts_for_phone(db: Database, phone: str, site_id: int | None) -> list[Contact]:
    rows = await db.fetchall(
        "select * from contacts where phone = ? and (? is null or site_id = ?) order by id",
        (phone, site_id, site_id),
    )
    return [Contact.from_row(r) for r in rows]


async def list_contacts(
    db: Database,
    *,
    site_id: int | None,
    status: str | None,
    phone: str | None,
    limit: int,
    offset: int,
) -> tuple[list[Contact], int]:
    rows, total = await db.page(
        "contacts", {"site_id": site_id, "status": status, "phone": phone}, "id desc", limit, offset
    )
    return [Contact.from_row(r) for r in rows], total


def consent_to_api(record: dict[str, Any]) -> dict[str, Any]:
    """A ledger record: its hashed fields with `at` and `recorded_at` in RFC 3339 (to the ms)."""
    shown = dict(record)
    shown["at"] = ms_to_iso(record["at"])
    shown["recorded_at"] = ms_to_iso(record["recorded_at"])
    return shown


async def contact_detail(
    db: Database, contact: Contact, limit: int = DETAIL_LIMIT
) -> dict[str, Any]:
    """Everything held about one contact: consents with the chain check, events, messages,
    inbound texts and the browsers tied to it; the latest `limit` of each list (-1: all)."""
    records = await consent.ledger(db.reader, contact.id)
    events = await db.fetchall(
        f"select {EVENT_COLUMNS} from events where contact_id = ? order by at desc, id desc "
        "limit ?",
        (contact.id, limit),
    )
    messages = await db.fetchall(
        "select * from messages where contact_id = ? order by created_at desc, id desc limit ?",
        (contact.id, limit),
    )
    inbound = await db.fetchall(
        "select * from inbound_messages where contact_id = ? "
        "order by received_at desc, id desc limit ?",
        (contact.id, limit),
    )
    return {
        **contact.to_api(),
        "consents": [consent_to_api(r) for r in records],
        "consent_chain": consent.verify_chain(records).to_api(),
        "events": [event_to_api(r) for r in events],
        "messages": [message_to_api(r) for r in messages],
        "inbound": [inbound_to_api(r) for r in inbound],
        "visitors": [
            {**v, "linked_at": ms_to_iso(v["linked_at"])}
            for v in await visitors_of(db.reader, contact.id)
        ],
    }


def event_to_api(row: sqlite3.Row) -> dict[str, Any]:
    """As `GET /api/v1/events` shows an event."""
    return {
        **{name: row[name] for name in EVENT_COLUMNS.split(", ")},
        "props": orjson.loads(row["props"]),
        "at": ms_to_iso(row["at"]),
    }


def inbound_to_api(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "message_id": row["message_id"],
        "site_id": row["site_id"],
        "contact_id": row["contact_id"],
        "from": row["msisdn"],
        "to": row["to_number"],
        "body": row["body"],
        "keyword": row["keyword"],
        "received_at": ms_to_iso(row["received_at"]),
    }


async def export_phone(
    db: Database, suppression_key: str, phone: str, site_id: int | None
) -> dict[str, Any]:
    """All we hold about a number, on one site or every site (`contacts export`)."""
    digest = consent.phone_hash(suppression_key, phone)
    suppressions = await db.fetchall(
        "select site_id, reason, created_at from suppressions where phone_hash = ? "
        "and (? is null or site_id = ? or site_id is null) order by id",
        (digest, site_id, site_id),
    )
    loose_inbound = await db.fetchall(
        "select * from inbound_messages where msisdn = ? and contact_id is null "
        "and (? is null or site_id = ? or site_id is null) order by id",
        (phone, site_id, site_id),
    )
    loose_messages = await db.fetchall(
        "select * from messages where to_number = ? and contact_id is null "
        "and (? is null or site_id = ? or site_id is null) order by id",
        (phone, site_id, site_id),
    )
    return {
        "phone": phone,
        "contacts": [
            await contact_detail(db, c, limit=-1)  # an export holds everything
            for c in await contacts_for_phone(db, phone, site_id)
        ],
        "suppressions": [
            {**dict(s), "created_at": ms_to_iso(s["created_at"])} for s in suppressions
        ],
        "inbound_without_contact": [inbound_to_api(r) for r in loose_inbound],
        "messages_without_contact": [message_to_api(r) for r in loose_messages],
    }


async def erase_phone(
    db: Database, suppression_key: str, phone: str, site_ids: list[int] | None, now: int
) -> int:
    """Erase the number on the given sites (None: every site); returns the contacts removed.

    The number goes on the suppression list (reason `erased`) for each site it is erased from,
    or for every site when it was erased everywhere, so no later import or opt-in texts it
    without the person's confirmation.
    """
    async with db.transaction() as conn:
        # Deleted content is zeroed, not left in free pages (many builds do so by default).
        await conn.execute("pragma secure_delete = on")
        rows = await conn.execute_fetchall(
            "select id, site_id from contacts where phone = ? order by id", (phone,)
        )
        contacts = [r for r in rows if site_ids is None or r["site_id"] in site_ids]
        for row in contacts:
            await conn.execute(
                "delete from events where site_id = ? and visitor_id in "
                "(select visitor_id from contact_visitors where contact_id = ?) "
                "and contact_id is null",
                (row["site_id"], row["id"]),
            )
            await conn.execute("delete from events where contact_id = ?", (row["id"],))
            # the contact row goes first: only then do its ledger records let themselves go
            await conn.execute("delete from contacts where id = ?", (row["id"],))
        scopes: list[int | None] = [None] if site_ids is None else list(site_ids)
        for scope in scopes:
            await conn.execute(
                "delete from inbound_messages where msisdn = ? and (? is null or site_id = ?)",
                (phone, scope, scope),
            )
            await conn.execute(
                "delete from messages where to_number = ? and (? is null or site_id = ?)",
                (phone, scope, scope),
            )
            if scope is None:  # one entry for every site replaces the per-site ones
                await conn.execute(
                    "delete from suppressions where phone_hash = ?",
                    (consent.phone_hash(suppression_key, phone),),
                )
            await consent.suppress(conn, suppression_key, phone, scope, "erased", now)
    # Old page versions in the WAL go too, once no reader needs them; best effort.
    async with db.write_lock:
        await db.writer.execute("pragma wal_checkpoint(truncate)")
    return len(contacts)
