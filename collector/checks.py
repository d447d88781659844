"""The checks an automated text passes before it is sent (contract, "Automations and sending").

Is the automation still on, is the trigger still fresh (`max_age_seconds`), is consent active and
the number not suppressed, has a goal happened or the cart changed since the trigger (the
occurrence is recomputed from the contact's events with the same rules the planner uses), is the
contact under the frequency cap, and is the recipient inside their sending window? Facts for a
whole batch are read with a handful of set-based queries; `decide` is then pure.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiosqlite

from collector.consent import phone_hash
from collector.rules import Event, Rule, occurrences, relevant_event_names, rule_of
from collector.send_window import ALWAYS, candidate_zones, next_send_time
from collector.sites import Site

PENDING_RECHECK_MS = 60_000
CAP_WINDOW_MS = 24 * 3600 * 1000
OPT_OUT_NOTICE_MS = 30 * 86400 * 1000
WINDOW_MARGIN_MS = 60_000  # a text is never handed over in the last minute of a window

DUE = """
select m.id, m.site_id, m.contact_id, m.automation_id, m.due_at, m.client_ref, m.attempts,
       m.to_number, m.sender, m.created_at, m.kind, m.status, m.prepared_at, m.prepared_stamp,
       r.occurrence, r.trigger_event_id, r.trigger_at,
       a.id as a_id, a.trigger, a.path_pattern, a.min_cart_value, a.delay_seconds, a.goals,
       a.max_age_seconds, a.active, a.updated_at as automation_updated_at,
       t.body as template, t.updated_at as template_updated_at,
       c.status as contact_status, c.phone, c.first_name,
       s.name as site_name, s.timezone, s.send_window_start, s.send_window_end, s.daily_cap
from messages m
join automation_runs r on r.message_id = m.id
join contacts c on c.id = m.contact_id
join sites s on s.id = m.site_id
left join automations a on a.id = m.automation_id
left join templates t on t.id = a.template_id
where m.status = 'scheduled' and m.kind = 'automation' and m.due_at <= :until
  and (m.prepared_at is not null) = :prepared and m.claimed_at is null
order by m.due_at, m.id
limit :limit
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
    # Automated texts count towards the cap from the moment they are prepared or in flight.
    for sent in await conn.execute_fetchall(
        "select contact_id, "
        "sum(kind = 'automation' and (sent_at >= :day or status = 'sending' "
        "    or (status = 'scheduled' and prepared_at is not null))) as automated, "
        "max(sent_at >= :month) as recent from messages "
        "where contact_id in (select value from json_each(:contacts)) and (sent_at >= :month "
        "    or status = 'sending' or (status = 'scheduled' and prepared_at is not null)) "
        "group by contact_id",
        {"day": now - CAP_WINDOW_MS, "month": now - OPT_OUT_NOTICE_MS, "contacts": contacts},
    ):
        if sent["recent"]:
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
    window = (row["send_window_start"], row["send_window_end"])
    if window == ALWAYS:
        return Decision(row, "sending")
    when_ms = next_in_window(row, now)
    if when_ms == now:  # open now; send only if still open a minute on, for a late hand-off
        when_ms = next_in_window(row, now + WINDOW_MARGIN_MS)
        if when_ms == now + WINDOW_MARGIN_MS:
            return Decision(row, "sending")
    if when_ms is None:
        return Decision(row, "skipped", "stale", detail="no sending window in every candidate zone")
    when = datetime.fromtimestamp(when_ms / 1000, UTC)
    if when_ms > now:
        if when_ms - row["trigger_at"] > max_age:
            return Decision(row, "skipped", "stale", detail="next sending window is too late")
        return Decision(row, "scheduled", None, when_ms, log="deferred", detail=when.isoformat())
    return Decision(row, "sending")


def next_in_window(row: sqlite3.Row, at: int) -> int | None:
    """`at` when the recipient's window is open then, else when it next opens (ms), or None."""
    zones = candidate_zones(row["phone"], row["timezone"])
    when = next_send_time(
        datetime.fromtimestamp(at / 1000, UTC),
        zones,
        row["send_window_start"],
        row["send_window_end"],
    )
    return None if when is None else max(at, int(when.timestamp() * 1000))
