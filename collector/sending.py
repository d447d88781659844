"""The sending path every text takes: a `messages` row, a claim, a last check, the sender, the outcome.

1. `queue_message()` writes the row (`scheduled`, with `due_at`) in the caller's transaction.
2. `Outbox.send(id)` claims it (`scheduled` → `sending`) in one short transaction, after the
   consent re-check for its kind (plus the caller's own `check`, e.g. sending window and cap).
3. The sender is called outside any transaction; a row left in `sending` by a crash is never sent
   again, and `failed` with `unknown_outcome` after an hour without a receipt (CONTRACT).
4. The outcome is written: `sent` with parts, price and Vonage ids; back to `scheduled` for a
   throttle or an account-level pause; `failed` with the reason.

The outbox's own loop sends what must go at once, confirmations and keyword replies, which skip the
window and the frequency cap. The scheduler of "Automations" calls `Outbox.send()` for its rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TextIO

import aiosqlite

from collector import consent
from collector.db import Database, ms_to_iso
from collector.receipts import settle
from collector.sender_types import Sender, SendError, SendResult
from collector.settings import Settings
from collector.sms_encoding import analyze
from collector.throttle import RateLimitedSender

log = logging.getLogger(__name__)

KINDS = ("automation", "confirmation", "keyword_reply", "manual")
STATUSES = ("scheduled", "sending", "sent", "delivered", "failed", "skipped", "cancelled")
IMMEDIATE_KINDS = ("confirmation", "keyword_reply")
MAX_ATTEMPTS = 5
IMMEDIATE_MAX_AGE_MS = 24 * 3600 * 1000
UNKNOWN_OUTCOME_MS = 3600 * 1000
ACCOUNT_PAUSE_MS = 60 * 1000
POLL_SECONDS = 5.0
STATUS_WEBHOOK = "/webhooks/vonage/status"
RECORD_CHUNK = 250  # outcomes written per transaction
DELIVERY_WORKERS = 16  # texts of a burst in flight at once (Vonage: the thread pool has 8)

Check = Callable[[aiosqlite.Connection, sqlite3.Row, int], Awaitable[str | None]]


def now_ms() -> int:
    return int(time.time() * 1000)


class ConsoleSender:
    """The default sender: prints each text to stdout instead of sending it."""

    name = "console"

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream

    async def send(
        self, *, to: str, sender: str | None, text: str, client_ref: str, callback_url: str | None
    ) -> SendResult:
        parts = max(1, analyze(text).segments)
        print(
            f"[sms] to {to} from {sender or '(default)'} ({parts} part(s)): {text}",
            file=self.stream or sys.stdout,
            flush=True,
        )
        ids = tuple(f"console-{client_ref}-{n}" for n in range(1, parts + 1))
        return SendResult(message_ids=ids, parts=parts, price=None, currency=None)

    async def close(self) -> None:
        return None


def make_sender(settings: Settings) -> Sender:
    """The sender `SMSR_SMS_PROVIDER` (or its default) names."""
    if settings.provider == "vonage":
        from collector.vonage import VonageSender

        return RateLimitedSender(VonageSender(settings), max(1, settings.sms_rate))
    return ConsoleSender()


def status_callback_url(settings: Settings) -> str | None:
    """Where Vonage posts this text's receipt; None without a public URL (no callback asked)."""
    if not settings.public_url:
        return None
    return settings.public_url.rstrip("/") + STATUS_WEBHOOK


async def queue_message(
    conn: aiosqlite.Connection,
    *,
    kind: str,
    to: str,
    body: str,
    now: int,
    site_id: int | None,
    contact_id: int | None = None,
    sender: str | None = None,
    due_at: int | None = None,
    automation_id: int | None = None,
    inbound_id: int | None = None,
) -> int:
    """A `scheduled` message row, due at `due_at` (default now); inside the caller's transaction."""
    assert kind in KINDS, kind
    cursor = await conn.execute(
        "insert into messages (site_id, contact_id, automation_id, kind, to_number, sender, body, "
        "status, due_at, segments, client_ref, inbound_id, created_at, updated_at) "
        "values (?, ?, ?, ?, ?, ?, ?, 'scheduled', ?, ?, ?, ?, ?, ?)",
        (
            site_id,
            contact_id,
            automation_id,
            kind,
            to,
            sender,
            body,
            now if due_at is None else due_at,
            max(1, analyze(body).segments),
            uuid.uuid4().hex,
            inbound_id,
            now,
            now,
        ),
    )
    assert cursor.lastrowid is not None
    return cursor.lastrowid


