"""The consent ledger: append-only records chained by hash, the contact's status they set, the
suppression list, and `can_text()`.

Every opt-in, confirmation, opt-out, re-subscription and expiry is one `consents` row, written in
the same transaction as the status change it causes. A record's `hash` is SHA-256 over its fields
(`HASHED_FIELDS`, as canonical JSON) including the previous record's hash, so editing, removing
or reordering any record breaks every later hash; docs/consent-ledger.md gives the algorithm.
Triggers in migrations/0002_consent.sql refuse updates, deletes and records that do not continue
the chain.

Suppressed numbers are kept as HMAC-SHA256 under the instance's `suppression_key`, never in
clear, so they outlive erasure (CONTRACT "Contacts and consent").
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import aiosqlite

from collector.db import Database

log = logging.getLogger(__name__)

STATUSES = ("pending", "active", "expired", "opted_out", "undeliverable")
KINDS = ("opt_in", "confirmation", "opt_out", "resubscribe", "expiry")
SOURCES = ("web_form", "api", "csv_import", "keyword", "system")
HASHED_FIELDS = (
    "contact_id",
    "site_id",
    "seq",
    "kind",
    "status",
    "source",
    "source_detail",
    "phone",
    "at",
    "recorded_at",
    "consent_text",
    "page_url",
    "ip",
    "user_agent",
    "keyword",
    "inbound_message_id",
    "visitor_id",
    "event_uid",
    "prev_hash",
)
ALGORITHM = (
    "hash = sha256(utf8(json(record))).hex, where record holds the fields "
    + ", ".join(HASHED_FIELDS)
    + " (prev_hash is '' for the first record), keys sorted, no whitespace, non-ASCII unescaped"
)
EXPIRY_INTERVAL_SECONDS = 60


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class Proof:
    """Where a consent change came from; stored in the record exactly as given."""

    source: str
    at: int | None = None  # when it happened; default: when recorded
    source_detail: str | None = None
    consent_text: str | None = None
    page_url: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    keyword: str | None = None
    inbound_message_id: str | None = None
    visitor_id: str | None = None
    event_uid: str | None = None

    def __post_init__(self) -> None:
        assert self.source in SOURCES, self.source


def record_hash(record: Mapping[str, Any]) -> str:
    payload = {name: record[name] for name in HASHED_FIELDS}
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


async def append_record(
    conn: aiosqlite.Connection,
    *,
    contact_id: int,
    site_id: int,
    phone: str,
    kind: str,
    status: str,
    proof: Proof,
    now: int,
) -> dict[str, Any]:
    """Append one record and set the contact's status to `status`; inside a transaction."""
    assert kind in KINDS and status in STATUSES, (kind, status)
    cursor = await conn.execute(
        "select seq, hash from consents where contact_id = ? order by seq desc limit 1",
        (contact_id,),
    )
    last = await cursor.fetchone()
    fields = asdict(proof)
    record: dict[str, Any] = {
        **fields,
        "contact_id": contact_id,
        "site_id": site_id,
        "seq": (last["seq"] if last else 0) + 1,
        "kind": kind,
        "status": status,
        "phone": phone,
        "at": proof.at if proof.at is not None else now,
        "recorded_at": now,
        "prev_hash": last["hash"] if last else "",
    }
    record["hash"] = record_hash(record)
    names = ", ".join(record)  # fixed keys: Proof's fields and the ones above
    await conn.execute(
        f"insert into consents ({names}) values ({', '.join(':' + n for n in record)})", record
    )
    await conn.execute(
        "update contacts set status = ?, updated_at = ?, "
        "pending_since = case when ? = 'pending' then ? else null end where id = ?",
        (status, now, status, now, contact_id),
    )
    return record


@dataclass(frozen=True)
class ChainCheck:
    valid: bool
    records: int
    head: str
    problems: tuple[str, ...]

    def to_api(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "records": self.records,
            "head": self.head,
            "problems": list(self.problems),
            "algorithm": ALGORITHM,
        }


def verify_chain(records: Iterable[Mapping[str, Any]]) -> ChainCheck:
    """Recompute every hash and link of one contact's records, in `seq` order."""
    problems: list[str] = []
    prev = ""
    count = 0
    for count, record in enumerate(records, start=1):
        if record["seq"] != count:
            problems.append(f"record {count}: seq is {record['seq']}, a record is missing")
        if record["prev_hash"] != prev:
            problems.append(f"record {count}: prev_hash does not match the record before")
        if record_hash(record) != record["hash"]:
            problems.append(f"record {count}: hash does not match its fields (edited)")
        prev = record["hash"]
    return ChainCheck(not problems, count, prev, tuple(problems))


