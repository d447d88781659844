"""Sends automated messages when they fall due: checked and rendered ahead, handed over on time.

A burst of texts falling due together must each reach the sender within a second of its due
time, and the full checks (collector/checks.py), rendering and link rows cost a few hundred
microseconds a text. So the work is split in two:

- prepare, up to LOOKAHEAD before the due time: the full checks for the moment the text will
  go, then the rendered body and its tracked link are stored on the row, which stays
  `scheduled` with `prepared_at` set. Refusals and deferrals are written at once, with reasons.
- claim, up to CLAIM_AHEAD before the due time: one set-based re-check (contact still active,
  automation and template unchanged, no newer event of the contact, no new suppression; a
  prepared text already counts towards the cap). Rows that fail it go back through the full
  checks; the rest get `claimed_at` and stay `scheduled`, so a STOP, a goal or a switched-off
  automation still cancels them.
- hand over, at the due time: one set-based look again marks what is still ours and whose
  contact is still active `sending`, and the delivery workers hand it to the sender; the outbox
  records the outcomes. Claims left by a process that died are released at start.

Templates are still rendered "at send time" in the contract's sense: an edit after preparation
sends the row back to be rendered again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import aiosqlite

from collector.checks import DUE, BatchFacts, Decision, decide, gather_facts, row_rule
from collector.consent import phone_hash
from collector.db import Database
from collector.links import INSERT_LINK, choose_target, link_row, link_url
from collector.rules import relevant_event_names
from collector.sending import Outbox
from collector.sms_encoding import analyze
from collector.templating import TemplateProblem, context, render

log = logging.getLogger(__name__)

LOOKAHEAD_MS = 15_000  # checked and rendered this long before the due time
CLAIM_AHEAD_MS = 2_000  # claimed this long before, then handed over at the due time itself
PREPARE_BATCH = 250  # rows checked and rendered per (short) write transaction
HANDOFF_BATCH = 20_000
IDLE_SECONDS = 1.0


def stamp(base: str, row: sqlite3.Row) -> str:
    """What a prepared text was checked and rendered against (see _changed_since_prepared)."""
    return f"{base}:{row['template_updated_at']}:{row['automation_updated_at']}"


def _ids(values: object) -> str:
    return json.dumps(sorted(set(values)))  # type: ignore[call-overload]


class Scheduler:
    """The background task that sends automated messages when due."""

    def __init__(
        self,
        db: Database,
        outbox: Outbox,
        suppression_key: str,
        public_url: str | None,
        clock: Callable[[], int] | None = None,
    ) -> None:
        self.db = db
        self.outbox = outbox
        self.suppression_key = suppression_key
        self.public_url = (public_url or "").rstrip("/")
        self.clock = clock or (lambda: int(time.time() * 1000))
        self._wake = asyncio.Event()
        # Behind a rate limit, claim only what the limit lets out before the next claim: the
        # rest stays `scheduled`, where a STOP or a goal still cancels it.
        interval = getattr(outbox.sender, "interval", None)
        self.handoff_batch = (
            max(1, int(CLAIM_AHEAD_MS / 1000 / interval)) if interval else HANDOFF_BATCH
        )

    def kick(self) -> None:
        self._wake.set()

    async def dispatch_due(self) -> int:
        """Hand off what is due, prepare what soon will be; returns how many were handed off."""
        handed = 0
        while not self.outbox.paused:
            handed += await self.hand_off(self.clock())
            prepared = await self.prepare(self.clock())
            handed += await self.hand_off(self.clock())
            if prepared < PREPARE_BATCH:
                break
        return handed

    # -- prepare ------------------------------------------------------------------------------

    async def prepare(self, now: int) -> int:
        """Full checks and rendering for rows due within LOOKAHEAD; returns the rows looked at."""
        async with self.db.transaction() as conn:
            # Read inside the write transaction: no other pass can prepare these rows meanwhile.
            rows = list(
                await conn.execute_fetchall(
                    DUE, {"until": now + LOOKAHEAD_MS, "prepared": 0, "limit": PREPARE_BATCH}
                )
            )
            if not rows:
                return 0
            facts = await gather_facts(conn, rows, self.suppression_key, now)
            seen = await conn.execute_fetchall(
                "select (select max(id) from events) as event, "
                "(select max(id) from suppressions) as suppression"
            )
            base = f"{seen[0]['event'] or 0}:{seen[0]['suppression'] or 0}"
            updates, logs, links = [], [], []
            for row in rows:
                at = max(now, row["due_at"])  # checked for the moment it will go
                decision = decide(row, facts, at)
                if decision.status == "sending":
                    decision = self._render(decision, facts, now, links)
                if decision.status == "sending":
                    facts.sent_last_day[row["contact_id"]] += 1  # the cap holds inside a batch
                    updates.append(
                        (
                            "scheduled",
                            None,
                            row["due_at"],
                            decision.text,
                            analyze(decision.text).segments,
                            now,
                            stamp(base, row),
                            now,
                            row["id"],
                        )
                    )
                    continue
                updates.append(
                    (
                        decision.status,
                        decision.reason,
                        decision.due_at or row["due_at"],
                        None,
                        None,
                        None,
                        None,
                        now,
                        row["id"],
                    )
                )
                logs.append(
                    (
                        row["id"],
                        now,
                        decision.log or decision.status,
                        decision.reason,
                        decision.detail,
                    )
                )
            await conn.executemany(
                "update messages set status = ?, reason = ?, due_at = ?, body = coalesce(?, body), "
                "segments = coalesce(?, segments), prepared_at = ?, prepared_stamp = ?, updated_at = ? "
                "where id = ? and status = 'scheduled' and prepared_at is null",
                updates,
            )
            await conn.executemany(
                "insert into message_log (message_id, at, decision, reason, detail) "
                "values (?, ?, ?, ?, ?)",
                logs,
            )
            await conn.executemany(INSERT_LINK, links)
        return len(rows)

    def _render(
        self, decision: Decision, facts: BatchFacts, now: int, links: list[tuple[Any, ...]]
    ) -> Decision:
        """The text as it will go; a tracked link's row is added to `links` for the caller."""
        row = decision.row
        trigger = facts.trigger_events.get(row["trigger_event_id"])
        cart = None
        if trigger is not None and trigger["name"] == "cart_update":
            cart = json.loads(trigger["props"])
        link = None
        if self.public_url and row["template"] and "link" in row["template"]:
            # The page the text is about: the cart's `url`, else the trigger's page, and only
            # ever a page of the site (a browser-sent URL could point anywhere).
            site = facts.sites[row["site_id"]]
            url = choose_target(site, (cart or {}).get("url"), trigger["url"] if trigger else None)
            code, values = link_row(
                site=site, contact_id=row["contact_id"], message_id=row["id"], url=url, now=now
            )
            links.append(values)
            link = link_url(self.public_url, code)
        variables = context(
            first_name=row["first_name"],
            site_name=row["site_name"],
            event_url=trigger["url"] if trigger else None,
            event_title=trigger["title"] if trigger else None,
            cart=cart,
            link=link,
        )
        try:
            text = render(
                row["template"] or "",
                variables,
                add_opt_out=row["contact_id"] not in facts.texted_recently,
            )
        except TemplateProblem as exc:
            return Decision(row, "skipped", "render_error", detail=str(exc))
        if not text:
            return Decision(row, "skipped", "render_error", detail="renders empty")
        return Decision(row, "sending", text=text)

    # -- hand off -----------------------------------------------------------------------------

    async def hand_off(self, now: int) -> int:
        """Take the prepared rows due within CLAIM_AHEAD that are still valid, and hand each to
        the sender at its due time, after a last look at each row and its contact."""
        async with self.db.transaction() as conn:
            rows = list(
                await conn.execute_fetchall(
                    DUE, {"until": now + CLAIM_AHEAD_MS, "prepared": 1, "limit": self.handoff_batch}
                )
            )
            if not rows:
                return 0
            stale = await self._changed_since_prepared(conn, rows)
            ready = [row for row in rows if row["id"] not in stale]
            await conn.executemany(
                "update messages set prepared_at = null, prepared_stamp = null, updated_at = ? "
                "where id = ? and status = 'scheduled'",
                [(now, message_id) for message_id in stale],
            )
            await conn.executemany(
                "update messages set claimed_at = ? where id = ? and status = 'scheduled'",
                [(now, row["id"]) for row in ready],
            )
        if not ready:
            return 0
        groups: dict[int, list[sqlite3.Row]] = {}
        for row in ready:  # texts due within the same tenth of a second go together
            groups.setdefault(row["due_at"] // 100, []).append(row)
        done = await asyncio.gather(
            *(self._hand_over(group, now) for _, group in sorted(groups.items()))
        )
        handed = [pair for group in done for pair in group]
        await self.db.executemany(
            "insert into message_log (message_id, at, decision) values (?, ?, ?)",
            [
                (row["id"], self.clock(), "retry" if outcome == "scheduled" else outcome)
                for row, outcome in handed
                if outcome in ("sent", "failed", "scheduled")
            ],
        )
        return len(handed)

    async def _sleep_until(self, at_ms: int) -> None:
        wait = at_ms - self.clock()
        if wait > 0:
            await asyncio.sleep(wait / 1000)

    async def _hand_over(
        self, group: list[sqlite3.Row], claimed_at: int
    ) -> list[tuple[sqlite3.Row, str]]:
        """At the group's due time, look once more, mark what still goes `sending`, send it."""
        await self._sleep_until(min(row["due_at"] for row in group))
        going = await self._look_again(group, claimed_at)
        if not going:
            return []
        outcomes = await self.outbox.deliver_many(
            going, wait=lambda row: self._sleep_until(row["due_at"])
        )
        return list(zip(going, outcomes, strict=True))

    async def _look_again(self, group: list[sqlite3.Row], claimed_at: int) -> list[sqlite3.Row]:
        """Between the claim and the due time a STOP, a goal, a switched-off automation or a
        changed cart may have cancelled or moved a text, and the contact may have opted out.
        Returns the rows that still go, now `sending` with their attempt counted. Set-based
        statements only: this runs at the due time of a burst of texts."""
        now = self.clock()
        mine = {"ids": _ids(row["id"] for row in group), "claimed": claimed_at, "now": now}
        ours = (
            "id in (select value from json_each(:ids)) and status = 'scheduled' "
            "and claimed_at = :claimed"
        )
        active = "contact_id in (select id from contacts where status = 'active')"
        async with self.db.transaction() as conn:
            going = list(
                await conn.execute_fetchall(
                    "update messages set status = 'sending', claimed_at = null, "
                    f"attempts = attempts + 1, updated_at = :now where {ours} "
                    f"and due_at <= :now + 100 and {active} "
                    "returning id, contact_id, to_number, sender, body, client_ref, attempts, due_at",
                    mine,
                )
            )
            skipped = list(
                await conn.execute_fetchall(
                    "update messages set status = 'skipped', claimed_at = null, updated_at = :now, "
                    "reason = case (select status from contacts c where c.id = contact_id) "
                    "when 'opted_out' then 'opted_out' else 'no_consent' end "
                    f"where {ours} and due_at <= :now + 100 and not {active} "
                    "returning id, reason",
                    mine,
                )
            )
            # Whatever is left was moved to a later due time: the next pass takes it again.
            await conn.execute(f"update messages set claimed_at = null where {ours}", mine)
            await conn.executemany(  # `sent`/`failed` are logged once the sender has answered
                "insert into message_log (message_id, at, decision, reason) values (?, ?, ?, ?)",
                [(row["id"], now, "skipped", row["reason"]) for row in skipped],
            )
        return sorted(going, key=lambda row: (row["due_at"], row["id"]))

    async def _changed_since_prepared(
        self, conn: aiosqlite.Connection, rows: list[sqlite3.Row]
    ) -> set[int]:
        """Ids of rows that something may have changed since they were prepared.

        Compared by ids and versions, not times: the newest event and suppression the checks
        saw, and the template's and automation's `updated_at` they rendered with. Texts sent to
        the same contact meanwhile need no check: a prepared text already counts towards the cap.
        """
        stamps = {row["id"]: row["prepared_stamp"].split(":") for row in rows}
        oldest_event = min(int(s[0]) for s in stamps.values())
        oldest_suppression = min(int(s[1]) for s in stamps.values())
        events: dict[int, list[tuple[str, int]]] = {}
        for e in await conn.execute_fetchall(
            "select contact_id, name, id from events "
            "where contact_id in (select value from json_each(?)) and id > ?",
            (_ids(row["contact_id"] for row in rows), oldest_event),
        ):
            events.setdefault(e["contact_id"], []).append((e["name"], e["id"]))
        suppressed = {
            (s["phone_hash"], s["site_id"], s["id"])
            for s in await conn.execute_fetchall(
                "select id, phone_hash, site_id from suppressions where id > ?",
                (oldest_suppression,),
            )
        }
        per_contact: Counter[int] = Counter()
        changed = set()
        for row in rows:
            event_id, suppression_id = (int(x) for x in stamps[row["id"]][:2])
            names = relevant_event_names([row_rule(row)]) if row["trigger"] else set()
            per_contact[row["contact_id"]] += 1
            if (
                row["contact_status"] != "active"
                or not row["active"]
                or stamp(f"{event_id}:{suppression_id}", row) != row["prepared_stamp"]
                or any(n in names and i > event_id for n, i in events.get(row["contact_id"], []))
                or per_contact[row["contact_id"]] > 1  # one per contact per hand-off
                or self._suppressed_since(row, suppressed, suppression_id)
            ):
                changed.add(row["id"])
        return changed

    def _suppressed_since(
        self, row: sqlite3.Row, suppressed: set[tuple[str, int | None, int]], after: int
    ) -> bool:
        if not any(i > after for _, _, i in suppressed):
            return False
        mine = phone_hash(self.suppression_key, row["phone"])
        return any(
            h == mine and site in (None, row["site_id"]) and i > after for h, site, i in suppressed
        )

    # -- the loop -----------------------------------------------------------------------------

    async def run(self) -> None:
        # Claims of a process that died before its hand-over: those texts were never sent.
        await self.db.execute(
            "update messages set claimed_at = null where claimed_at is not null "
            "and status = 'scheduled'"
        )
        while True:
            try:
                await self.dispatch_due()
                timeout = await self._seconds_to_next()
            except Exception:
                log.exception("scheduler pass failed; will retry")
                timeout = IDLE_SECONDS
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
            self._wake.clear()

    async def _seconds_to_next(self) -> float:
        """Until the next prepared row may be claimed or the next other one may be prepared."""
        row = await self.db.fetchone(
            "select min(due_at - case when prepared_at is null then ? else ? end) as next "
            "from messages where status = 'scheduled' and kind = 'automation' "
            "and claimed_at is null",
            (LOOKAHEAD_MS, CLAIM_AHEAD_MS),
        )
        if row is None or row["next"] is None:
            return IDLE_SECONDS
        return min(IDLE_SECONDS, max(0.0, (row["next"] - self.clock()) / 1000))
