"""Turns events into scheduled automated messages, and cancels them when a goal arrives first.

The planner reads the events table forward from a cursor (and the visitor ties made since its
last pass, so a visitor identified after the trigger still gets planned). For each contact touched
it recomputes the trigger occurrences of every active automation of the site from the contact's
recent events (collector/rules.py) and brings the `messages` rows in line:

    open occurrence, no row        → a `scheduled` row due at its latest event + delay
    open occurrence, scheduled row → due moved when the occurrence has a newer event
    ended occurrence, scheduled    → `cancelled` with the reason (converted, cart_emptied)

One row per occurrence, enforced by `automation_runs`' unique key, so replanning is harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
import time
from collections.abc import Callable

import aiosqlite

from collector.automations import Automation
from collector.db import Database
from collector.rules import Event, Occurrence, occurrences, relevant_event_names
from collector.sending import queue_message

log = logging.getLogger(__name__)

POLL_SECONDS = 0.25
EVENTS_PER_PASS = 5000
CURSOR_EVENTS = "planner_events"
CURSOR_TIES = "planner_ties"
TIE_OVERLAP_MS = 5000


async def active_automations(conn: aiosqlite.Connection, site_id: int) -> list[Automation]:
    rows = await conn.execute_fetchall(
        "select * from automations where site_id = ? and active = 1 order by id", (site_id,)
    )
    return [Automation.from_row(row) for row in rows]


async def contact_events(
    conn: aiosqlite.Connection, contact_id: int, names: set[str], since: int
) -> list[Event]:
    rows = await conn.execute_fetchall(
        "select id, uid, name, at, path, props from events "
        "where contact_id = ? and at >= ? and name in (select value from json_each(?))",
        (contact_id, since, json.dumps(sorted(names))),
    )
    return [
        Event(r["id"], r["uid"], r["name"], r["at"], r["path"] or "/", json.loads(r["props"]))
        for r in rows
    ]


async def log_decision(
    conn: aiosqlite.Connection,
    message_id: int,
    now: int,
    decision: str,
    reason: str | None = None,
    detail: str | None = None,
) -> None:
    await conn.execute(
        "insert into message_log (message_id, at, decision, reason, detail) values (?, ?, ?, ?, ?)",
        (message_id, now, decision, reason, detail),
    )


async def plan_contact(conn: aiosqlite.Connection, contact_id: int, now: int) -> int:
    """Bring one contact's automated messages in line with its events; returns rows changed."""
    cursor = await conn.execute(
        "select c.id, c.site_id, c.phone, s.sender from contacts c join sites s on s.id = c.site_id "
        "where c.id = ?",
        (contact_id,),
    )
    contact = await cursor.fetchone()
    if contact is None:
        return 0
    automations = await active_automations(conn, contact["site_id"])
    if not automations:
        return 0
    since = now - 1000 * max(a.max_age_seconds + a.delay_seconds for a in automations)
    events = await contact_events(
        conn, contact_id, relevant_event_names(a.rule for a in automations), since
    )
    runs = await conn.execute_fetchall(
        "select r.message_id, r.automation_id, r.occurrence, r.trigger_event_id, m.status "
        "from automation_runs r join messages m on m.id = r.message_id where r.contact_id = ?",
        (contact_id,),
    )
    by_key = {(r["automation_id"], r["occurrence"]): r for r in runs}
    changed = 0
    for automation in automations:
        for occurrence in occurrences(automation.rule, events):
            run = by_key.get((automation.id, occurrence.key))
            changed += await _apply(conn, automation, contact, occurrence, run, now)
    return changed


