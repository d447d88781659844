"""Delivery receipts: one per part of a text, moving the message to `delivered` or `failed`.

A receipt finds its part by Vonage's `messageId`, else its message by our `client-ref` (the send
may still be in flight, or its answer was lost). A text is `delivered` once every part is; any
part that Vonage reports `failed`, `rejected` or `expired` fails the text, with `reason` holding
Vonage's status and err-code. `accepted` and `buffered` change nothing. A receipt seen before
(same id, status, err-code and carrier time) has no second effect.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation

import aiosqlite

FAILED = ("failed", "rejected", "expired")
# err-codes that say the number itself is gone: 3 absent subscriber (permanent), 9 illegal number
DEAD_NUMBER_CODES = ("3", "9")


async def apply_receipt(conn: aiosqlite.Connection, params: Mapping[str, str], now: int) -> str:
    """Apply one receipt inside a transaction: 'applied', 'duplicate' or 'ignored' (unknown id)."""
    vonage_id = params.get("messageId", "").strip()
    status = params.get("status", "").strip().lower()
    err_code = params.get("err-code", "").strip()
    client_ref = params.get("client-ref", "").strip()
    if not vonage_id or not status:
        return "ignored"
    cursor = await conn.execute(
        "select message_id from message_parts where vonage_id = ?", (vonage_id,)
    )
    part = await cursor.fetchone()
    if part is not None:
        message_id = part["message_id"]
    else:
        cursor = await conn.execute("select id from messages where client_ref = ?", (client_ref,))
        message = await cursor.fetchone() if client_ref else None
        if message is None:
            return "ignored"
        message_id = message["id"]
        await conn.execute(
            "insert into message_parts (vonage_id, message_id, updated_at) values (?, ?, ?)",
            (vonage_id, message_id, now),
        )
    cursor = await conn.execute(
        "insert or ignore into receipts "
        "(message_id, vonage_id, status, err_code, scts, received_at) values (?, ?, ?, ?, ?, ?)",
        (message_id, vonage_id, status, err_code, params.get("scts", ""), now),
    )
    if cursor.rowcount == 0:
        return "duplicate"
    if status not in (*FAILED, "delivered"):
        return "applied"
    await conn.execute(
        "update message_parts set status = ?, err_code = ?, price = coalesce(?, price), "
        "updated_at = ? where vonage_id = ?",
        (status, err_code, _price(params.get("price")), now, vonage_id),
    )
    await settle(conn, message_id, now)
    if status in FAILED and err_code in DEAD_NUMBER_CODES:
        await conn.execute(
            "update contacts set status = 'undeliverable', pending_since = null, updated_at = ? "
            "where status in ('active', 'pending') "
            "and id = (select contact_id from messages where id = ?)",
            (now, message_id),
        )
    return "applied"


async def settle(conn: aiosqlite.Connection, message_id: int, now: int) -> None:
    """Set the message's status from its parts' receipts, once they decide it."""
    cursor = await conn.execute(
        "select status, reason, segments, price from messages where id = ?", (message_id,)
    )
    message = await cursor.fetchone()
    if message is None:
        return
    open_ = message["status"] in ("sending", "sent") or (
        message["status"] == "failed" and message["reason"] == "unknown_outcome"
    )
    if not open_:
        return
    parts = list(
        await conn.execute_fetchall(
            "select status, err_code, price from message_parts where message_id = ? "
            "order by updated_at, vonage_id",
            (message_id,),
        )
    )
    failed = [p for p in parts if p["status"] in FAILED]
    delivered = [p for p in parts if p["status"] == "delivered"]
    prices = [_price(p["price"]) for p in parts]
    total = (
        str(sum((Decimal(p) for p in prices if p is not None), Decimal(0)))
        if parts and all(p is not None for p in prices)
        else None
    )
    if failed:
        first = failed[0]
        reason = f"{first['status']} (err-code {first['err_code'] or '?'})"
        await conn.execute(
            "update messages set status = 'failed', reason = ?, price = coalesce(price, ?), "
            "updated_at = ? where id = ?",
            (reason, total, now, message_id),
        )
    elif parts and len(delivered) == len(parts) and len(parts) >= (message["segments"] or 1):
        await conn.execute(
            "update messages set status = 'delivered', reason = null, delivered_at = ?, "
            "price = coalesce(price, ?), updated_at = ? where id = ?",
            (now, total, now, message_id),
        )


def _price(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    try:
        price = Decimal(value.strip())
    except InvalidOperation:
        return None
    return str(price) if price.is_finite() and price >= 0 else None