async def cancel_scheduled(
    conn: aiosqlite.Connection, contact_id: int, reason: str, now: int
) -> int:
    """Cancel the contact's texts not yet claimed (e.g. after STOP); returns how many."""
    cursor = await conn.execute(
        "update messages set status = 'cancelled', reason = ?, updated_at = ? "
        "where contact_id = ? and status = 'scheduled' and kind in ('automation', 'confirmation')",
        (reason, now, contact_id),
    )
    return cursor.rowcount


def message_to_api(row: sqlite3.Row | dict[str, Any]) -> dict[str, Any]:
    """A `messages` row as the admin API shows it (CONTRACT: resource `messages`)."""
    price = row["price"]
    return {
        "id": row["id"],
        "site_id": row["site_id"],
        "contact_id": row["contact_id"],
        "automation_id": row["automation_id"],
        "kind": row["kind"],
        "to": row["to_number"],
        "body": row["body"],
        "status": row["status"],
        "reason": row["reason"],
        "due_at": ms_to_iso(row["due_at"]),
        "sent_at": ms_to_iso(row["sent_at"]) if row["sent_at"] is not None else None,
        "delivered_at": (
            ms_to_iso(row["delivered_at"]) if row["delivered_at"] is not None else None
        ),
        "segments": row["segments"],
        "price": float(price) if price is not None else None,
        "currency": row["currency"],
        "created_at": ms_to_iso(row["created_at"]),
    }


async def kind_check(
    conn: aiosqlite.Connection, key: str, row: sqlite3.Row, now: int
) -> str | None:
    """The consent re-check right before a send, by kind; a skip reason or None."""
    if row["kind"] in IMMEDIATE_KINDS and now - row["created_at"] > IMMEDIATE_MAX_AGE_MS:
        return "stale"
    if row["kind"] == "keyword_reply":
        return None  # STOP/START confirmations and HELP go to whoever asked
    if row["contact_id"] is None:
        return "no_consent"
    if row["kind"] == "confirmation":
        cursor = await conn.execute(
            "select status from contacts where id = ?", (row["contact_id"],)
        )
        contact = await cursor.fetchone()
        if contact is None or contact["status"] != "pending":
            return "opted_out" if contact and contact["status"] == "opted_out" else "no_consent"
        return None
    return await consent.can_text(conn, key, row["contact_id"])