async def _apply(
    conn: aiosqlite.Connection,
    automation: Automation,
    contact: sqlite3.Row,
    occurrence: Occurrence,
    run: sqlite3.Row | None,
    now: int,
) -> int:
    latest = occurrence.latest
    due = latest.at + automation.delay_seconds * 1000
    if run is None:
        if not occurrence.open or now - latest.at > automation.max_age_seconds * 1000:
            return 0  # ended before we knew the contact, or too old to text about
        message_id = await queue_message(
            conn,
            kind="automation",
            to=contact["phone"],
            body="",  # rendered at send time, so a template edit applies
            now=now,
            site_id=contact["site_id"],
            contact_id=contact["id"],
            sender=contact["sender"],
            due_at=due,
            automation_id=automation.id,
        )
        await conn.execute(
            "insert into automation_runs (message_id, automation_id, contact_id, occurrence, "
            "trigger_event_id, trigger_at) values (?, ?, ?, ?, ?, ?)",
            (message_id, automation.id, contact["id"], occurrence.key, latest.id, latest.at),
        )
        await log_decision(conn, message_id, now, "scheduled", None, f"trigger {latest.name}")
        return 1
    if run["status"] != "scheduled":
        return 0
    if not occurrence.open:
        await conn.execute(
            "update messages set status = 'cancelled', reason = ?, updated_at = ? "
            "where id = ? and status = 'scheduled'",
            (occurrence.ended_by, now, run["message_id"]),
        )
        await log_decision(conn, run["message_id"], now, "cancelled", occurrence.ended_by)
        return 1
    if latest.id != run["trigger_event_id"]:
        await conn.execute(
            "update messages set due_at = ?, updated_at = ? where id = ? and status = 'scheduled'",
            (due, now, run["message_id"]),
        )
        await conn.execute(
            "update automation_runs set trigger_event_id = ?, trigger_at = ? where message_id = ?",
            (latest.id, latest.at, run["message_id"]),
        )
        await log_decision(
            conn, run["message_id"], now, "rescheduled", None, f"newer {latest.name}"
        )
        return 1
    return 0


class Planner:
    """The background task: follows new events and new visitor ties, plans their contacts."""

    def __init__(
        self,
        db: Database,
        on_change: Callable[[], None] | None = None,
        clock: Callable[[], int] | None = None,
    ) -> None:
        self.db = db
        self.on_change = on_change or (lambda: None)
        self.clock = clock or (lambda: int(time.time() * 1000))
        self._wake = asyncio.Event()

    def kick(self) -> None:
        self._wake.set()

    async def plan_once(self, now: int | None = None) -> int:
        """One pass over what is new since the cursors; returns the message rows changed.

        Each contact is planned in its own short transaction, so ingest never waits long for
        the writer; a pass cut short by a crash is simply done again (planning is idempotent).
        """
        now = self.clock() if now is None else now
        cursors = dict(await self.db.fetchall("select name, value from cursors"))
        after_event = cursors.get(CURSOR_EVENTS, 0)
        ties_since = cursors.get(CURSOR_TIES, 0)
        rows = await self.db.fetchall(
            "select id, contact_id from events where id > ? order by id limit ?",
            (after_event, EVENTS_PER_PASS),
        )
        # Ties are read with an overlap: one made in the same millisecond as the last one seen
        # may commit after this read. Planning a contact twice changes nothing.
        ties = await self.db.fetchall(
            "select contact_id, linked_at from contact_visitors where linked_at >= ?",
            (ties_since - TIE_OVERLAP_MS,),
        )
        contacts = {r["contact_id"] for r in rows if r["contact_id"] is not None}
        contacts.update(t["contact_id"] for t in ties)
        changed = 0
        for contact_id in sorted(contacts):
            async with self.db.transaction() as conn:
                changed += await plan_contact(conn, contact_id, now)
        if rows or ties:
            last_event = rows[-1]["id"] if rows else after_event
            last_tie = max([t["linked_at"] for t in ties] + [ties_since - 1])
            await self.db.executemany(
                "insert into cursors (name, value) values (?, ?) "
                "on conflict (name) do update set value = excluded.value",
                [(CURSOR_EVENTS, last_event), (CURSOR_TIES, last_tie + 1)],
            )
        if changed:
            self.on_change()
        return changed

    async def run(self) -> None:
        while True:
            try:
                await self.plan_once()
            except Exception:
                log.exception("planning pass failed; will retry")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), POLL_SECONDS)
            self._wake.clear()
