"""Inbound texts: keywords (STOP, START, HELP, YES) and replies, and what each one does.

A keyword is the whole text, in any case, with surrounding whitespace and punctuation ignored.
It applies to every site whose sender is the number it was sent to (CONTRACT: `to`), and to
sites with no sender at all (neither their own nor `VONAGE_FROM`: the console default). When no
site matches, a STOP still applies to every site and to sites made later, since failing to
honour it is worse than honouring it too widely. Keyword replies go out at once, from the number texted.

- STOP family: opt-out record per contact, the number suppressed (even if we never knew it), the
  contact's unsent texts cancelled, one confirmation text.
- START, UNSTOP: re-subscription record for opted-out contacts (a pending one is confirmed), the
  suppression lifted; a confirmation text if anything changed.
- HELP, INFO: the site's help text, to anyone.
- YES, Y: confirms a pending double opt-in that has not expired.
- anything else, and any text in several parts: a reply in the contact's conversation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import aiosqlite

from collector import consent
from collector.contacts import Contact, find_contact
from collector.phones import same_number
from collector.sending import cancel_scheduled, queue_message
from collector.sites import Site

STOP_WORDS = frozenset(
    ("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT", "OPT OUT")
)
START_WORDS = frozenset(("START", "UNSTOP"))
HELP_WORDS = frozenset(("HELP", "INFO"))
YES_WORDS = frozenset(("YES", "Y"))
EDGES = re.compile(r"^[\W_]+|[\W_]+$")
INNER_GAPS = re.compile(r"[\s_-]+")


def classify(text: str) -> str | None:
    """'stop', 'start', 'help', 'yes', or None for anything else."""
    core = INNER_GAPS.sub(" ", EDGES.sub("", text)).upper()
    if core in STOP_WORDS:
        return "stop"
    if core in START_WORDS:
        return "start"
    if core in HELP_WORDS:
        return "help"
    if core in YES_WORDS:
        return "yes"
    return None


def stop_text(sites: list[Site]) -> str:
    return (
        f"{_brand(sites)}You're unsubscribed and will get no more texts from us. "
        "Reply START to resubscribe."
    )


def start_text(sites: list[Site]) -> str:
    cap = sites[0].daily_cap if sites else 1
    return (
        f"{_brand(sites)}You're resubscribed: up to {cap} msg/day. Msg & data rates may apply. "
        "Reply HELP for help, STOP to opt out."
    )


def _brand(sites: list[Site]) -> str:
    names = list(dict.fromkeys(site.name for site in sites))
    return f"{' & '.join(names)}: " if names else ""


@dataclass(frozen=True)
class Inbound:
    message_id: str
    msisdn: str  # E.164
    to: str  # our number, as Vonage wrote it
    text: str
    concat_ref: str | None = None
    concat_part: int | None = None
    concat_total: int | None = None


@dataclass(frozen=True)
class Context:
    """What keyword handling needs besides the connection."""

    suppression_key: str
    default_sender: str | None
    expiry_hours: int


async def handle_inbound(
    conn: aiosqlite.Connection, ctx: Context, inbound: Inbound, now: int
) -> bool:
    """Store the text and apply its keyword, inside a transaction; True when a reply is queued.
    A message id seen before has no second effect."""
    cursor = await conn.execute(
        "select 1 from inbound_messages where message_id = ? limit 1", (inbound.message_id,)
    )
    if await cursor.fetchone() is not None:
        return False
    rows = await conn.execute_fetchall("select * from sites order by id")
    every_site = [Site.from_row(r) for r in rows]
    sites = [site for site in every_site if _sends_from(site, ctx.default_sender, inbound.to)]
    keyword = classify(inbound.text) if inbound.concat_total in (None, 1) else None
    unmatched_stop = keyword == "stop" and not sites
    if unmatched_stop:
        sites = every_site
    contacts: dict[int, Contact] = {}
    for site in sites:
        contact = await find_contact(conn, site.id, inbound.msisdn)
        if contact is not None:
            contacts[site.id] = contact
    inbound_id = await _store(conn, inbound, sites, contacts, keyword, now)
    handler = {"stop": _stop, "start": _start, "help": _help, "yes": _yes}.get(keyword or "")
    if handler is None:
        return False
    reply = await handler(conn, ctx, inbound, sites, contacts, now)
    if unmatched_stop:
        await consent.suppress(conn, ctx.suppression_key, inbound.msisdn, None, "opted_out", now)
    if reply is None:
        return False
    first = next(iter(contacts.values()), None)
    await queue_message(
        conn,
        kind="keyword_reply",
        to=inbound.msisdn,
        body=reply,
        now=now,
        site_id=first.site_id if first else (sites[0].id if sites else None),
        contact_id=first.id if first else None,
        sender=inbound.to,
        inbound_id=inbound_id,
    )
    return True


async def _store(
    conn: aiosqlite.Connection,
    inbound: Inbound,
    sites: list[Site],
    contacts: dict[int, Contact],
    keyword: str | None,
    now: int,
) -> int:
    """One row per matching site (so each contact's conversation has it), else one without."""
    first_id: int | None = None
    site_ids: list[int | None] = [site.id for site in sites] or [None]
    for site_id in site_ids:
        contact = contacts.get(site_id) if site_id is not None else None
        cursor = await conn.execute(
            "insert into inbound_messages (message_id, site_id, contact_id, msisdn, to_number, "
            "body, keyword, concat_ref, concat_part, concat_total, received_at) "
            "values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                inbound.message_id,
                site_id,
                contact.id if contact else None,
                inbound.msisdn,
                inbound.to,
                inbound.text,
                keyword,
                inbound.concat_ref,
                inbound.concat_part,
                inbound.concat_total,
                now,
            ),
        )
        first_id = first_id or cursor.lastrowid
    assert first_id is not None
    return first_id