class Outbox:
    """Sends messages through one `Sender`; its loop sends confirmations and keyword replies."""

    def __init__(
        self, db: Database, sender: Sender, settings: Settings, suppression_key: str
    ) -> None:
        self.db = db
        self.sender = sender
        self.callback_url = status_callback_url(settings)
        self.suppression_key = suppression_key
        self.paused_until = 0  # ms; set by an account-level error (credentials, credit)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def paused(self) -> bool:
        return now_ms() < self.paused_until

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox")

    def kick(self) -> None:
        """Something is due now: look at once instead of at the next poll."""
        self._wake.set()

    async def stop(self) -> None:
        """Finish the text in flight, then end; what is still due goes after the next start."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await self._task

    async def send(self, message_id: int, check: Check | None = None) -> str | None:
        """Claim, check, send and record one `scheduled` message; its status after, or None
        when it was not `scheduled` (another worker has it, or it is done)."""
        now = now_ms()
        async with self.db.transaction() as conn:
            cursor = await conn.execute(
                "select * from messages where id = ? and status = 'scheduled'", (message_id,)
            )
            row = await cursor.fetchone()
            if row is None:
                return None
            reason = await kind_check(conn, self.suppression_key, row, now)
            if reason is None and check is not None:
                reason = await check(conn, row, now)
            if reason is not None:
                await conn.execute(
                    "update messages set status = 'skipped', reason = ?, updated_at = ? "
                    "where id = ?",
                    (reason, now, message_id),
                )
                return "skipped"
            cursor = await conn.execute(
                "update messages set status = 'sending', attempts = attempts + 1, updated_at = ? "
                "where id = ? returning *",
                (now, message_id),
            )
            claimed = await cursor.fetchone()
        assert claimed is not None
        return await self.deliver(claimed)

    async def deliver(self, row: sqlite3.Row) -> str:
        """Send a message its caller has claimed (status `sending`, `attempts` counted, the body
        final) and record the outcome; returns the status it ends in."""
        try:
            result = await self.sender.send(
                to=row["to_number"],
                sender=row["sender"],
                text=row["body"],
                client_ref=row["client_ref"],
                callback_url=self.callback_url,
            )
        except SendError as exc:
            return await self._record_error(row, exc)
        except Exception:
            # May have gone out: never resend; the hourly sweep settles it as unknown_outcome.
            log.exception("sending message %d failed unexpectedly", row["id"])
            return "sending"
        await self._record_sent(row["id"], result, "sent", None)
        return "sent"

    async def deliver_many(
        self,
        rows: list[sqlite3.Row],
        wait: Callable[[sqlite3.Row], Awaitable[None]] | None = None,
    ) -> list[str]:
        """`deliver` for a burst: every text is handed over first (each after `wait(row)`, e.g.
        its due time), then all that were accepted are recorded in one transaction (one each
        would keep the writer busy for seconds)."""

        async def attempt(row: sqlite3.Row) -> SendResult | SendError | None:
            if wait is not None:
                await wait(row)
            try:
                return await self.sender.send(
                    to=row["to_number"],
                    sender=row["sender"],
                    text=row["body"],
                    client_ref=row["client_ref"],
                    callback_url=self.callback_url,
                )
            except SendError as exc:
                return exc
            except Exception:
                log.exception("sending message %d failed unexpectedly", row["id"])
                return None  # may have gone out: left `sending`, settled by the sweep

        # A few workers pull the rows in order: one task per text would cost more than a
        # console send, and a slow provider still gets several requests in flight.
        outcomes: list[SendResult | SendError | None] = [None] * len(rows)
        queue = iter(enumerate(rows))

        async def worker() -> None:
            for index, row in queue:
                outcomes[index] = await attempt(row)

        await asyncio.gather(*(worker() for _ in range(min(DELIVERY_WORKERS, len(rows)))))
        accepted = [
            (r, o) for r, o in zip(rows, outcomes, strict=True) if isinstance(o, SendResult)
        ]
        for start in range(0, len(accepted), RECORD_CHUNK):  # short transactions: ingest waits
            chunk = [(row["id"], result) for row, result in accepted[start : start + RECORD_CHUNK]]
            async with self.db.transaction() as conn:
                await self._write_sent(conn, chunk, "sent", None, now_ms())
        statuses = []
        for row, outcome in zip(rows, outcomes, strict=True):
            if isinstance(outcome, SendResult):
                statuses.append("sent")
            elif isinstance(outcome, SendError):
                statuses.append(await self._record_error(row, outcome))
            else:
                statuses.append("sending")
        return statuses

    async def _record_sent(
        self, message_id: int, result: SendResult, status: str, reason: str | None
    ) -> None:
        async with self.db.transaction() as conn:
            await self._write_sent(conn, [(message_id, result)], status, reason, now_ms())

    async def _write_sent(
        self,
        conn: aiosqlite.Connection,
        sent: list[tuple[int, SendResult]],
        status: str,
        reason: str | None,
        now: int,
    ) -> None:
        """Record accepted texts (message id, result) with set-based statements."""
        await conn.executemany(
            # A receipt may have settled the text already: then only the facts are added.
            "update messages set status = case status when 'sending' then ? else status end, "
            "reason = case status when 'sending' then ? else reason end, sent_at = ?, "
            "segments = ?, price = coalesce(?, price), currency = ?, provider = ?, "
            "updated_at = ? where id = ?",
            [
                (
                    status,
                    reason,
                    now,
                    result.parts,
                    str(result.price) if result.price is not None else None,
                    result.currency,
                    self.sender.name,
                    now,
                    message_id,
                )
                for message_id, result in sent
            ],
        )
        await conn.executemany(
            "insert or ignore into message_parts (vonage_id, message_id, updated_at) "
            "values (?, ?, ?)",
            [(part, message_id, now) for message_id, result in sent for part in result.message_ids],
        )
        early = await conn.execute_fetchall(  # receipts that came before the provider's answer
            "select distinct message_id from message_parts where status is not null "
            "and message_id in (select value from json_each(?))",
            (json.dumps([message_id for message_id, _ in sent]),),
        )
        for row in early:
            await settle(conn, row["message_id"], now)

    async def _record_error(self, row: sqlite3.Row, exc: SendError) -> str:
        now = now_ms()
        message_id = row["id"]
        if exc.sent is not None:  # some parts of a long text went out: never resend
            await self._record_sent(message_id, exc.sent, "failed", f"{exc.code}: {exc.message}")
            return "failed"
        if exc.kind == "unknown":
            log.warning("message %d: outcome unknown (%s); not resending", message_id, exc.code)
            return "sending"
        if exc.kind == "account" or (exc.kind == "retry" and row["attempts"] < MAX_ATTEMPTS):
            if exc.kind == "account":
                self.paused_until = now + ACCOUNT_PAUSE_MS
                delay = ACCOUNT_PAUSE_MS
                log.error("sending paused for a minute: %s", exc.message)
            else:
                delay = int((exc.retry_after or 5 * 2 ** (row["attempts"] - 1)) * 1000)
            await self.db.execute(
                "update messages set status = 'scheduled', due_at = ?, updated_at = ?, "
                "attempts = attempts - ? where id = ? and status = 'sending'",
                (now + delay, now, 1 if exc.kind == "account" else 0, message_id),
            )
            return "scheduled"
        reason = "invalid_number" if exc.invalid_number else f"{exc.code}: {exc.message}"[:200]
        async with self.db.transaction() as conn:
            await conn.execute(
                "update messages set status = 'failed', reason = ?, updated_at = ? "
                "where id = ? and status = 'sending'",
                (reason, now, message_id),
            )
            if exc.invalid_number and row["contact_id"] is not None:
                await conn.execute(
                    "update contacts set status = 'undeliverable', pending_since = null, "
                    "updated_at = ? where id = ? and status in ('active', 'pending')",
                    (now, row["contact_id"]),
                )
        return "failed"

    async def sweep_unknown_outcomes(self, now: int | None = None) -> int:
        """Texts stuck in `sending` for an hour without a receipt: `failed`, `unknown_outcome`."""
        now = now_ms() if now is None else now
        return await self.db.execute(
            "update messages set status = 'failed', reason = 'unknown_outcome', updated_at = ? "
            "where status = 'sending' and updated_at < ?",
            (now, now - UNKNOWN_OUTCOME_MS),
        )

    async def send_due_immediate(self) -> int:
        """Send every confirmation and keyword reply that is due; returns how many were tried."""
        tried = 0
        while not self._stopping and not self.paused:
            rows = await self.db.fetchall(
                "select id from messages where status = 'scheduled' and due_at <= ? "
                "and kind in ('confirmation', 'keyword_reply') order by due_at, id limit 20",
                (now_ms(),),
            )
            if not rows:
                break
            for row in rows:
                if self._stopping or self.paused:
                    break
                await self.send(row["id"])
                tried += 1
        return tried

    async def _run(self) -> None:
        last_sweep = 0.0
        while not self._stopping:
            try:
                await self.send_due_immediate()
                if time.monotonic() - last_sweep > 60:
                    last_sweep = time.monotonic()
                    await self.sweep_unknown_outcomes()
            except Exception:
                log.exception("outbox pass failed; will retry")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), POLL_SECONDS)
            self._wake.clear()