async def ledger(reader: aiosqlite.Connection, contact_id: int) -> list[dict[str, Any]]:
    rows = await reader.execute_fetchall(
        f"select id, {', '.join(HASHED_FIELDS)}, hash from consents "
        "where contact_id = ? order by seq",
        (contact_id,),
    )
    return [dict(row) for row in rows]


def phone_hash(key: str, phone: str) -> str:
    """The suppression list's form of an E.164 number: HMAC-SHA256 under the instance key."""
    return hmac.new(key.encode(), phone.encode(), hashlib.sha256).hexdigest()


async def suppress(
    conn: aiosqlite.Connection, key: str, phone: str, site_id: int | None, reason: str, now: int
) -> None:
    """Add the number for one site (None: every site); an erasure overrides an opt-out."""
    digest = phone_hash(key, phone)
    cursor = await conn.execute(
        "select id from suppressions where phone_hash = ? and ifnull(site_id, 0) = ifnull(?, 0)",
        (digest, site_id),
    )
    row = await cursor.fetchone()
    if row is None:
        await conn.execute(
            "insert into suppressions (phone_hash, site_id, reason, created_at) "
            "values (?, ?, ?, ?)",
            (digest, site_id, reason, now),
        )
    elif reason == "erased":
        await conn.execute("update suppressions set reason = ? where id = ?", (reason, row["id"]))


async def lift_suppression(conn: aiosqlite.Connection, key: str, phone: str, site_id: int) -> None:
    """The person consented again (START, YES): the site's entry and any all-sites entry go."""
    await conn.execute(
        "delete from suppressions where phone_hash = ? and (site_id = ? or site_id is null)",
        (phone_hash(key, phone), site_id),
    )


async def is_suppressed(
    conn: aiosqlite.Connection, key: str, phone: str, site_id: int
) -> str | None:
    """The reason the number is suppressed for the site, or None."""
    cursor = await conn.execute(
        "select reason from suppressions where phone_hash = ? "
        "and (site_id = ? or site_id is null) order by reason limit 1",
        (phone_hash(key, phone), site_id),
    )
    row = await cursor.fetchone()
    return str(row["reason"]) if row else None


async def can_text(conn: aiosqlite.Connection, key: str, contact_id: int) -> str | None:
    """None when the contact may get an automated text now, else the reason it may not.

    Reasons are the contract's skip reasons: `opted_out` after STOP or suppression,
    `no_consent` for a contact that is pending, expired or gone, `invalid_number` when
    undeliverable.
    """
    cursor = await conn.execute(
        "select site_id, phone, status from contacts where id = ?", (contact_id,)
    )
    row = await cursor.fetchone()
    if row is None:
        return "no_consent"
    if row["status"] == "opted_out":
        return "opted_out"
    if row["status"] == "undeliverable":
        return "invalid_number"
    if row["status"] != "active":
        return "no_consent"
    if await is_suppressed(conn, key, row["phone"], row["site_id"]):
        return "opted_out"
    return None


async def expire_pending(db: Database, expiry_hours: int, now: int | None = None) -> int:
    """Pending opt-ins older than the expiry become `expired`; returns how many."""
    now = now_ms() if now is None else now
    cutoff = now - expiry_hours * 3600 * 1000
    expired = 0
    while True:
        async with db.transaction() as conn:
            rows = list(
                await conn.execute_fetchall(
                    "select id, site_id, phone from contacts "
                    "where status = 'pending' and pending_since <= ? limit 200",
                    (cutoff,),
                )
            )
            for row in rows:
                await expire(conn, dict(row), now)
        expired += len(rows)
        if len(rows) < 200:
            return expired


async def expire(conn: aiosqlite.Connection, contact: Mapping[str, Any], now: int) -> None:
    """Record that a pending opt-in ran out; `contact` has id, site_id and phone."""
    await append_record(
        conn,
        contact_id=contact["id"],
        site_id=contact["site_id"],
        phone=contact["phone"],
        kind="expiry",
        status="expired",
        proof=Proof("system"),
        now=now,
    )
