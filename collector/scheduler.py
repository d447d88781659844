"""Sends automated messages when they fall due, after checking everything once more.

Due rows are taken in batches. For each, right before sending (contract, "Automations and
sending"): is the automation still on, is the trigger still fresh (`max_age_seconds`), is consent
active, has a goal happened or the cart changed since the trigger (the occurrence is recomputed
from the contact's events with the same rules the planner uses), is the contact under the
frequency cap, and is it inside the recipient's sending window? The answer is written with its
reason in one transaction per batch: `skipped`, `cancelled`-free deferral (`scheduled` with a
later `due_at`), or `sending` with the rendered text. Only then are texts handed to the sender,
outside any transaction; the outbox records the outcome.
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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiosqlite

from collector.consent import phone_hash
from collector.db import Database
from collector.links import choose_target, insert_link, link_url
from collector.rules import Event, Rule, occurrences, relevant_event_names, rule_of
from collector.send_window import candidate_zones, next_send_time
from collector.sending import Outbox
from collector.sites import Site
from collector.sms_encoding import analyze
from collector.templating import TemplateProblem, context, render

log = logging.getLogger(__name__)

BATCH = 500
IDLE_SECONDS = 1.0
PENDING_RECHECK_MS = 60_000
CAP_WINDOW_MS = 24 * 3600 * 1000
OPT_OUT_NOTICE_MS = 30 * 86400 * 1000

DUE = """
select m.id, m.site_id, m.contact_id, m.automation_id, m.due_at, m.client_ref, m.attempts,
       m.to_number, m.sender, m.created_at, m.kind, m.status,
       r.occurrence, r.trigger_event_id, r.trigger_at,
       a.id as a_id, a.site_id as a_site_id, a.trigger, a.path_pattern, a.min_cart_value,
       a.delay_seconds, a.goals, a.max_age_seconds, a.active, t.body as template,
       c.status as contact_status, c.phone, c.first_name,
       s.name as site_name, s.timezone, s.send_window_start, s.send_window_end, s.daily_cap
