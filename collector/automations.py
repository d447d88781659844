"""Automations: how they are stored, what turning them off does, and what the scheduler reads.

What an automation may say (trigger, goals, freshness) is checked in collector/automation_fields.py.
Turning an automation off or deleting it cancels its scheduled texts (`automation_off`) in the
same transaction, with a `message_log` row for each. The scheduler reads `Automation` (goals
resolved), `load_active_automations`, `get_template` and `cancel_for_automation` from here.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

import aiosqlite

from collector.automation_fields import validate
from collector.db import Database, ms_to_iso
from collector.errors import BadRequest, NotFound
from collector.message_templates import get_template, site_exists
from collector.rules import Rule, default_goals

__all__ = [
    "Automation",
    "cancel_for_automation",
    "default_goals",
    "get_automation",
    "get_template",
    "load_active_automations",
]


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class Automation:
    id: int
    site_id: int
    name: str
    trigger: str
    path_pattern: str | None
    min_cart_value: float | None
    delay_seconds: int
    goals: tuple[str, ...]  # resolved: the configured list, else the trigger's defaults
    configured_goals: tuple[str, ...] | None  # as saved; None means the defaults
    template_id: int
    active: bool
    max_age_seconds: int
    created_at: int
    updated_at: int

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Automation:
        configured = None if row["goals"] is None else tuple(json.loads(row["goals"]))
        return cls(
            id=row["id"],
            site_id=row["site_id"],
            name=row["name"],
            trigger=row["trigger"],
            path_pattern=row["path_pattern"],
            min_cart_value=row["min_cart_value"],
            delay_seconds=row["delay_seconds"],
            goals=configured if configured is not None else tuple(default_goals(row["trigger"])),
            configured_goals=configured,
            template_id=row["template_id"],
            active=bool(row["active"]),
            max_age_seconds=row["max_age_seconds"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )

    @property
    def rule(self) -> Rule:
        """What the planner and the scheduler match events against."""
        return Rule(self.trigger, self.goals, self.path_pattern, self.min_cart_value)

    def columns(self) -> dict[str, Any]:
        return {
            "site_id": self.site_id,
            "name": self.name,
            "trigger": self.trigger,
            "path_pattern": self.path_pattern,
            "min_cart_value": self.min_cart_value,
            "delay_seconds": self.delay_seconds,
            "goals": None if self.configured_goals is None else list(self.configured_goals),
            "template_id": self.template_id,
            "active": self.active,
            "max_age_seconds": self.max_age_seconds,
        }

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            **self.columns(),
            "effective_goals": list(self.goals),
            "created_at": ms_to_iso(self.created_at),
            "updated_at": ms_to_iso(self.updated_at),
        }


def _row_values(cols: dict[str, Any]) -> dict[str, Any]:
    values = dict(cols)
    if "goals" in values:
        values["goals"] = None if values["goals"] is None else json.dumps(values["goals"])
    if "active" in values:
        values["active"] = int(values["active"])
    return values


async def _check_template(conn: aiosqlite.Connection, template_id: int, site_id: int) -> None:
    cursor = await conn.execute("select site_id from templates where id = ?", (template_id,))
    row = await cursor.fetchone()
    if row is None:
        raise BadRequest(f"no template with id {template_id}", field="template_id")
    if row["site_id"] != site_id:
        raise BadRequest(
            f"template {template_id} belongs to site {row['site_id']}, not site {site_id}",
            field="template_id",
        )


async def create_automation(db: Database, data: dict[str, Any]) -> Automation:
    cols = validate(data, None)
    now = now_ms()
    async with db.transaction() as conn:
        if not await site_exists(conn, cols["site_id"]):
            raise BadRequest(f"no site with id {cols['site_id']}", field="site_id")
        await _check_template(conn, cols["template_id"], cols["site_id"])
        values = {**_row_values(cols), "created_at": now, "updated_at": now}
        names = ", ".join(values)  # keys come from EDITABLE and the two times, never from input
        marks = ", ".join(f":{name}" for name in values)
        cursor = await conn.execute(f"insert into automations ({names}) values ({marks})", values)
        automation_id = cursor.lastrowid
    assert automation_id is not None
    return await get_automation(db, automation_id)


async def update_automation(db: Database, automation_id: int, data: dict[str, Any]) -> Automation:
    """A partial update; turning it off cancels its scheduled texts in the same transaction."""
    current = await get_automation(db, automation_id)
    cols = validate(data, current.columns())
    cols.pop("site_id", None)
    if not cols:
        return current
    now = now_ms()
    async with db.transaction() as conn:
        if "template_id" in cols:
            await _check_template(conn, cols["template_id"], current.site_id)
        values = _row_values(cols)
        assignments = ", ".join(f"{name} = :{name}" for name in values)  # names from EDITABLE
        cursor = await conn.execute(
            f"update automations set {assignments}, updated_at = :now where id = :id",
            {**values, "now": now, "id": automation_id},
        )
        if not cursor.rowcount:
            raise NotFound(f"no automation with id {automation_id}")
        if cols.get("active") is False:
            await cancel_scheduled(conn, automation_id, "automation_off", now, "turned off")
    return await get_automation(db, automation_id)


async def delete_automation(db: Database, automation_id: int) -> int:
    """Delete it and cancel its scheduled texts; returns how many texts were cancelled."""
    now = now_ms()
    async with db.transaction() as conn:
        cancelled = await cancel_scheduled(conn, automation_id, "automation_off", now, "deleted")
        cursor = await conn.execute("delete from automations where id = ?", (automation_id,))
        if not cursor.rowcount:
            raise NotFound(f"no automation with id {automation_id}")
    return cancelled


async def cancel_scheduled(
    conn: aiosqlite.Connection,
    automation_id: int,
    reason: str,
    now: int,
    detail: str | None = None,
) -> int:
    """Cancel the automation's texts still `scheduled`, inside the caller's transaction."""
    await conn.execute(
        "insert into message_log (message_id, at, decision, reason, detail) "
        "select id, ?, 'cancelled', ?, ? from messages "
        "where automation_id = ? and kind = 'automation' and status = 'scheduled'",
        (now, reason, detail, automation_id),
    )
    cursor = await conn.execute(
        "update messages set status = 'cancelled', reason = ?, updated_at = ? "
        "where automation_id = ? and kind = 'automation' and status = 'scheduled'",
        (reason, now, automation_id),
    )
    return cursor.rowcount


async def cancel_for_automation(
    db: Database, automation_id: int, reason: str = "automation_off", now: int | None = None
) -> int:
    """Cancel the automation's scheduled texts, each with a `message_log` row; returns how many."""
    async with db.transaction() as conn:
        return await cancel_scheduled(
            conn, automation_id, reason, now if now is not None else now_ms()
        )


async def get_automation(db: Database, automation_id: int) -> Automation:
    row = await db.fetchone("select * from automations where id = ?", (automation_id,))
    if row is None:
        raise NotFound(f"no automation with id {automation_id}")
    return Automation.from_row(row)


async def list_automations(
    db: Database, site_id: int | None, limit: int, offset: int
) -> tuple[list[Automation], int]:
    rows, total = await db.page("automations", {"site_id": site_id}, "id", limit, offset)
    return [Automation.from_row(r) for r in rows], total


async def load_active_automations(db: Database, site_id: int | None = None) -> list[Automation]:
    """The automations that are on, of one site or (site_id None) of every site, by id."""
    rows = await db.fetchall(
        "select * from automations where active = 1 and (:site_id is null or site_id = :site_id) "
        "order by id",
        {"site_id": site_id},
    )
    return [Automation.from_row(r) for r in rows]