def _sends_from(site: Site, default_sender: str | None, to: str) -> bool:
    """The site texts from `to`; a site without any sender configured may be texted anywhere."""
    sender = site.sender or default_sender
    return sender is None or same_number(sender, to)


def _proof(inbound: Inbound) -> consent.Proof:
    return consent.Proof("keyword", keyword=inbound.text, inbound_message_id=inbound.message_id)


async def _record(
    conn: aiosqlite.Connection,
    contact: Contact,
    kind: str,
    status: str,
    inbound: Inbound,
    now: int,
) -> None:
    await consent.append_record(
        conn,
        contact_id=contact.id,
        site_id=contact.site_id,
        phone=contact.phone,
        kind=kind,
        status=status,
        proof=_proof(inbound),
        now=now,
    )


async def _stop(
    conn: aiosqlite.Connection,
    ctx: Context,
    inbound: Inbound,
    sites: list[Site],
    contacts: dict[int, Contact],
    now: int,
) -> str | None:
    for contact in contacts.values():
        if contact.status != "opted_out":
            await _record(conn, contact, "opt_out", "opted_out", inbound, now)
        await cancel_scheduled(conn, contact.id, "opted_out", now)
    scopes: list[int | None] = [site.id for site in sites] or [None]
    for scope in scopes:
        await consent.suppress(conn, ctx.suppression_key, inbound.msisdn, scope, "opted_out", now)
    return stop_text(sites)


async def _start(
    conn: aiosqlite.Connection,
    ctx: Context,
    inbound: Inbound,
    sites: list[Site],
    contacts: dict[int, Contact],
    now: int,
) -> str | None:
    changed = False
    for site in sites:
        if await consent.is_suppressed(conn, ctx.suppression_key, inbound.msisdn, site.id):
            await consent.lift_suppression(conn, ctx.suppression_key, inbound.msisdn, site.id)
            changed = True
        contact = contacts.get(site.id)
        if contact is not None and contact.status == "opted_out":
            await _record(conn, contact, "resubscribe", "active", inbound, now)
            changed = True
        elif contact is not None and contact.status == "pending":
            await _record(conn, contact, "confirmation", "active", inbound, now)
            changed = True
    return start_text(sites) if changed else None


async def _help(
    conn: aiosqlite.Connection,
    ctx: Context,
    inbound: Inbound,
    sites: list[Site],
    contacts: dict[int, Contact],
    now: int,
) -> str | None:
    known = [site for site in sites if site.id in contacts]
    chosen = (known or sites)[:1]
    return chosen[0].effective_help_text() if chosen else None


async def _yes(
    conn: aiosqlite.Connection,
    ctx: Context,
    inbound: Inbound,
    sites: list[Site],
    contacts: dict[int, Contact],
    now: int,
) -> str | None:
    deadline = now - ctx.expiry_hours * 3600 * 1000
    for contact in contacts.values():
        if contact.status != "pending":
            continue
        if contact.pending_since is not None and contact.pending_since <= deadline:
            await consent.expire(conn, _row(contact), now)
            continue
        await _record(conn, contact, "confirmation", "active", inbound, now)
        await consent.lift_suppression(conn, ctx.suppression_key, contact.phone, contact.site_id)
    return None


def _row(contact: Contact) -> dict[str, object]:
    return {"id": contact.id, "site_id": contact.site_id, "phone": contact.phone}