from messages m
join automation_runs r on r.message_id = m.id
join contacts c on c.id = m.contact_id
join sites s on s.id = m.site_id
left join automations a on a.id = m.automation_id
left join templates t on t.id = a.template_id
where m.status = 'scheduled' and m.kind = 'automation' and m.due_at <= ?
order by m.due_at, m.id
limit ?
"""


@dataclass
class Decision:
    """What the checks concluded for one due row."""

    row: sqlite3.Row
    status: str  # 'sending', 'skipped' or 'scheduled' (waiting or deferred)
    reason: str | None = None
    due_at: int | None = None
    text: str = ""
    log: str = ""
    detail: str | None = None


@dataclass
class BatchFacts:
    """Everything the checks need about a batch, read with a handful of set-based queries."""

    suppressed: set[str] = field(default_factory=set)
    events: dict[int, list[Event]] = field(default_factory=dict)
    sent_last_day: Counter[int] = field(default_factory=Counter)
    texted_recently: set[int] = field(default_factory=set)
    trigger_events: dict[int, sqlite3.Row] = field(default_factory=dict)
    sites: dict[int, Site] = field(default_factory=dict)


def _ids(values: Any) -> str:
    return json.dumps(sorted(set(values)))


async def gather_facts(
    conn: aiosqlite.Connection, rows: list[sqlite3.Row], suppression_key: str, now: int
) -> BatchFacts:
    facts = BatchFacts()
    contacts = _ids(r["contact_id"] for r in rows)
    hashes = {phone_hash(suppression_key, r["phone"]): r for r in rows}
    found = await conn.execute_fetchall(
        "select phone_hash, site_id from suppressions where phone_hash in "
        "(select value from json_each(?))",
        (json.dumps(list(hashes)),),
    )
    for hit in found:
        row = hashes[hit["phone_hash"]]
        if hit["site_id"] is None or hit["site_id"] == row["site_id"]:
            facts.suppressed.add(row["phone"])
    rules = [row_rule(r) for r in rows if r["a_id"] is not None]
    if rules:
        since = min(r["trigger_at"] for r in rows) - 7 * 86400 * 1000
        names = _ids(relevant_event_names(rules))
        for e in await conn.execute_fetchall(
            "select contact_id, id, uid, name, at, path, props from events "
            "where contact_id in (select value from json_each(?)) and at >= ? "
            "and name in (select value from json_each(?))",
            (contacts, since, names),
        ):
            facts.events.setdefault(e["contact_id"], []).append(
                Event(
                    e["id"], e["uid"], e["name"], e["at"], e["path"] or "/", json.loads(e["props"])
                )
            )
    for sent in await conn.execute_fetchall(
        "select contact_id, site_id, kind, max(sent_at) as last, "
        "sum(kind = 'automation' and sent_at >= ?) as automated from messages "
        "where contact_id in (select value from json_each(?)) and sent_at >= ? "
        "group by contact_id, site_id, kind",
        (now - CAP_WINDOW_MS, contacts, now - OPT_OUT_NOTICE_MS),
    ):
        facts.texted_recently.add(sent["contact_id"])
        facts.sent_last_day[sent["contact_id"]] += sent["automated"] or 0
    triggers = _ids(r["trigger_event_id"] for r in rows if r["trigger_event_id"] is not None)
    for e in await conn.execute_fetchall(
        "select id, url, title, name, props from events where id in (select value from json_each(?))",
        (triggers,),
    ):
        facts.trigger_events[e["id"]] = e
    for site in await conn.execute_fetchall(
        "select * from sites where id in (select value from json_each(?))",
        (_ids(r["site_id"] for r in rows),),
    ):
        facts.sites[site["id"]] = Site.from_row(site)
    return facts


def row_rule(row: sqlite3.Row) -> Rule:
    return rule_of(row["trigger"], row["goals"], row["path_pattern"], row["min_cart_value"])


def decide(row: sqlite3.Row, facts: BatchFacts, now: int) -> Decision:
    """The checks right before sending, in the contract's order of reasons."""
    if row["a_id"] is None or not row["active"]:
        return Decision(row, "skipped", "automation_off")
    max_age = row["max_age_seconds"] * 1000
    if now - row["trigger_at"] > max_age:
        return Decision(row, "skipped", "stale")
    status = row["contact_status"]
    if status == "opted_out" or row["phone"] in facts.suppressed:
        return Decision(row, "skipped", "opted_out")
    if status == "undeliverable":
        return Decision(row, "skipped", "invalid_number")
    if status == "pending":
        wait = min(now + PENDING_RECHECK_MS, row["trigger_at"] + max_age + 1)
        return Decision(row, "scheduled", None, wait, log="waiting", detail="consent pending")
    if status != "active":
        return Decision(row, "skipped", "no_consent")
    found = occurrences(row_rule(row), facts.events.get(row["contact_id"], []))
    mine = next((o for o in found if o.key == row["occurrence"]), None)
    if mine is not None and not mine.open:
        return Decision(row, "skipped", mine.ended_by)
    if mine is not None and mine.latest.id != row["trigger_event_id"]:
        due = mine.latest.at + row["delay_seconds"] * 1000
        return Decision(
            row, "scheduled", None, due, log="rescheduled", detail=f"newer {mine.latest.name}"
        )
    if facts.sent_last_day[row["contact_id"]] >= row["daily_cap"]:
        return Decision(row, "skipped", "capped")
    zones = candidate_zones(row["phone"], row["timezone"])
    when = next_send_time(
        datetime.fromtimestamp(now / 1000, UTC),
        zones,
        row["send_window_start"],
        row["send_window_end"],
    )
    if when is None:
        return Decision(row, "skipped", "stale", detail="no sending window in every candidate zone")
    when_ms = int(when.timestamp() * 1000)
    if when_ms > now:
        if when_ms - row["trigger_at"] > max_age:
            return Decision(row, "skipped", "stale", detail="next sending window is too late")
        return Decision(row, "scheduled", None, when_ms, log="deferred", detail=when.isoformat())
    return Decision(row, "sending")


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

    def kick(self) -> None:
        self._wake.set()

    async def dispatch_due(self) -> int:
        """Check and send every row due now, batch by batch; returns how many were handed off."""
        handed = 0
        while not self.outbox.paused:
            now = self.clock()
            rows = await self.db.fetchall(DUE, (now, BATCH))
            if not rows:
                break
            ready = await self._decide_batch(rows, now)
            handed += len(ready)
            outcomes = await asyncio.gather(*(self.outbox.deliver(row) for row in ready))
            await self.db.executemany(
                "insert into message_log (message_id, at, decision) values (?, ?, ?)",
                [
                    (row["id"], self.clock(), "retry" if outcome == "scheduled" else outcome)
                    for row, outcome in zip(ready, outcomes, strict=True)
                    if outcome in ("sent", "failed", "scheduled")
                ],
            )
            if len(rows) < BATCH:
                break
        return handed

    async def _decide_batch(self, rows: list[sqlite3.Row], now: int) -> list[sqlite3.Row]:
        ready: list[sqlite3.Row] = []
        async with self.db.transaction() as conn:
            facts = await gather_facts(conn, rows, self.suppression_key, now)
            updates, logs = [], []
            for row in rows:
                decision = decide(row, facts, now)
                if decision.status == "sending":
                    decision = await self._render(conn, decision, facts, now)
                if decision.status == "sending":
                    facts.sent_last_day[row["contact_id"]] += 1  # the cap holds inside a batch
                updates.append(
                    (
                        decision.status,
                        decision.reason,
                        decision.due_at or row["due_at"],
                        decision.text or None,
                        segments(decision.text),
                        now,
                        int(decision.status == "sending"),
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
                "update messages set status = ?, reason = ?, due_at = ?, "
                "body = coalesce(?, body), segments = coalesce(?, segments), updated_at = ?, "
                "attempts = attempts + ? where id = ? and status = 'scheduled'",
                updates,
            )
            await conn.executemany(
                "insert into message_log (message_id, at, decision, reason, detail) "
                "values (?, ?, ?, ?, ?)",
                logs,
            )
            ids = [u[-1] for u in updates if u[0] == "sending"]
            if ids:
                ready = list(
                    await conn.execute_fetchall(
                        "select * from messages where id in (select value from json_each(?))",
                        (json.dumps(ids),),
                    )
                )
        return ready

    async def _render(
        self, conn: aiosqlite.Connection, decision: Decision, facts: BatchFacts, now: int
    ) -> Decision:
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
            code = await insert_link(
                conn,
                site=site,
                contact_id=row["contact_id"],
                message_id=row["id"],
                url=url,
                now=now,
            )
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

    async def run(self) -> None:
        while True:
            try:
                await self.dispatch_due()
                timeout = await self._seconds_to_next_due()
            except Exception:
                log.exception("scheduler pass failed; will retry")
                timeout = IDLE_SECONDS
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
            self._wake.clear()

    async def _seconds_to_next_due(self) -> float:
        row = await self.db.fetchone(
            "select min(due_at) as due from messages where status = 'scheduled' and kind = 'automation'"
        )
        if row is None or row["due"] is None:
            return IDLE_SECONDS
        return min(IDLE_SECONDS, max(0.0, (row["due"] - self.clock()) / 1000))


def segments(text: str) -> int | None:
    return analyze(text).segments if text else None
